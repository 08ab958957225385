package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/store"
)

// fleetFixture is an admin Server of a fleet over the fakes: the fleet's
// reads (all) and each instance's (by name), and a FleetStatus the test
// changes.
type fleetFixture struct {
	srv  *Server
	all  *memReports
	by   map[string]*memReports
	fs   FleetStatus
	fail error // what ReportsFor returns for "broken"
}

func newFleetFixture() *fleetFixture {
	seen := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f := &fleetFixture{
		all: &memReports{report: []store.RouteReport{{Route: "img", Requests: 300}}, samples: map[string]*store.Sample{"s1": {ID: "s1", Route: "img"}}},
		by: map[string]*memReports{
			"a:8080": {report: []store.RouteReport{{Route: "img", Requests: 100}}},
			"b:8080": {report: []store.RouteReport{{Route: "img", Requests: 200}}},
		},
		fs: FleetStatus{Database: "ok", Instance: "a:8080", Instances: []InstanceStatus{
			{Name: "a:8080", StartedAt: seen.Add(-time.Hour), LastSeen: seen, AppliedVersion: 7},
			{Name: "b:8080", StartedAt: seen.Add(-2 * time.Hour), LastSeen: seen.Add(-2 * time.Second), AppliedVersion: 6},
		}},
		fail: errors.New("connection refused"),
	}
	rs := newMemRules()
	f.srv = New(Deps{
		Token:   httpTestToken,
		Rules:   rs,
		Reports: f.all,
		Routes:  func() []RouteStatus { return []RouteStatus{{Name: "img", Legacy: "legacy", New: "new"}} },
		Fleet:   func() FleetStatus { return f.fs },
		ReportsFor: func(name string) (Reports, error) {
			if name == "broken" {
				return nil, f.fail
			}
			r, ok := f.by[name]
			if !ok {
				return nil, fmt.Errorf("%w %q", ErrUnknownInstance, name)
			}
			return r, nil
		},
	})
	return f
}

func (f *fleetFixture) askedTotal() int {
	n := len(f.all.asked)
	for _, r := range f.by {
		n += len(r.asked)
	}
	return n
}

// GET /api/v1/routes and GET /api/v1/instances of a fleet: the database's
// state, this instance's name and the live instances with their applied
// version, this one marked; "degraded" when Fleet says so.
func TestFleetRoutesAndInstances(t *testing.T) {
	f := newFleetFixture()
	type answer struct {
		Routes    []RouteStatus    `json:"routes"`
		Fleet     *string          `json:"fleet"`
		Instance  *string          `json:"instance"`
		Instances []InstanceStatus `json:"instances"`
	}
	get := func(path string) answer {
		t.Helper()
		w := do(f.srv, req("GET", path, ""))
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		var a answer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return a
	}
	for _, path := range []string{"/api/v1/routes", "/api/v1/instances"} {
		a := get(path)
		if a.Fleet == nil || *a.Fleet != "ok" || a.Instance == nil || *a.Instance != "a:8080" || len(a.Instances) != 2 {
			t.Fatalf("%s: %+v", path, a)
		}
		if in := a.Instances[0]; in.Name != "a:8080" || !in.Self || in.AppliedVersion != 7 || !in.LastSeen.Equal(f.fs.Instances[0].LastSeen) {
			t.Errorf("%s: first instance %+v, want a:8080 (self) at version 7", path, in)
		}
		if in := a.Instances[1]; in.Name != "b:8080" || in.Self || in.AppliedVersion != 6 {
			t.Errorf("%s: second instance %+v, want b:8080 at version 6, not self", path, in)
		}
	}
	if a := get("/api/v1/routes"); len(a.Routes) != 1 || a.Routes[0].Name != "img" {
		t.Errorf("routes: %+v", a.Routes)
	}
	f.fs.Database = "degraded"
	for _, path := range []string{"/api/v1/routes", "/api/v1/instances"} {
		if a := get(path); a.Fleet == nil || *a.Fleet != "degraded" {
			t.Errorf("%s with the database unreachable: fleet %v, want degraded", path, a.Fleet)
		}
	}
	// "self" is only on this instance's entry in the JSON.
	w := do(f.srv, req("GET", "/api/v1/instances", ""))
	var raw struct{ Instances []map[string]any }
	json.Unmarshal(w.Body.Bytes(), &raw)
	if _, ok := raw.Instances[1]["self"]; ok || raw.Instances[0]["self"] != true {
		t.Errorf("self flags: %v", raw.Instances)
	}
}

// Without a fleet: no fleet keys in GET /api/v1/routes, an empty list from
// GET /api/v1/instances, and any ?instance= is 404 saying why.
func TestNoFleet(t *testing.T) {
	f := newFixture()
	w := do(f.srv, req("GET", "/api/v1/routes", ""))
	var routes map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &routes); err != nil || w.Code != 200 {
		t.Fatalf("routes: %d %s", w.Code, w.Body)
	}
	for _, k := range []string{"fleet", "instance", "instances"} {
		if _, ok := routes[k]; ok {
			t.Errorf("routes without a fleet has %q: %s", k, w.Body)
		}
	}
	expect(t, "instances without a fleet", do(f.srv, req("GET", "/api/v1/instances", "")), 200, `"instance": ""`, `"instances": []`)
	if w := do(f.srv, req("GET", "/api/v1/instances", "")); strings.Contains(w.Body.String(), `"fleet"`) {
		t.Errorf("instances without a fleet names a fleet state: %s", w.Body)
	}
	for _, target := range []string{
		"/api/v1/report?instance=127.0.0.1:8080",
		"/api/v1/diffs?instance=x",
		"/api/v1/comparisons?request_id=r1&instance=x",
		"/api/v1/series?instance=x",
	} {
		n := len(f.reports.asked)
		expect(t, target, do(f.srv, req("GET", target, "")), 404, `not a fleet: ?instance= needs fleet.database`)
		if len(f.reports.asked) != n {
			t.Errorf("%s: refused, but the store was asked %q", target, f.reports.lastAsked())
		}
	}
	// The checks before it still come first, and without ?instance= the
	// reads are unchanged.
	expect(t, "empty instance, no fleet", do(f.srv, req("GET", "/api/v1/report?instance=", "")), 400, "instance is empty")
	expect(t, "report without instance", do(f.srv, req("GET", "/api/v1/report", "")), 200, `"routes": []`)
}

// ?instance=NAME narrows report, diffs, comparisons and series to one
// instance: the answer is ReportsFor(NAME)'s, with the other parameters as
// given, and the fleet's reads are not asked; without it, the fleet's.
// Empty or repeated is 400, a name the fleet does not know 404 listing the
// live ones, another error of ReportsFor 500; nothing is read then.
func TestInstanceNarrowsReads(t *testing.T) {
	f := newFleetFixture()
	recent := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	for _, c := range []struct {
		why, target string
		from        string // "" = the fleet's reads
		asked       string
		body        string
	}{
		{"fleet report", "/api/v1/report?route=img", "", "report img 0001-01-01T00:00:00Z", `"requests": 300`},
		{"a's report", "/api/v1/report?route=img&instance=a:8080", "a:8080", "report img 0001-01-01T00:00:00Z", `"requests": 100`},
		{"b's report since", "/api/v1/report?since=2026-01-02T15:04:05Z&instance=b%3A8080", "b:8080", "report  2026-01-02T15:04:05Z", `"requests": 200`},
		{"b's diffs", "/api/v1/diffs?route=img&path=$.x&limit=7&instance=b:8080", "b:8080", "samples {img $.x 7}", `"diffs": []`},
		{"a's comparisons", "/api/v1/comparisons?request_id=r1&instance=a:8080", "a:8080", "comparisons r1", `"comparisons": []`},
		{"b's series", "/api/v1/series?route=img&since=" + recent + "&step=1h&instance=b:8080", "b:8080", "series img " + recent + " 1h0m0s", `"step": "1h"`},
		{"fleet series", "/api/v1/series?step=5m", "", "series  0001-01-01T00:00:00Z 5m0s", `"routes": []`},
	} {
		src := f.all
		if c.from != "" {
			src = f.by[c.from]
		}
		before := f.askedTotal()
		w := do(f.srv, req("GET", c.target, ""))
		want := []string{c.body}
		if c.from != "" {
			want = append(want, `"instance": "`+c.from+`"`)
		}
		expect(t, c.why, w, 200, want...)
		if src.lastAsked() != c.asked || f.askedTotal() != before+1 {
			t.Errorf("%s: %s was asked %q (%d reads in all), want %q once", c.why, orFleet(c.from), src.lastAsked(), f.askedTotal()-before, c.asked)
		}
		if c.from == "" && strings.Contains(w.Body.String(), `"instance"`) {
			t.Errorf("%s: the fleet's answer names an instance: %.200s", c.why, w.Body)
		}
	}

	for _, c := range []struct {
		why, target string
		status      int
		want        string
	}{
		{"empty instance", "/api/v1/report?instance=", 400, "instance is empty: give an instance's name (GET /api/v1/instances lists them)"},
		{"instance twice", "/api/v1/diffs?instance=a:8080&instance=b:8080", 400, "instance is given 2 times; give it once"},
		{"series: instance twice", "/api/v1/series?instance=a:8080&instance=a:8080", 400, "instance is given 2 times; give it once"},
		{"comparisons: empty instance", "/api/v1/comparisons?request_id=r1&instance=", 400, "instance is empty"},
		{"unknown instance", "/api/v1/report?instance=c:8080", 404, `unknown instance \"c:8080\" (live instances: a:8080, b:8080)`},
		{"diffs of an unknown instance", "/api/v1/diffs?instance=nope", 404, `unknown instance \"nope\"`},
		{"series of an unknown instance", "/api/v1/series?instance=nope", 404, `unknown instance \"nope\"`},
		{"comparisons of an unknown instance", "/api/v1/comparisons?request_id=r1&instance=nope", 404, `unknown instance \"nope\"`},
		{"ReportsFor fails", "/api/v1/report?instance=broken", 500, `cannot read instance \"broken\": connection refused`},
		{"unknown route before instance", "/api/v1/report?route=nope&instance=a:8080", 404, `unknown route \"nope\"`},
	} {
		before := f.askedTotal()
		expect(t, c.why, do(f.srv, req("GET", c.target, "")), c.status, c.want)
		if f.askedTotal() != before {
			t.Errorf("%s: refused, but a store was read", c.why)
		}
	}

	// One sample by id needs no ?instance=: ids are the fleet's.
	expect(t, "sample by id", do(f.srv, req("GET", "/api/v1/diffs/s1", "")), 200, `"id": "s1"`)
	if f.all.lastAsked() != "sample s1" {
		t.Errorf("sample by id was read from %q", f.all.lastAsked())
	}
}

func orFleet(name string) string {
	if name == "" {
		return "the fleet's reads"
	}
	return name
}
