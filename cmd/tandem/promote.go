package main

import (
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/user"
	"strconv"

	"github.com/tandem-proxy/tandem/rules"
)

// changeAnswer is the admin API's answer to promote and rollback.
type changeAnswer struct {
	rules.Rules
	// Changed is false when the route already was at that percentage.
	Changed bool `json:"changed"`
}

// defaultReason is the audit reason of a change made without -reason:
// what was done, from the CLI, by whom ("cli: promote to 25% (by alice)").
// The UI asks a person for a reason; the CLI records at least this much.
func defaultReason(what string) string {
	if u := userName(); u != "" {
		return fmt.Sprintf("cli: %s (by %s)", what, u)
	}
	return "cli: " + what
}

func userName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// parsePercent reads PERCENT as the API takes it: a number from 0 to 100
// with at most two decimals.
func parsePercent(s string) (float64, error) {
	p, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(p) || math.IsInf(p, 0):
		return 0, fmt.Errorf("PERCENT must be a number from 0 to 100, not %q", s)
	case p < 0 || p > 100:
		return 0, fmt.Errorf("percent must be between 0 and 100, not %s", s)
	case math.Abs(p*100-math.Round(p*100)) > 1e-6:
		return 0, fmt.Errorf("percent %s has more than two decimals", s)
	}
	return p, nil
}

func runPromote(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("promote", "promote ROUTE PERCENT [-reason TEXT] [-admin URL] [-config FILE]\n\nServe PERCENT of ROUTE's traffic from its new backend (the rest from legacy).", stderr)
	cf := addClientFlags(fs)
	reason := fs.String("reason", "", `why, for the audit log (default "cli: promote to PERCENT% (by $USER)")`)
	pos, code, stop := parseInterspersed(fs, args)
	if stop {
		return code
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "tandem promote: want ROUTE PERCENT (e.g. tandem promote images 25)")
		return 2
	}
	route := pos[0]
	pct, err := parsePercent(pos[1])
	if err != nil {
		fmt.Fprintf(stderr, "tandem promote: %v\n", err)
		return 2
	}
	why := *reason
	if why == "" {
		why = defaultReason("promote to " + statusPct(pct) + "%")
	}
	c, err := cf.client()
	if err != nil {
		return fail1(stderr, "promote", err)
	}
	var a changeAnswer
	if err := c.do("POST", "/api/v1/routes/"+url.PathEscape(route)+"/promote", map[string]any{"percent": pct, "reason": why}, &a); err != nil {
		return fail1(stderr, "promote", err)
	}
	if !a.Changed {
		fmt.Fprintf(stdout, "%s is already at %s%%: nothing changed (rules version %d)\n", route, statusPct(pct), a.Version)
		return 0
	}
	fmt.Fprintf(stdout, "%s: new serves %s%% (rules version %d; reason %q)\n", route, statusPct(pct), a.Version, why)
	return 0
}

func runRollback(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("rollback", "rollback ROUTE [-reason TEXT] [-admin URL] [-config FILE]\n\nServe all of ROUTE's traffic from legacy again (serve_new 0%), at once.", stderr)
	cf := addClientFlags(fs)
	reason := fs.String("reason", "", `why, for the audit log (default "cli: rollback (by $USER)")`)
	pos, code, stop := parseInterspersed(fs, args)
	if stop {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "tandem rollback: want ROUTE (e.g. tandem rollback images)")
		return 2
	}
	route := pos[0]
	why := *reason
	if why == "" {
		why = defaultReason("rollback")
	}
	c, err := cf.client()
	if err != nil {
		return fail1(stderr, "rollback", err)
	}
	var a changeAnswer
	if err := c.do("POST", "/api/v1/routes/"+url.PathEscape(route)+"/rollback", map[string]any{"reason": why}, &a); err != nil {
		return fail1(stderr, "rollback", err)
	}
	if !a.Changed {
		fmt.Fprintf(stdout, "%s is already at 0%%: nothing to roll back (rules version %d)\n", route, a.Version)
		return 0
	}
	fmt.Fprintf(stdout, "%s: rolled back, new serves 0%% (rules version %d; reason %q)\n", route, a.Version, why)
	return 0
}
