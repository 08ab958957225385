package main

import (
	"fmt"
	"io"

	"github.com/tandem-proxy/tandem/config"
)

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "validate -config FILE", stderr)
	path := fs.String("config", "tandem.yaml", "configuration file to check")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	_, errs := config.Load(*path)
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}
