package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/latencyfmt"
	"github.com/tandem-proxy/tandem/store"
)

func runReport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("report", "report [-route NAME] [-since 1h|RFC3339] [-request ID] [-instance NAME] [-json] [-admin URL] [-config FILE]", stderr)
	cf := addClientFlags(fs)
	route := fs.String("route", "", "only this route")
	since := fs.String("since", "", "only traffic since this time: a duration ago (1h, 30m) or an RFC 3339 time")
	request := fs.String("request", "", "instead of the report: every comparison made for this request id (its X-Request-Id), with outcomes as read now")
	instance := fs.String("instance", "", "in a fleet, only what this instance served and compared (tandem status lists the instances); default the whole fleet")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	top := fs.Int("top", 5, "differing paths shown per route")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	requestSet, instanceSet := false, false
	fs.Visit(func(f *flag.Flag) {
		requestSet = requestSet || f.Name == "request"
		instanceSet = instanceSet || f.Name == "instance"
	})
	if instanceSet && *instance == "" {
		fmt.Fprintln(stderr, "tandem report: -instance needs an instance name (tandem status lists them); leave it out for the whole fleet")
		return 2
	}
	if requestSet {
		if *route != "" || *since != "" {
			fmt.Fprintln(stderr, "tandem report: -request looks up one request; it takes no -route or -since")
			return 2
		}
		if *request == "" {
			fmt.Fprintln(stderr, "tandem report: -request needs a request id")
			return 2
		}
		return runRequestLookup(cf, *request, *instance, *asJSON, stdout, stderr)
	}
	q := url.Values{}
	if *instance != "" {
		q.Set("instance", *instance)
	}
	if *route != "" {
		q.Set("route", *route)
	}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "tandem report: %v\n", err)
			return 2
		}
		q.Set("since", t.UTC().Format(time.RFC3339))
	}
	c, err := cf.client()
	if err != nil {
		return fail1(stderr, "report", err)
	}
	var rep struct {
		GeneratedAt time.Time           `json:"generated_at"`
		Instance    string              `json:"instance,omitempty"`
		Routes      []store.RouteReport `json:"routes"`
	}
	path := "/api/v1/report"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if err := c.do("GET", path, nil, &rep); err != nil {
		return fail1(stderr, "report", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return 0
	}
	if rep.Instance != "" {
		fmt.Fprintf(stdout, "instance %s only (without -instance: the whole fleet)\n\n", rep.Instance)
	}
	renderReport(stdout, rep.Routes, *top)
	return 0
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-since %q: want a duration such as 1h or an RFC 3339 time", s)
	}
	return t, nil
}

// renderReport prints the reports as a readable table: one line per route,
// then each route's top differing paths.
func renderReport(w io.Writer, reps []store.RouteReport, top int) {
	if len(reps) == 0 {
		fmt.Fprintln(w, "no routes have traffic yet")
		return
	}
	sort.Slice(reps, func(i, j int) bool { return reps[i].Route < reps[j].Route })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tREQUESTS\tERRORS\tSERVED NEW\tMIRRORED\tCOMPARED\tMISMATCHED\tNOISE\tDIFF RATE\tP50 LEGACY/NEW\tP99 LEGACY/NEW")
	for _, r := range reps {
		servedNew := 0.0
		if r.Requests > 0 {
			servedNew = 100 * float64(r.ServedNew) / float64(r.Requests)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\t%d\t%d\t%d\t%d\t%.2f%%\t%s / %s\t%s / %s\n",
			r.Route, r.Requests, r.ServedErrors.Total(), servedNew, r.Mirrored, r.Compared, r.Mismatched, r.Noise, 100*r.DiffRate,
			ms(r.Latency.LegacyP50), ms(r.Latency.NewP50), ms(r.Latency.LegacyP99), ms(r.Latency.NewP99))
	}
	tw.Flush()
	for _, r := range reps {
		var skipped []string
		keys := make([]exchange.Outcome, 0, len(r.Skipped))
		for k := range r.Skipped {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if r.Skipped[k] > 0 {
				skipped = append(skipped, fmt.Sprintf("%s %d", k, r.Skipped[k]))
			}
		}
		fmt.Fprintf(w, "\n%s: served legacy %d, new %d, tandem %d; errors served legacy %d, new %d, tandem %d; failed in comparisons legacy %d, new %d; skipped shadows: %s\n",
			r.Route, r.ServedLegacy, r.ServedNew, r.ServedTandem, r.ServedErrors.Legacy, r.ServedErrors.New, r.ServedErrors.Tandem,
			r.LegacyErrors, r.NewErrors, orNone(strings.Join(skipped, ", ")))
		if len(r.Diffs) == 0 {
			fmt.Fprintln(w, "  no differences")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  KIND\tPATH\tCOUNT\tRATE\tNOISE\tEXAMPLE")
		for i, d := range r.Diffs {
			if i == top {
				fmt.Fprintf(tw, "  …\t%d more paths\t\t\t\t\n", len(r.Diffs)-top)
				break
			}
			noise := ""
			if d.Noise {
				noise = "noise"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%.2f%%\t%s\t%s\n", d.Kind, d.Path, d.Count, 100*d.Rate, noise, d.ExampleID)
		}
		tw.Flush()
	}
}

// ms prints a latency in milliseconds by the rule every tandem view shares
// (internal/latencyfmt); "-" when there is none.
func ms(v float64) string {
	if v == 0 {
		return "-"
	}
	return latencyfmt.Millis(v)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// comparisonsAnswer is GET /api/v1/comparisons' answer.
type comparisonsAnswer struct {
	RequestID   string             `json:"request_id"`
	Instance    string             `json:"instance,omitempty"`
	Comparisons []store.Comparison `json:"comparisons"`
}

// runRequestLookup prints every comparison of one request (tandem report
// -request ID), in a fleet only instance's when it is not "".
func runRequestLookup(cf *clientFlags, id, instance string, asJSON bool, stdout, stderr io.Writer) int {
	c, err := cf.client()
	if err != nil {
		return fail1(stderr, "report", err)
	}
	q := url.Values{"request_id": {id}}
	if instance != "" {
		q.Set("instance", instance)
	}
	var ans comparisonsAnswer
	if err := c.do("GET", "/api/v1/comparisons?"+q.Encode(), nil, &ans); err != nil {
		return fail1(stderr, "report", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(ans)
		return 0
	}
	if ans.Instance != "" {
		fmt.Fprintf(stdout, "instance %s only (without -instance: the whole fleet)\n", ans.Instance)
	}
	renderComparisons(stdout, id, ans.Comparisons)
	return 0
}

// renderComparisons prints a request's comparisons as a table, oldest
// first: one line per comparison, its differing (kind, path) pairs one per
// line in the last column, each noise pair marked "(noise)".
func renderComparisons(w io.Writer, id string, cs []store.Comparison) {
	if len(cs) == 0 {
		fmt.Fprintf(w, "no comparisons recorded for request %q: it was not mirrored, or its records are older than retention.comparisons\n", id)
		return
	}
	n := "comparisons"
	if len(cs) == 1 {
		n = "comparison"
	}
	fmt.Fprintf(w, "request %s: %d %s (outcomes as the noise model reads them now)\n", id, len(cs), n)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tROUTE\tINSTANCE\tAGAINST\tOUTCOME\tSAMPLE\tDIFFERING (KIND PATH)")
	for _, c := range cs {
		sample := c.SampleID
		if sample == "" {
			sample = "-"
		}
		first := "-"
		if len(c.Diffs) > 0 {
			first = comparedDiff(c.Diffs[0])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.At.UTC().Format("2006-01-02 15:04:05.000"), c.Route, orDash(c.Instance),
			"legacy → "+c.Against, c.Outcome, sample, first)
		for _, d := range c.Diffs[min(1, len(c.Diffs)):] {
			fmt.Fprintf(tw, "\t\t\t\t\t\t%s\n", comparedDiff(d))
		}
	}
	tw.Flush()
}

func comparedDiff(d store.ComparedDiff) string {
	s := string(d.Kind) + " " + d.Path
	if d.Noise {
		s += " (noise)"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
