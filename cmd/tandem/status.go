package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/rules"
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
	// Breakers is the circuit breaker state of each of the route's
	// backends: closed, half-open or open.
	Breakers map[string]string `json:"breakers"`
}

// statusSnapshot is one look at the admin API: what `tandem status`
// prints, once or at every -watch interval, and its -json form.
type statusSnapshot struct {
	At     time.Time     `json:"at"`
	Routes []statusRoute `json:"routes"`
	// Events are the newest audit events (of the route asked for, and
	// those of no route such as reloads), oldest first.
	Events []rules.Event `json:"events"`
	// In a fleet (fleet.database set): the database's state from this
	// instance ("ok" or "degraded"), this instance's name and the live
	// instances, by name; absent otherwise.
	Fleet     string                 `json:"fleet,omitempty"`
	Instance  string                 `json:"instance,omitempty"`
	Instances []admin.InstanceStatus `json:"instances,omitempty"`
}

// statusEvents is how many of the newest events status shows.
const statusEvents = 5

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "status [ROUTE] [-watch [-interval 2s]] [-json] [-admin URL] [-config FILE]\n\n"+
		"Show each route's split (serve_new, mirror, the share new actually served), its ramp step and\n"+
		"state (in a fleet, the instance driving it), every gate with value, bound and limit, its backends' breakers and the last events;\n"+
		"in a fleet, also the live instances (applied rules version, last seen) and fleet: degraded\n"+
		"when the database is unreachable from the instance asked.\n"+
		"-watch redraws every -interval until interrupted (Ctrl-C): on a terminal in place, otherwise\n"+
		"one snapshot after another, separated by a blank line; with -json, one JSON document per line.", stderr)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	watch := fs.Bool("watch", false, "keep showing the status, every -interval, until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "how often -watch looks again")
	pos, code, stop := parseInterspersed(fs, args)
	if stop {
		return code
	}
	if len(pos) > 1 {
		fmt.Fprintf(stderr, "tandem status: want at most one ROUTE, not %q\n", strings.Join(pos, " "))
		return 2
	}
	if *interval < 100*time.Millisecond {
		fmt.Fprintf(stderr, "tandem status: -interval must be at least 100ms, not %v\n", *interval)
		return 2
	}
	route := ""
	if len(pos) == 1 {
		route = pos[0]
	}
	c, err := cf.client()
	if err != nil {
		return fail1(stderr, "status", err)
	}
	if !*watch {
		snap, err := fetchStatus(c, route, time.Now())
		if err != nil {
			return fail1(stderr, "status", err)
		}
		if *asJSON {
			b, err := json.MarshalIndent(snap, "", "  ")
			if err != nil {
				return fail1(stderr, "status", err)
			}
			fmt.Fprintf(stdout, "%s\n", b)
			return 0
		}
		renderSnapshot(stdout, snap)
		return 0
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	return watchStatus(c, route, *interval, *asJSON, isTerminal(stdout), stdout, stderr, sigs)
}

// watchStatus shows a snapshot every interval until stop receives. A look
// that fails (the instance restarting, say) is reported on stderr and tried
// again at the next interval; an unknown route ends the watch (exit 1).
func watchStatus(c *apiClient, route string, interval time.Duration, asJSON, tty bool, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		now := time.Now()
		snap, err := fetchStatus(c, route, now)
		var unknown *unknownRouteError
		switch {
		case errors.As(err, &unknown):
			return fail1(stderr, "status", err)
		case err != nil:
			fmt.Fprintf(stderr, "tandem status: %v (trying again in %v)\n", err, interval)
		case asJSON:
			b, err := json.Marshal(snap)
			if err != nil {
				return fail1(stderr, "status", err)
			}
			fmt.Fprintf(stdout, "%s\n", b)
		default:
			var b bytes.Buffer
			if tty {
				b.WriteString("\033[H\033[2J") // home, clear screen
			} else if n > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "%s  every %v (Ctrl-C to stop)\n\n", now.Format("2006-01-02 15:04:05"), interval)
			renderSnapshot(&b, snap)
			stdout.Write(b.Bytes())
		}
		select {
		case <-stop:
			return 0
		case <-tick.C:
		}
	}
}

// unknownRouteError is a ROUTE the instance does not have.
type unknownRouteError struct {
	route string
	names []string
}

func (e *unknownRouteError) Error() string {
	return fmt.Sprintf("no route %q (routes: %s)", e.route, strings.Join(e.names, ", "))
}

// fetchStatus reads GET /api/v1/routes and the newest events, and keeps
// route's (all when route is empty).
func fetchStatus(c *apiClient, route string, now time.Time) (statusSnapshot, error) {
	var resp struct {
		Routes []struct {
			Name         string            `json:"name"`
			ServeNew     float64           `json:"serve_new"`
			Mirror       float64           `json:"mirror"`
			ServedLegacy int64             `json:"served_legacy"`
			ServedNew    int64             `json:"served_new"`
			Breakers     map[string]string `json:"breakers"`
			Ramp         *ramp.Status      `json:"ramp"`
		} `json:"routes"`
		Fleet     string                 `json:"fleet"`
		Instance  string                 `json:"instance"`
		Instances []admin.InstanceStatus `json:"instances"`
	}
	if err := c.do("GET", "/api/v1/routes", nil, &resp); err != nil {
		return statusSnapshot{}, err
	}
	snap := statusSnapshot{At: now.UTC(), Routes: []statusRoute{}, Events: []rules.Event{},
		Fleet: resp.Fleet, Instance: resp.Instance, Instances: resp.Instances}
	for _, r := range resp.Routes {
		if route != "" && r.Name != route {
			continue
		}
		s := statusRoute{Name: r.Name, ServeNew: r.ServeNew, Mirror: r.Mirror, ServedLegacy: r.ServedLegacy, ServedNew: r.ServedNew,
			Ramp: r.Ramp, Breakers: r.Breakers}
		if s.Breakers == nil {
			s.Breakers = map[string]string{}
		}
		if n := r.ServedLegacy + r.ServedNew; n > 0 {
			s.ServedNewShare = float64(r.ServedNew) / float64(n)
		}
		snap.Routes = append(snap.Routes, s)
	}
	if route != "" && len(snap.Routes) == 0 {
		e := &unknownRouteError{route: route}
		for _, r := range resp.Routes {
			e.names = append(e.names, r.Name)
		}
		return statusSnapshot{}, e
	}
	// For one route, read more than are shown: the newest events may be
	// other routes'.
	limit := statusEvents
	if route != "" {
		limit = 200
	}
	var evs struct {
		Events []rules.Event `json:"events"`
	}
	if err := c.do("GET", "/api/v1/events?limit="+strconv.Itoa(limit), nil, &evs); err != nil {
		return statusSnapshot{}, err
	}
	for _, e := range evs.Events {
		if route == "" || e.Route == "" || e.Route == route {
			snap.Events = append(snap.Events, e)
		}
	}
	if len(snap.Events) > statusEvents {
		snap.Events = snap.Events[len(snap.Events)-statusEvents:]
	}
	return snap, nil
}

// renderSnapshot prints one look: in a fleet whose database is unreachable
// a "fleet: degraded" line first, the routes, the fleet's live instances,
// the last events.
func renderSnapshot(w io.Writer, snap statusSnapshot) {
	if snap.Fleet == "degraded" {
		fmt.Fprintf(w, "fleet: degraded (the database is unreachable from %s: it serves with the rules in force; rule changes get 503)\n\n", orDash(snap.Instance))
	}
	renderStatus(w, snap.Routes, snap.Fleet != "")
	renderInstances(w, snap.Instances, snap.Instance, snap.At)
	renderEvents(w, snap.Events, snap.At)
}

// renderInstances prints the fleet's live instances, one a line: name,
// the rules version it has applied, when it was last seen, and which one
// answered. Nothing when not in a fleet.
func renderInstances(w io.Writer, ins []admin.InstanceStatus, self string, now time.Time) {
	if len(ins) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "instances:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, in := range ins {
		me := ""
		if in.Self || in.Name == self {
			me = "  (this one)"
		}
		fmt.Fprintf(tw, "  %s\trules v%d\tseen %s ago%s\n", in.Name, in.AppliedVersion, age(now.Sub(in.LastSeen)), me)
	}
	tw.Flush()
}

// renderStatus prints each route: its split, its breakers, its ramp (in a
// fleet with the instance that drives it) and the ramp's gates. The served
// counts are this instance's since it started, or in a fleet the whole
// fleet's stored ones.
func renderStatus(w io.Writer, routes []statusRoute, fleet bool) {
	counted := "since start"
	if fleet {
		counted = "whole fleet"
	}
	if len(routes) == 0 {
		fmt.Fprintln(w, "no routes")
		return
	}
	anyGates := false
	for i, r := range routes {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "route %s\n", r.Name)
		fmt.Fprintf(w, "  serve_new %s%%   mirror %s%%   served by new %s (%d of %d, %s)\n",
			statusPct(r.ServeNew), statusPct(r.Mirror), share(r.ServedNewShare), r.ServedNew, r.ServedNew+r.ServedLegacy, counted)
		if len(r.Breakers) > 0 {
			fmt.Fprintf(w, "  breakers: %s\n", breakerList(r.Breakers))
		}
		rp := r.Ramp
		if rp == nil {
			fmt.Fprintln(w, "  ramp: none (promoted by hand)")
			continue
		}
		fmt.Fprintf(w, "  ramp: %s, %s; held %s of %s\n", rampStep(rp), rp.State,
			time.Duration(rp.HeldSeconds*float64(time.Second)).Round(time.Second),
			time.Duration(rp.HoldSeconds*float64(time.Second)).Round(time.Second))
		if rp.Driver != "" {
			// In a fleet: the instance that holds the ramp's lease.
			fmt.Fprintf(w, "  driver: %s\n", rp.Driver)
		}
		if rp.Last != nil {
			fmt.Fprintf(w, "  last decision: %s: %s\n", rp.Last.Action, rp.Last.Reason)
		}
		if len(rp.Gates) == 0 {
			fmt.Fprintln(w, "  gates: not evaluated yet")
			continue
		}
		anyGates = true
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  gate\tvalue\tbound\tlimit\tsamples\tstate\n")
		for _, g := range rp.Gates {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d (min %d)\t%s\n", g.Name, num(g.Value), num(g.Bound), num(g.Limit), g.Samples, g.MinSamples, g.State)
		}
		tw.Flush()
	}
	if anyGates {
		fmt.Fprintf(w, "\nbound: the upper end of the gate's one-sided %g%% Wilson interval (it must be at or below the limit to advance;\nthe lower end above the limit rolls back); the latency ratio has no interval.\n", ramp.Confidence*100)
	}
}

// breakerList prints "legacy closed, new open" in backend-name order.
func breakerList(m map[string]string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " " + m[n]
	}
	return strings.Join(parts, ", ")
}

// renderEvents prints the last events, newest last, one a line.
func renderEvents(w io.Writer, evs []rules.Event, now time.Time) {
	fmt.Fprintln(w)
	if len(evs) == 0 {
		fmt.Fprintln(w, "last events: none")
		return
	}
	fmt.Fprintln(w, "last events:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range evs {
		what := e.Route
		if what == "" {
			what = "-"
		}
		change := e.New
		if e.Old != "" {
			change = e.Old + " → " + e.New
		}
		reason := ""
		if e.Reason != "" {
			reason = strconv.Quote(clip(e.Reason, 60))
		}
		change = clip(change, 60)
		fmt.Fprintf(tw, "  %s (%s ago)\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("15:04:05"), age(now.Sub(e.Time)),
			e.Actor, e.Kind, what, change, reason)
	}
	tw.Flush()
}

// clip shortens s to at most n runes, marking the cut with "…"; the
// whole text is in -json and GET /api/v1/events.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// age prints a duration the way kubectl prints an AGE: 42s, 5m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
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
