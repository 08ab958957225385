package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tandem-proxy/tandem/config"
)

// runValidate checks a configuration file with the loader serve uses and
// prints every problem in one pass: as text, "FILE:LINE:COL: path: message"
// sorted by position, one a line on stderr (or "FILE: ok" on stdout); with
// -json, an array of {line, column, path, message, suggestion} on stdout
// ([] when the file is valid). Exit 0 when valid, 1 when not, 2 for bad flags.
func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "validate [-json] [-config FILE | FILE]", stderr)
	path := fs.String("config", "tandem.yaml", "configuration file to check (or give it as the argument)")
	asJSON := fs.Bool("json", false, "print the problems as a JSON array of {line, column, path, message, suggestion}")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch fs.NArg() {
	case 0:
	case 1:
		if configSet(fs) {
			fmt.Fprintf(stderr, "tandem validate: give the file as -config FILE or as the argument, not both\n")
			return 2
		}
		*path = fs.Arg(0)
	default:
		fmt.Fprintf(stderr, "tandem validate: one file at a time, got %d\n", fs.NArg())
		return 2
	}
	_, errs := config.Load(*path)
	probs := problems(errs)
	if *asJSON {
		b, err := json.MarshalIndent(probs, "", "  ")
		if err != nil {
			panic("BUG: cannot encode problems: " + err.Error())
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else if len(probs) == 0 {
		fmt.Fprintf(stdout, "%s: ok\n", *path)
	} else {
		for _, p := range probs {
			fmt.Fprintln(stderr, formatProblem(*path, p))
		}
	}
	if len(probs) > 0 {
		return 1
	}
	return 0
}

// problems turns config.Load's errors into Problems (one without a
// position keeps only its message).
func problems(errs []error) []*config.Problem {
	probs := make([]*config.Problem, 0, len(errs))
	for _, err := range errs {
		var p *config.Problem
		if !errors.As(err, &p) {
			p = &config.Problem{Msg: err.Error()}
		}
		probs = append(probs, p)
	}
	return probs
}

// formatProblem is "FILE:LINE:COL: path: message", the form editors and
// CI annotations jump to, or "FILE: message" when the place is unknown.
func formatProblem(file string, p *config.Problem) string {
	if p.Line > 0 {
		return file + ":" + p.Error()
	}
	return file + ": " + p.Error()
}

func configSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "config" })
	return set
}
