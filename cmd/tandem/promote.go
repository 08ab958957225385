package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/tandem-proxy/tandem/rules"
)

func runPromote(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("promote", "promote ROUTE PERCENT [-reason TEXT] [-admin URL] [-config FILE]", stderr)
	cf := addClientFlags(fs)
	reason := fs.String("reason", "", "why (written to the audit log)")
	pos, code, stop := parseInterspersed(fs, args)
	if stop {
		return code
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "tandem promote: want ROUTE PERCENT (e.g. tandem promote images 25)")
		return 2
	}
	pct, err := strconv.ParseFloat(pos[1], 64)
	if err != nil {
		fmt.Fprintf(stderr, "tandem promote: PERCENT must be a number from 0 to 100, not %q\n", pos[1])
		return 2
	}
	c, err := cf.client()
	if err != nil {
		return fail1(stderr, "promote", err)
	}
	var r rules.Rules
	body := map[string]any{"percent": pct, "reason": *reason}
	if err := c.do("POST", "/api/v1/routes/"+url.PathEscape(pos[0])+"/promote", body, &r); err != nil {
		return fail1(stderr, "promote", err)
	}
	fmt.Fprintf(stdout, "route %s: serve_new %s%% (rules version %d)\n", pos[0], pos[1], r.Version)
	return 0
}

func runRollback(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("rollback", "rollback ROUTE [-reason TEXT] [-admin URL] [-config FILE]", stderr)
	cf := addClientFlags(fs)
	reason := fs.String("reason", "", "why (written to the audit log)")
	pos, code, stop := parseInterspersed(fs, args)
	if stop {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "tandem rollback: want ROUTE (e.g. tandem rollback images)")
		return 2
	}
	c, err := cf.client()
	if err != nil {
		return fail1(stderr, "rollback", err)
	}
	var r rules.Rules
	if err := c.do("POST", "/api/v1/routes/"+url.PathEscape(pos[0])+"/rollback", map[string]any{"reason": *reason}, &r); err != nil {
		return fail1(stderr, "rollback", err)
	}
	fmt.Fprintf(stdout, "route %s: rolled back, serve_new 0%% (rules version %d)\n", pos[0], r.Version)
	return 0
}
