package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/store"
)

// The fakes below stand for a fleet's admin Deps (app fills them from
// pgrules and pgstore): the CLI meets a real admin.Server on 127.0.0.1.

const fleetToken = "fleet-cli-token-0123456789"

// cliRules is a RulesStore with one route and no events.
type cliRules struct{}

func (cliRules) Current() rules.Rules {
	return rules.Rules{Version: 7, Routes: []rules.Route{{Name: "img", Legacy: "legacy", New: "new", Mirror: 100}}}
}
func (cliRules) Update(int64, string, string, string, string, func(*rules.Rules) error) (rules.Rules, error) {
	return rules.Rules{}, rules.ErrUnavailable
}
func (cliRules) Promote(string, float64, string, string) (rules.Rules, bool, error) {
	return rules.Rules{}, false, rules.ErrUnavailable
}
func (cliRules) Rollback(string, string, string) (rules.Rules, bool, error) {
	return rules.Rules{}, false, rules.ErrUnavailable
}
func (cliRules) Events(time.Time, int) ([]rules.Event, error) { return nil, nil }

// cliReports answers a fixed report and records what it was asked.
type cliReports struct {
	compared int64
	mu       sync.Mutex
	asked    []string
}

func (r *cliReports) note(s string) { r.mu.Lock(); r.asked = append(r.asked, s); r.mu.Unlock() }
func (r *cliReports) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.asked) == 0 {
		return ""
	}
	return r.asked[len(r.asked)-1]
}
func (r *cliReports) Report(route string, since time.Time) ([]store.RouteReport, error) {
	r.note("report " + route)
	return []store.RouteReport{{Route: "img", Requests: r.compared, Compared: r.compared, Matched: r.compared}}, nil
}
func (r *cliReports) Samples(store.SampleFilter) ([]store.SampleSummary, error) { return nil, nil }
func (r *cliReports) Sample(string) (*store.Sample, error)                      { return nil, store.ErrNotFound }
func (r *cliReports) Comparisons(id string) ([]store.Comparison, error) {
	r.note("comparisons " + id)
	return []store.Comparison{{Route: "img", RequestID: id, Instance: fmt.Sprint(r.compared), Against: "new", Outcome: "match"}}, nil
}
func (r *cliReports) Series(string, time.Time, time.Duration) ([]store.RouteSeries, error) {
	return nil, nil
}

// startFleetAdmin serves an admin.Server for deps on 127.0.0.1 and points
// the client verbs at it (TANDEM_ADMIN, TANDEM_ADMIN_TOKEN). Without
// deps.Routes, one route "img" without a ramp.
func startFleetAdmin(t *testing.T, deps admin.Deps) {
	t.Helper()
	deps.Token = fleetToken
	deps.Rules = cliRules{}
	if deps.Routes == nil {
		deps.Routes = func() []admin.RouteStatus {
			return []admin.RouteStatus{{Name: "img", Legacy: "legacy", New: "new", Mirror: 100, Breakers: map[string]string{}}}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := admin.New(deps)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Shutdown(); <-done })
	t.Setenv(AdminEnv, "http://"+ln.Addr().String())
	t.Setenv(admin.TokenEnv, fleetToken)
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

type fleetRig struct {
	all, a, b *cliReports
	fs        admin.FleetStatus
}

func startFleetRig(t *testing.T, database string) *fleetRig {
	now := time.Now()
	r := &fleetRig{all: &cliReports{compared: 600}, a: &cliReports{compared: 150}, b: &cliReports{compared: 450},
		fs: admin.FleetStatus{Database: database, Instance: "a:8080", Instances: []admin.InstanceStatus{
			{Name: "a:8080", StartedAt: now.Add(-time.Hour), LastSeen: now.Add(-time.Second), AppliedVersion: 7},
			{Name: "b:8080", StartedAt: now.Add(-time.Hour), LastSeen: now.Add(-20 * time.Second), AppliedVersion: 6},
		}}}
	startFleetAdmin(t, admin.Deps{
		Reports: r.all,
		Fleet:   func() admin.FleetStatus { return r.fs },
		ReportsFor: func(name string) (admin.Reports, error) {
			switch name {
			case "a:8080":
				return r.a, nil
			case "b:8080":
				return r.b, nil
			}
			return nil, fmt.Errorf("%w %q", admin.ErrUnknownInstance, name)
		},
	})
	return r
}

// tandem status in a fleet: an instances: section (name, applied rules
// version, last seen, this one marked), "fleet: degraded" first when the
// database is unreachable, and the same in -json.
func TestStatusListsInstances(t *testing.T) {
	startFleetRig(t, "degraded")
	code, out, errs := runCLI("status")
	if code != 0 {
		t.Fatalf("status: exit %d, stderr %q", code, errs)
	}
	t.Logf("tandem status:\n%s", out)
	if !strings.HasPrefix(out, "fleet: degraded (the database is unreachable from a:8080") {
		t.Errorf("status does not start with fleet: degraded:\n%s", out)
	}
	section := regexp.MustCompile(`(?m)^instances:\n  a:8080  rules v7  seen [1-3]s ago  \(this one\)\n  b:8080  rules v6  seen 2[0-2]s ago\n`)
	if !section.MatchString(out) {
		t.Errorf("no instances: section with a:8080 (this one, v7, 1s) and b:8080 (v6, 20s):\n%s", out)
	}
	if !regexp.MustCompile(`served by new \S+ \(\d+ of \d+, whole fleet\)`).MatchString(out) {
		t.Errorf("the served counts are not labelled as the fleet's:\n%s", out)
	}
	if i, j := strings.Index(out, "route img"), strings.Index(out, "instances:"); i < 0 || j < i {
		t.Errorf("instances: is not after the routes:\n%s", out)
	}

	code, out, errs = runCLI("status", "-json")
	if code != 0 {
		t.Fatalf("status -json: exit %d, stderr %q", code, errs)
	}
	var snap statusSnapshot
	if err := json.Unmarshal([]byte(out), &snap); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if snap.Fleet != "degraded" || snap.Instance != "a:8080" || len(snap.Instances) != 2 ||
		snap.Instances[0].Name != "a:8080" || !snap.Instances[0].Self || snap.Instances[0].AppliedVersion != 7 ||
		snap.Instances[1].Name != "b:8080" || snap.Instances[1].Self || snap.Instances[1].AppliedVersion != 6 || snap.Instances[1].LastSeen.IsZero() {
		t.Errorf("status -json fleet %q instance %q instances %+v", snap.Fleet, snap.Instance, snap.Instances)
	}
}

// When the database is fine there is no degraded line; without a fleet
// neither instances nor fleet keys.
func TestStatusWithoutFleet(t *testing.T) {
	t.Run("fleet ok", func(t *testing.T) {
		startFleetRig(t, "ok")
		_, out, _ := runCLI("status")
		if strings.Contains(out, "degraded") || !strings.Contains(out, "\ninstances:\n") {
			t.Errorf("fleet ok:\n%s", out)
		}
	})
	t.Run("no fleet", func(t *testing.T) {
		startFleetAdmin(t, admin.Deps{Reports: &cliReports{compared: 1}})
		code, out, errs := runCLI("status")
		if code != 0 || strings.Contains(out, "instances") || strings.Contains(out, "fleet") || !strings.Contains(out, "route img") {
			t.Errorf("no fleet: exit %d, stderr %q:\n%s", code, errs, out)
		}
		_, out, _ = runCLI("status", "-json")
		for _, k := range []string{`"fleet"`, `"instance"`, `"instances"`} {
			if strings.Contains(out, k) {
				t.Errorf("status -json without a fleet has %s:\n%s", k, out)
			}
		}
		code, _, errs = runCLI("report", "-instance", "x")
		if code != 1 || errs != "tandem report: admin API refused (404): not a fleet: ?instance= needs fleet.database\n" {
			t.Errorf("report -instance without a fleet: exit %d, stderr %q", code, errs)
		}
	})
}

// tandem report -instance NAME asks for ?instance=NAME and shows that
// instance's numbers (text and -json); -request with -instance narrows the
// lookup; an unknown name is the API's 404 in one line, an empty one a
// usage error.
func TestReportInstance(t *testing.T) {
	r := startFleetRig(t, "ok")
	compared := func(out string) int64 {
		var rep struct {
			Instance string
			Routes   []store.RouteReport
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Routes) != 1 {
			t.Fatalf("report -json: %v\n%s", err, out)
		}
		return rep.Routes[0].Compared
	}
	code, out, errs := runCLI("report", "-json")
	if code != 0 || compared(out) != 600 || strings.Contains(out, `"instance"`) {
		t.Errorf("fleet report: exit %d, stderr %q:\n%s", code, errs, out)
	}
	code, out, errs = runCLI("report", "-instance", "b:8080", "-json", "-route", "img")
	if code != 0 || compared(out) != 450 || !strings.Contains(out, `"instance": "b:8080"`) || r.b.last() != "report img" {
		t.Errorf("b's report: exit %d, stderr %q, b asked %q:\n%s", code, errs, r.b.last(), out)
	}
	code, out, errs = runCLI("report", "-instance", "a:8080")
	if code != 0 || !strings.HasPrefix(out, "instance a:8080 only (without -instance: the whole fleet)\n") ||
		!regexp.MustCompile(`(?m)^img +150 +0 `).MatchString(out) {
		t.Errorf("a's report text: exit %d, stderr %q:\n%s", code, errs, out)
	}
	code, out, errs = runCLI("report", "-request", "r1", "-instance", "b:8080")
	if code != 0 || r.b.last() != "comparisons r1" || !strings.HasPrefix(out, "instance b:8080 only") || !strings.Contains(out, "request r1: 1 comparison") {
		t.Errorf("-request -instance: exit %d, stderr %q, b asked %q:\n%s", code, errs, r.b.last(), out)
	}
	code, _, errs = runCLI("report", "-instance", "c:8080")
	if code != 1 || errs != "tandem report: admin API refused (404): unknown instance \"c:8080\" (live instances: a:8080, b:8080)\n" {
		t.Errorf("unknown instance: exit %d, stderr %q", code, errs)
	}
	code, _, errs = runCLI("report", "-instance", "")
	if code != 2 || !strings.Contains(errs, "-instance needs an instance name") {
		t.Errorf("empty -instance: exit %d, stderr %q", code, errs)
	}
}

// tandem status in a fleet names the instance that drives a route's ramp
// (ramp.driver) on a "driver:" line of its ramp section, and -json carries
// it; a ramp no instance drives (the lease free) has no such line.
func TestStatusShowsRampDriver(t *testing.T) {
	driver := "b:8080"
	startFleetAdmin(t, admin.Deps{
		Reports: &cliReports{compared: 1},
		Fleet: func() admin.FleetStatus {
			return admin.FleetStatus{Database: "ok", Instance: "a:8080", Instances: []admin.InstanceStatus{
				{Name: "a:8080", LastSeen: time.Now(), AppliedVersion: 3}, {Name: "b:8080", LastSeen: time.Now(), AppliedVersion: 3}}}
		},
		Routes: func() []admin.RouteStatus {
			return []admin.RouteStatus{{Name: "img", Legacy: "legacy", New: "new", ServeNew: 25, Mirror: 100, Breakers: map[string]string{},
				Ramp: &ramp.Status{Steps: []float64{10, 25, 50}, Current: 25, NextStep: 50, HoldSeconds: 60, Driver: driver,
					State: ramp.StateHolding, Gates: []ramp.Gate{}}}}
		},
	})
	code, out, errs := runCLI("status")
	if code != 0 {
		t.Fatalf("status: exit %d, stderr %q", code, errs)
	}
	t.Logf("tandem status:\n%s", out)
	if !regexp.MustCompile(`(?m)^route img\n(?:  .*\n)*  ramp: step 2 of 3 \(25%\), next 50%, holding; .*\n  driver: b:8080\n`).MatchString(out) {
		t.Errorf("no driver: b:8080 line under the ramp of route img:\n%s", out)
	}
	if strings.Count(out, "driver:") != 1 {
		t.Errorf("want one driver: line:\n%s", out)
	}
	code, out, errs = runCLI("status", "-json")
	var snap statusSnapshot
	if err := json.Unmarshal([]byte(out), &snap); code != 0 || err != nil {
		t.Fatalf("status -json: exit %d, stderr %q, %v\n%s", code, errs, err, out)
	}
	if len(snap.Routes) != 1 || snap.Routes[0].Ramp == nil || snap.Routes[0].Ramp.Driver != "b:8080" {
		t.Errorf("status -json routes %+v, want img's ramp driven by b:8080", snap.Routes)
	}

	driver = ""
	_, out, _ = runCLI("status")
	if strings.Contains(out, "driver:") || !strings.Contains(out, "  ramp: step 2 of 3") {
		t.Errorf("with the lease free, status still prints a driver (or no ramp):\n%s", out)
	}
}
