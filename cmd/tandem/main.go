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
	"status":         {"show each route's split, ramp step, gates (value, bound, limit), breakers and last events; -watch to follow", runStatus},
	"demo":           {"the whole story on one machine: sample services, shadow traffic, report, promote, rollback", runDemo},
	"loadtest":       {"send paced load to a URL and report latency percentiles", runLoadtest},
	"sample-corpus":  {"write the demo's upload corpus (JPEG, PNG, GIF, WebP, rotated, alpha, broken) to a directory", runSampleCorpus},
	"sample-backend": {"run a sample media service (legacy or new flavour)", runSampleBackend},
	"version":        {"print the version, the VCS revision and the Go version it was built with", runVersion},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a verb. Help that was asked for (tandem -h, tandem
// help, tandem help VERB, VERB -h) goes to stdout with exit 0; usage errors
// go to stderr with exit 2; a verb's failure is exit 1.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		if _, ok := verbs[args[1]]; !ok || len(args) > 2 {
			fmt.Fprintf(stderr, "tandem help: unknown command %q (run 'tandem -h' for the list)\n", strings.Join(args[1:], " "))
			return 2
		}
		return run([]string{args[1], "-h"}, stdout, stderr)
	case "-version", "--version":
		return runVersion(nil, stdout, stderr)
	}
	v, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tandem: unknown command %q (run 'tandem -h' for the list)\n", args[0])
		return 2
	}
	if asksHelp(args[1:]) {
		// The verb's FlagSet finds stdout in its stderr for the help
		// (newFlags). Only then: otherwise the verb gets stderr itself,
		// so that it can tell whether stderr is a terminal.
		stderr = &streams{Writer: stderr, stdout: stdout}
	}
	return v.run(args[1:], stdout, stderr)
}

// asksHelp reports whether args, before a "--", hold -h, -help or --help.
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help", "--h":
			return true
		}
	}
	return false
}

// streams is the stderr a verb gets when the user asks for help: it writes
// to stderr and carries stdout, where newFlags prints that help, so that
// every verb's FlagSet can tell the two apart without a wider signature.
type streams struct {
	io.Writer
	stdout io.Writer
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
	fmt.Fprintln(w, "\nRun 'tandem COMMAND -h' (or 'tandem help COMMAND') for a command's flags.")
	fmt.Fprintf(w, "Client commands find the admin API at -admin, else $%s, else admin.listen of -config, else %s.\n", AdminEnv, defaultAdmin)
}

// newFlags returns a FlagSet for a verb. Its usage goes to stdout when the
// user asked for it (-h, -help: exit 0) and to stderr after a flag error
// (exit 2), with the error first. stderr is what run passed the verb (a
// *streams); given any other writer, both go there.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	help := stderr
	if s, ok := stderr.(*streams); ok {
		help = s.stdout
	}
	out := &errorNoter{w: stderr}
	fs.SetOutput(out)
	fs.Usage = func() {
		w := help
		if out.wrote { // the flag package wrote an error: this is a usage error
			w = stderr
		}
		fmt.Fprintf(w, "Usage: tandem %s\n\nFlags:\n", synopsis)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
	return fs
}

// errorNoter passes writes on and remembers that one happened: the flag
// package writes to its output only to report an error (before calling
// Usage), so a write before Usage means a usage error, not -h.
type errorNoter struct {
	w     io.Writer
	wrote bool
}

func (e *errorNoter) Write(p []byte) (int, error) {
	e.wrote = true
	return e.w.Write(p)
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
