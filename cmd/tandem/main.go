// Command tandem is the one binary: a shadow-traffic migration proxy and its
// client verbs. This package holds flags, signals and the subcommands only;
// the application itself (what serve runs) is package app. Only app and
// this package import config.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// verb is one subcommand. run returns the process exit code.
type verb struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var verbs = map[string]verb{
	"serve":          {"run the proxy and its admin listener", runServe},
	"validate":       {"check a configuration file and print every problem", runValidate},
	"promote":        {"serve a share of a route's traffic from its new backend", runPromote},
	"rollback":       {"serve all of a route's traffic from legacy again", runRollback},
	"report":         {"print the diff report of every route", runReport},
	"status":         {"show each route's split, ramp step and gates (value, bound, limit)", runStatus},
	"demo":           {"the whole story on one machine: sample services, shadow traffic, report, promote, rollback", runDemo},
	"loadtest":       {"send paced load to a URL and report latency percentiles", runLoadtest},
	"sample-corpus":  {"write the demo's upload corpus (JPEG, PNG, GIF, WebP, rotated, alpha, broken) to a directory", runSampleCorpus},
	"sample-backend": {"run a sample media service (legacy or new flavour)", runSampleBackend},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	v, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tandem: unknown command %q (run 'tandem -h' for the list)\n", args[0])
		return 2
	}
	return v.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "tandem: a shadow-traffic migration proxy\n\nUsage: tandem COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-15s %s\n", n, verbs[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'tandem COMMAND -h' for a command's flags.")
}

// newFlags returns a FlagSet that prints its usage to stderr.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tandem %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; it returns (exit code, true) when the caller must stop.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "tandem %s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return 2, true
	}
	return 0, false
}
