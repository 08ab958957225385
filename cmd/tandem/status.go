package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tandem-proxy/tandem/ramp"
)

// statusRoute is one route as `tandem status` shows it, and its -json form.
type statusRoute struct {
	Name     string  `json:"name"`
	ServeNew float64 `json:"serve_new"`
	Mirror   float64 `json:"mirror"`
	// ServedNewShare is served_new / (served_legacy + served_new) since the
	// instance started; 0 before any request.
	ServedNewShare float64      `json:"served_new_share"`
	ServedLegacy   int64        `json:"served_legacy"`
	ServedNew      int64        `json:"served_new"`
	Ramp           *ramp.Status `json:"ramp,omitempty"`
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "status [ROUTE] [-json] [-admin URL] [-config FILE]", stderr)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	pos, code, stop := parseInterspersed(fs, args)
	if stop {
		return code
	}
	if len(pos) > 1 {
		fmt.Fprintf(stderr, "tandem status: want at most one ROUTE, not %q\n", strings.Join(pos, " "))
		return 2
	}
	c, err := cf.client()
	if err != nil {
		return fail1(stderr, "status", err)
	}
	var resp struct {
		Routes []struct {
			Name         string       `json:"name"`
			ServeNew     float64      `json:"serve_new"`
			Mirror       float64      `json:"mirror"`
			ServedLegacy int64        `json:"served_legacy"`
			ServedNew    int64        `json:"served_new"`
			Ramp         *ramp.Status `json:"ramp"`
		} `json:"routes"`
	}
	if err := c.do("GET", "/api/v1/routes", nil, &resp); err != nil {
		return fail1(stderr, "status", err)
	}
	var out []statusRoute
	for _, r := range resp.Routes {
		if len(pos) == 1 && r.Name != pos[0] {
			continue
		}
		s := statusRoute{Name: r.Name, ServeNew: r.ServeNew, Mirror: r.Mirror, ServedLegacy: r.ServedLegacy, ServedNew: r.ServedNew, Ramp: r.Ramp}
		if n := r.ServedLegacy + r.ServedNew; n > 0 {
			s.ServedNewShare = float64(r.ServedNew) / float64(n)
		}
		out = append(out, s)
	}
	if len(pos) == 1 && len(out) == 0 {
		names := make([]string, 0, len(resp.Routes))
		for _, r := range resp.Routes {
			names = append(names, r.Name)
		}
		return fail1(stderr, "status", fmt.Errorf("no route %q (routes: %s)", pos[0], strings.Join(names, ", ")))
	}
	if *asJSON {
		if out == nil {
			out = []statusRoute{}
		}
		b, err := json.MarshalIndent(map[string]any{"routes": out}, "", "  ")
		if err != nil {
			return fail1(stderr, "status", err)
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	renderStatus(stdout, out)
	return 0
}

// renderStatus prints each route: its split, its ramp and the ramp's gates.
func renderStatus(w io.Writer, routes []statusRoute) {
	if len(routes) == 0 {
		fmt.Fprintln(w, "no routes")
		return
	}
	for i, r := range routes {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "route %s\n", r.Name)
		fmt.Fprintf(w, "  serve_new %s%%   mirror %s%%   served by new %s (%d of %d since start)\n",
			statusPct(r.ServeNew), statusPct(r.Mirror), share(r.ServedNewShare), r.ServedNew, r.ServedNew+r.ServedLegacy)
		rp := r.Ramp
		if rp == nil {
			fmt.Fprintln(w, "  ramp: none (promoted by hand)")
			continue
		}
		fmt.Fprintf(w, "  ramp: %s, %s; held %s of %s\n", rampStep(rp), rp.State,
			time.Duration(rp.HeldSeconds*float64(time.Second)).Round(time.Second),
			time.Duration(rp.HoldSeconds*float64(time.Second)).Round(time.Second))
		if rp.Last != nil {
			fmt.Fprintf(w, "  last decision: %s: %s\n", rp.Last.Action, rp.Last.Reason)
		}
		if len(rp.Gates) == 0 {
			fmt.Fprintln(w, "  gates: not evaluated yet")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  gate\tvalue\tbound\tlimit\tsamples\tstate\n")
		for _, g := range rp.Gates {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d (min %d)\t%s\n", g.Name, num(g.Value), num(g.Bound), num(g.Limit), g.Samples, g.MinSamples, g.State)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nbound: the upper end of the gate's one-sided %g%% Wilson interval (it must be at or below the limit to advance;\nthe lower end above the limit rolls back); the latency ratio has no interval.\n", ramp.Confidence*100)
}

// rampStep says where the ramp stands among its steps.
func rampStep(rp *ramp.Status) string {
	idx := -1
	for i, s := range rp.Steps {
		if s <= rp.Current {
			idx = i
		}
	}
	at := "not started (" + statusPct(rp.Current) + "%)"
	if idx >= 0 {
		at = fmt.Sprintf("step %d of %d (%s%%)", idx+1, len(rp.Steps), statusPct(rp.Current))
	}
	if rp.NextStep > 0 {
		at += ", next " + statusPct(rp.NextStep) + "%"
	}
	return at
}

func statusPct(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func share(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) + "%" }

// num prints a gate number with four significant decimals, without
// trailing zeros.
func num(v float64) string {
	s := strconv.FormatFloat(v, 'f', 4, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-" {
		return "0"
	}
	return s
}
