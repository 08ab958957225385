package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/rules"
)

// The Grafana dashboard (grafana/tandem.json) is checked against the metrics
// tandem really exports: every metric a panel or annotation reads is on
// /metrics, every tandem_* family on /metrics is on the dashboard or listed
// in notOnDashboard, the counters hold exactly what the traffic did, and
// every query returns data from a real Prometheus-compatible server
// (VictoriaMetrics) after a healthy run with mismatches.

const dashboardFile = "../grafana/tandem.json"

// notOnDashboard are tandem metric families exported on /metrics that the
// dashboard deliberately does not show, each with the reason.
var notOnDashboard = map[string]string{
	// Incremented only by Shutdown once the drain deadline has passed, and
	// the server's metrics set is unregistered from /metrics as Shutdown
	// starts, so a scrape never sees it above 0. The shutdown log line
	// ("abandoned", n) carries the number instead.
	"tandem_shadow_abandoned_total": "never non-zero on a scrape: counted after the set leaves /metrics",
}

// fleetOnly are the metric families tandem exports only when fleet.database
// is set; TestDashboardAcrossInstances checks their panels against a real
// two-instance fleet, the single-instance tests leave them out.
var fleetOnly = map[string]bool{
	"tandem_fleet_database_up": true, // pgrules.Up and pgstore.Up
	"tandem_fleet_instances":   true, // live instances in the registry
}

// fleetPending: a metric the dashboard reads that an instance alone does
// not export (TestDashboardAcrossInstances checks it on a fleet).
func fleetPending(m string) bool { return fleetOnly[m] }

// dashQuery is one PromQL expression of the dashboard and where it is.
type dashQuery struct {
	Where string // "panel \"Title\" A", "annotation \"Rules changes\""
	Expr  string
}

// dashboard is what the tests read from grafana/tandem.json.
type dashboard struct {
	Queries   []dashQuery // every panel target and annotation, in file order
	Variables []dashQuery // template variable queries (label_values(...))
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SchemaVersion int `json:"schemaVersion"`
		Panels        []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
			Datasource struct{ UID string } `json:"datasource"`
		} `json:"panels"`
		Annotations struct {
			List []struct {
				Name       string                `json:"name"`
				Datasource struct{ Type string } `json:"datasource"`
				Expr       string                `json:"expr"`
				Target     struct{ Expr string } `json:"target"`
			} `json:"list"`
		} `json:"annotations"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if doc.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want a current dashboard (>= 36)", doc.SchemaVersion)
	}
	var d dashboard
	for _, p := range doc.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q: datasource uid %q, want the ${DS_PROMETHEUS} variable", p.Title, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			d.Queries = append(d.Queries, dashQuery{fmt.Sprintf("panel %q %s", p.Title, tg.RefID), tg.Expr})
		}
	}
	promAnnotations := 0
	for _, a := range doc.Annotations.List {
		if a.Datasource.Type != "prometheus" {
			continue // Grafana's built-in annotations
		}
		promAnnotations++
		if a.Expr != a.Target.Expr {
			t.Errorf("annotation %q: expr %q and target.expr %q differ", a.Name, a.Expr, a.Target.Expr)
		}
		d.Queries = append(d.Queries, dashQuery{fmt.Sprintf("annotation %q", a.Name), a.Expr})
	}
	for _, v := range doc.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		d.Variables = append(d.Variables, dashQuery{"variable " + v.Name, q.Query})
	}
	// Nothing that looks like a query may hide elsewhere in the file.
	var all any
	json.Unmarshal(b, &all)
	exprs := 0
	walkJSON(all, func(k string, v any) {
		if s, ok := v.(string); ok && k == "expr" && s != "" {
			exprs++
		}
	})
	// Each Prometheus annotation holds its expr twice: expr and target.expr.
	if want := len(d.Queries) + promAnnotations; exprs != want {
		t.Errorf("%d expr fields in the file, %d found in panels and annotations", exprs, want)
	}
	if len(d.Queries) == 0 || len(d.Variables) == 0 {
		t.Fatalf("dashboard has %d queries, %d variables", len(d.Queries), len(d.Variables))
	}
	return d
}

func walkJSON(v any, f func(key string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			f(k, e)
			walkJSON(e, f)
		}
	case []any:
		for _, e := range x {
			walkJSON(e, f)
		}
	}
}

var (
	tandemMetricRe  = regexp.MustCompile(`\btandem_[a-z_]+`)
	runtimeMetricRe = regexp.MustCompile(`\b(?:go|process)_[a-z_]+`)
)

// metricsIn returns the metric families an expression reads: histogram
// _bucket/_sum/_count series count as their family.
func metricsIn(expr string) []string {
	var out []string
	for _, m := range append(tandemMetricRe.FindAllString(expr, -1), runtimeMetricRe.FindAllString(expr, -1)...) {
		out = append(out, histogramFamily(m))
	}
	return out
}

func histogramFamily(name string) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			return base
		}
	}
	return name
}

// sample is one line of the Prometheus text format.
type sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// scrape is one parsed /metrics page.
type scrape struct {
	samples []sample
}

func parseExposition(t *testing.T, b []byte) scrape {
	t.Helper()
	var s scrape
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		smp := sample{Labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(rest, "{ "); i < 0 {
			t.Fatalf("bad /metrics line %q", line)
		} else {
			smp.Name, rest = rest[:i], rest[i:]
		}
		if rest[0] == '{' {
			end := parseLabels(rest[1:], smp.Labels)
			if end < 0 {
				t.Fatalf("bad labels in /metrics line %q", line)
			}
			rest = rest[1+end:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			t.Fatalf("no value in /metrics line %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			t.Fatalf("bad value in /metrics line %q: %v", line, err)
		}
		smp.Value = v
		s.samples = append(s.samples, smp)
	}
	return s
}

// parseLabels reads `k="v",...}` into m and returns the index just past '}',
// or -1 if malformed.
func parseLabels(s string, m map[string]string) int {
	i := 0
	for i < len(s) {
		if s[i] == '}' {
			return i + 1
		}
		if s[i] == ',' {
			i++
			continue
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 || i+eq+1 >= len(s) || s[i+eq+1] != '"' {
			return -1
		}
		key := s[i : i+eq]
		j := i + eq + 2
		var val strings.Builder
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
				switch s[j] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[j])
				}
				continue
			}
			val.WriteByte(s[j])
		}
		if j >= len(s) {
			return -1
		}
		m[key] = val.String()
		i = j + 1
	}
	return -1
}

// families returns every metric family on the page.
func (s scrape) families() map[string]bool {
	names := map[string]bool{}
	for _, x := range s.samples {
		names[x.Name] = true
	}
	out := map[string]bool{}
	for n := range names {
		if f := histogramFamily(n); f != n && names[f+"_bucket"] {
			out[f] = true
			continue
		}
		out[n] = true
	}
	return out
}

// value returns the one sample of name whose labels include want (pairs);
// it fails the test when there is not exactly one.
func (s scrape) value(t *testing.T, name string, want ...string) float64 {
	t.Helper()
	var got []float64
next:
	for _, x := range s.samples {
		if x.Name != name {
			continue
		}
		for i := 0; i+1 < len(want); i += 2 {
			if x.Labels[want[i]] != want[i+1] {
				continue next
			}
		}
		got = append(got, x.Value)
	}
	if len(got) != 1 {
		t.Fatalf("%s%v: %d series on /metrics, want 1", name, want, len(got))
	}
	return got[0]
}

// sum adds every sample of name whose labels include want (pairs).
func (s scrape) sum(name string, want ...string) float64 {
	var n float64
next:
	for _, x := range s.samples {
		if x.Name != name {
			continue
		}
		for i := 0; i+1 < len(want); i += 2 {
			if x.Labels[want[i]] != want[i+1] {
				continue next
			}
		}
		n += x.Value
	}
	return n
}

// dashRig is tandem in-process in front of two backends that differ in known
// ways, chosen by the request path /upload/<kind>/<n>.
type dashRig struct {
	t     *testing.T
	p     *inproc
	route string
}

// Request kinds: how the new backend's answer differs from legacy's.
const (
	kindMatch  = "match"  // identical answers
	kindJSON   = "json"   // new answers {"ok": false}: a json mismatch
	kindStatus = "status" // new answers 202 instead of 200: a status mismatch
	kindNoise  = "noise"  // the answers differ only at $.ts, marked as noise
	kindFail   = "fail"   // new answers 503: a status mismatch and a backend error (reason status_5xx)
)

// kindOf spreads the kinds over request numbers; a failure every 20
// requests never reaches the breaker's 5 consecutive failures.
func kindOf(i int) string {
	switch {
	case i%20 == 19:
		return kindFail
	case i%5 == 1:
		return kindJSON
	case i%5 == 2:
		return kindStatus
	case i%5 == 3:
		return kindNoise
	}
	return kindMatch
}

// startDashBackend answers JSON; the new backend differs from legacy as
// kindOf's kinds say. Both answers carry X-Backend (ignored by the
// comparison) so the client knows who served.
func startDashBackend(t *testing.T, name string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		kind := path.Base(path.Dir(r.URL.Path))
		status, body := http.StatusOK, map[string]any{"path": r.URL.Path, "ok": true}
		if kind == kindNoise {
			body["ts"] = name
		}
		if name == "new" {
			switch kind {
			case kindJSON:
				body["ok"] = false
			case kindStatus:
				status = http.StatusAccepted
			case kindFail:
				status = http.StatusServiceUnavailable
			}
		}
		w.Header().Set("X-Backend", name)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

const dashConfig = `
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
backends:
  legacy: {url: "%s"}
  new: {url: "%s"}
routes:
  - name: %s
    match: {path_prefix: /upload}
    legacy: legacy
    new: new
    serve_new: %v
    mirror: 100
    sticky: header:X-User-Id
    compare:
      ignore_headers: [X-Backend]
    # A ramp that never moves (min_compared is out of reach, so every gate
    # holds): the ramp gauges exist and the manual promotions stand.
    ramp: {steps: [10, 50, 100], hold: 1h, min_compared: 1000000, max_diff_rate: 0.02, max_error_rate: 0.03, max_latency_ratio: 4}
`

// dashRampLimits are the limits of dashConfig's ramp, by gate.
var dashRampLimits = map[string]float64{"diff_rate": 0.02, "error_rate": 0.03, "latency_ratio": 4}

// startDashRig starts the rig with serve_new percent and marks $.ts as noise.
// Each test uses its own route name: tandem_serve_new_percent{route} is a
// process-wide gauge bound to the first serve that created it, and tests in
// this package run serve many times in one process.
func startDashRig(t *testing.T, route string, serveNew float64) *dashRig {
	t.Helper()
	return startDashRigWith(t, route, serveNew, "", true)
}

// startDashRigWith is startDashRig with extra top-level config (a fleet
// section) and the noise mark optional (a fleet shares one noise model).
func startDashRigWith(t *testing.T, route string, serveNew float64, extra string, markNoise bool) *dashRig {
	t.Helper()
	legacy, newURL := startDashBackend(t, "legacy"), startDashBackend(t, "new")
	p := startInProcess(t, fmt.Sprintf(dashConfig, legacy, newURL, route, serveNew)+extra, "")
	if markNoise {
		if st, b := p.api("POST", "/api/v1/routes/"+route+"/noise", "", "application/json",
			`{"path": "$.ts", "reason": "timestamp differs by backend"}`); st != 200 {
			t.Fatalf("mark noise: %d %s", st, b)
		}
	}
	return &dashRig{t: t, p: p, route: route}
}

func (r *dashRig) promote(percent float64) {
	r.t.Helper()
	st, b := r.p.api("POST", "/api/v1/routes/"+r.route+"/promote", "", "application/json",
		fmt.Sprintf(`{"percent": %v, "reason": "dashboard test"}`, percent))
	if st != 200 {
		r.t.Fatalf("promote %v: %d %s", percent, st, b)
	}
}

// tally is what the client saw.
type tally struct {
	n      int
	served map[string]int // by X-Backend
	kinds  map[string]int
}

func newTally() *tally { return &tally{served: map[string]int{}, kinds: map[string]int{}} }

// user is request i's sticky key: 40 users.
func user(i int) string { return fmt.Sprintf("user-%d", i%40) }

// send sends request i through the proxy and records who served it; the
// client must get the serving backend's status.
func (r *dashRig) send(i int, tl *tally) {
	r.t.Helper()
	kind := kindOf(i)
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/upload/%s/%d", r.p.proxyBase, kind, i), strings.NewReader(fmt.Sprintf("upload %d", i)))
	req.Header.Set("X-User-Id", user(i))
	resp, err := r.p.httpClient.Do(req)
	if err != nil {
		r.t.Fatalf("request %d: %v", i, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	by := resp.Header.Get("X-Backend")
	want := http.StatusOK
	if by == "new" && kind == kindStatus {
		want = http.StatusAccepted
	}
	if by == "new" && kind == kindFail {
		want = http.StatusServiceUnavailable
	}
	if (by != "legacy" && by != "new") || resp.StatusCode != want {
		r.t.Fatalf("request %d (%s): served by %q with %d, want %d", i, kind, by, resp.StatusCode, want)
	}
	tl.n++
	tl.served[by]++
	tl.kinds[kind]++
}

// reportDiffRate is the route's diff_rate in GET /api/v1/report.
func (r *dashRig) reportDiffRate() float64 {
	r.t.Helper()
	st, b := r.p.api("GET", "/api/v1/report?route="+r.route, "", "", "")
	var rep struct {
		Routes []struct {
			DiffRate float64 `json:"diff_rate"`
		}
	}
	if err := json.Unmarshal(b, &rep); st != 200 || err != nil || len(rep.Routes) != 1 {
		r.t.Fatalf("GET report: %d %v %s", st, err, b)
	}
	return rep.Routes[0].DiffRate
}

// rampStatus is the route's ramp in GET /api/v1/routes.
func (r *dashRig) rampStatus() *ramp.Status {
	r.t.Helper()
	st, b := r.p.api("GET", "/api/v1/routes", "", "", "")
	var v struct {
		Routes []struct {
			Name string
			Ramp *ramp.Status
		}
	}
	if err := json.Unmarshal(b, &v); st != 200 || err != nil {
		r.t.Fatalf("GET routes: %d %v %s", st, err, b)
	}
	for _, x := range v.Routes {
		if x.Name == r.route && x.Ramp != nil {
			return x.Ramp
		}
	}
	r.t.Fatalf("GET routes: route %s has no ramp: %s", r.route, b)
	return nil
}

// rampGauges is what tandem_ramp_* should be for a ramp status: by
// "family gate" ("tandem_ramp_gate_bound diff_rate", "tandem_ramp_state").
func rampGauges(st *ramp.Status) map[string]float64 {
	m := map[string]float64{
		"tandem_ramp_step_percent": st.Current,
		"tandem_ramp_state":        float64(ramp.StateCode(st.State)),
	}
	for g, l := range dashRampLimits {
		m["tandem_ramp_gate_limit "+g] = l
	}
	for _, g := range st.Gates {
		m["tandem_ramp_gate_value "+g.Name] = g.Value
		m["tandem_ramp_gate_bound "+g.Name] = g.Bound
	}
	return m
}

// rampGaugesOn reads the route's tandem_ramp_* samples of a scrape, keyed
// as rampGauges keys them.
func (s scrape) rampGauges(route string) map[string]float64 {
	m := map[string]float64{}
	for _, x := range s.samples {
		if !strings.HasPrefix(x.Name, "tandem_ramp_") || x.Labels["route"] != route {
			continue
		}
		k := x.Name
		if g := x.Labels["gate"]; g != "" {
			k += " " + g
		}
		m[k] = x.Value
	}
	return m
}

func (r *dashRig) scrape() scrape {
	r.t.Helper()
	st, b := r.p.api("GET", "/metrics", "-", "", "")
	if st != 200 {
		r.t.Fatalf("GET /metrics: %d", st)
	}
	return parseExposition(r.t, b)
}

// settle waits until every one of n requests has been compared and no
// shadow is in flight, and returns that scrape.
func (r *dashRig) settle(n int) scrape {
	r.t.Helper()
	var s scrape
	waitFor(r.t, func() bool {
		s = r.scrape()
		return s.sum("tandem_compare_total", "route", r.route) == float64(n) && s.value(r.t, "tandem_shadow_in_flight") == 0
	})
	return s
}

// Every metric the dashboard reads is exported, and every tandem_* family
// exported is on the dashboard or deliberately left off it.
func TestDashboardMetricsExported(t *testing.T) {
	d := loadDashboard(t)
	r := startDashRig(t, "exported", 50)
	const n = 60
	tl := newTally()
	for i := 0; i < n; i++ {
		r.send(i, tl)
	}
	s := r.settle(n)
	if s.sum("tandem_compare_total", "route", r.route, "result", "mismatch") == 0 {
		t.Fatal("the traffic produced no mismatch")
	}
	// The ramp's gate values and bounds appear with its first evaluation
	// (every second).
	waitFor(t, func() bool { s = r.scrape(); return s.families()["tandem_ramp_gate_bound"] })
	exported := s.families()

	used := map[string][]string{} // family → where
	for _, q := range append(d.Queries, d.Variables...) {
		for _, m := range metricsIn(q.Expr) {
			used[m] = append(used[m], q.Where)
		}
	}
	for _, m := range sortedKeys(used) {
		if fleetOnly[m] || fleetPending(m) {
			t.Logf("%s: exported only with the fleet wiring (fleet.database); TestDashboardAcrossInstances checks it", m)
			continue
		}
		if !exported[m] {
			t.Errorf("%s (used by %s) is not exported on /metrics", m, strings.Join(used[m], ", "))
		}
	}
	for _, m := range sortedKeys(exported) {
		if !strings.HasPrefix(m, "tandem_") {
			continue
		}
		_, shown := used[m]
		_, left := notOnDashboard[m]
		switch {
		case !shown && !left:
			t.Errorf("%s is exported but neither on the dashboard nor in notOnDashboard", m)
		case shown && left:
			t.Errorf("%s is on the dashboard and in notOnDashboard", m)
		}
	}
	for m := range notOnDashboard {
		if !exported[m] {
			t.Errorf("notOnDashboard lists %s, which is not exported", m)
		}
	}
	// The Go runtime panels read metrics the process exports.
	for _, m := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := used[m]; !ok {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// After known traffic — serve_new 50 with sticky users, mirror 100, known
// mismatches, one failure in twenty — the counters equal what happened,
// exactly, and agree with the proxy's own counts in the API.
func TestDashboardMetricValues(t *testing.T) {
	r := startDashRig(t, "values", 0)
	r.promote(50)
	// tandem_rules_reload_total is process-wide (other tests reload too):
	// this test checks its growth.
	s0 := r.scrape()
	reloadsOK, reloadErrs := s0.value(t, "tandem_rules_reload_total", "result", "ok"), s0.value(t, "tandem_rules_reload_total", "result", "error")

	const n = 200
	tl := newTally()
	predictedNew := 0
	for i := 0; i < n; i++ {
		if rules.Bucket(r.route, user(i)) < rules.Threshold(50) {
			predictedNew++
		}
		r.send(i, tl)
	}
	// One request no route matches: tandem answers 404 itself.
	resp, err := http.Get(r.p.proxyBase + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unrouted request: %d", resp.StatusCode)
	}
	// A SIGHUP with the file unchanged is a successful reload.
	r.p.run.Reload() // what cmd/tandem does on SIGHUP
	waitFor(t, func() bool { return r.scrape().value(t, "tandem_rules_reload_total", "result", "ok") == reloadsOK+1 })

	s := r.settle(n)
	if tl.served["new"] != predictedNew || tl.served["new"] == 0 || tl.served["legacy"] == 0 {
		t.Fatalf("new served %d of %d, the sticky buckets say %d", tl.served["new"], n, predictedNew)
	}
	rt := []string{"route", r.route}
	with := func(kv ...string) []string { return append(append([]string{}, rt...), kv...) }
	mismatches := tl.kinds[kindJSON] + tl.kinds[kindStatus] + tl.kinds[kindFail]
	checks := []struct {
		why    string
		name   string
		labels []string
		want   float64
	}{
		{"legacy served what the client saw", "tandem_requests_total", with("served_by", "legacy"), float64(tl.served["legacy"])},
		{"new served what the client saw", "tandem_requests_total", with("served_by", "new"), float64(tl.served["new"])},
		{"mirror 100: every request shadowed", "tandem_shadow_total", with("outcome", "sent"), n},
		{"identical answers", "tandem_compare_total", with("result", "match"), float64(tl.kinds[kindMatch])},
		{"json, status and fail requests", "tandem_compare_total", with("result", "mismatch"), float64(mismatches)},
		{"differs only at the marked $.ts", "tandem_compare_total", with("result", "noise"), float64(tl.kinds[kindNoise])},
		{"every exchange compared", "tandem_compare_total", with("result", "error"), 0},
		{"$.ok differs", "tandem_mismatch_total", with("kind", "json"), float64(tl.kinds[kindJSON])},
		{"202 and 503 vs 200", "tandem_mismatch_total", with("kind", "status"), float64(tl.kinds[kindStatus] + tl.kinds[kindFail])},
		{"X-Backend ignored, Date is noise", "tandem_mismatch_total", with("kind", "header"), 0},
		{"new's 503s, served or shadow", "tandem_backend_errors_total", with("backend", "new", "reason", "status_5xx"), float64(tl.kinds[kindFail])},
		{"legacy never failed", "tandem_backend_errors_total", with("backend", "legacy"), 0},
		{"new failed only by status", "tandem_backend_errors_total", with("backend", "new"), float64(tl.kinds[kindFail])},
		{"no breaker opened", "tandem_fallback_total", rt, 0},
		{"legacy served", "tandem_backend_request_duration_seconds_count", with("backend", "legacy", "role", "served"), float64(tl.served["legacy"])},
		{"legacy shadowed what new served", "tandem_backend_request_duration_seconds_count", with("backend", "legacy", "role", "shadow"), float64(tl.served["new"])},
		{"new served", "tandem_backend_request_duration_seconds_count", with("backend", "new", "role", "served"), float64(tl.served["new"])},
		{"new shadowed what legacy served", "tandem_backend_request_duration_seconds_count", with("backend", "new", "role", "shadow"), float64(tl.served["legacy"])},
		{"promoted to 50", "tandem_serve_new_percent", rt, 50},
		{"breaker closed", "tandem_breaker_state", []string{"backend", "new"}, 0},
		{"one unrouted request", "tandem_client_errors_total", []string{"status", "404"}, 1},
		{"no bad framing", "tandem_client_errors_total", []string{"status", "400"}, 0},
		{"settled", "tandem_shadow_in_flight", nil, 0},
		{"spools released", "tandem_spool_disk_bytes", nil, 0},
		{"one SIGHUP", "tandem_rules_reload_total", []string{"result", "ok"}, reloadsOK + 1},
		{"no bad reload", "tandem_rules_reload_total", []string{"result", "error"}, reloadErrs},
	}
	for _, c := range checks {
		if got := s.sum(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v (%s)", c.name, c.labels, got, c.want, c.why)
		}
	}
	var shadowSkips float64
	for _, o := range []string{"sampling", "queue_full", "breaker_open", "too_large", "spool_full", "error"} {
		shadowSkips += s.value(t, "tandem_shadow_total", with("outcome", o)...)
	}
	if shadowSkips != 0 {
		t.Errorf("%v shadows skipped or failed, want 0", shadowSkips)
	}
	if got := s.sum("tandem_requests_total", rt...); got != n {
		t.Errorf("tandem_requests_total sums to %v, want %d", got, n)
	}
	if got := s.value(t, "tandem_rules_version"); got != float64(r.p.rules().Version) {
		t.Errorf("tandem_rules_version = %v, API says %d", got, r.p.rules().Version)
	}
	// Histogram buckets are cumulative: +Inf holds every observation.
	if got := s.value(t, "tandem_backend_request_duration_seconds_bucket", with("backend", "new", "role", "served", "le", "+Inf")...); got != float64(tl.served["new"]) {
		t.Errorf("new served +Inf bucket = %v, want %d", got, tl.served["new"])
	}

	// The proxy's own counts (GET /api/v1/routes) say the same.
	st, b := r.p.api("GET", "/api/v1/routes", "", "", "")
	if st != 200 {
		t.Fatalf("GET routes: %d %s", st, b)
	}
	var routes struct {
		Routes []struct {
			Name         string  `json:"name"`
			Requests     int64   `json:"requests"`
			ServedLegacy int64   `json:"served_legacy"`
			ServedNew    int64   `json:"served_new"`
			Mirrored     int64   `json:"mirrored"`
			Compared     int64   `json:"compared"`
			Matched      int64   `json:"matched"`
			Mismatched   int64   `json:"mismatched"`
			Noise        int64   `json:"noise"`
			DiffRate     float64 `json:"diff_rate"`
		}
	}
	if err := json.Unmarshal(b, &routes); err != nil || len(routes.Routes) != 1 {
		t.Fatalf("GET routes: %v %s", err, b)
	}
	api := routes.Routes[0]
	if api.Requests != n || api.ServedLegacy != int64(tl.served["legacy"]) || api.ServedNew != int64(tl.served["new"]) ||
		api.Mirrored != n || api.Compared != n || api.Matched != int64(tl.kinds[kindMatch]) ||
		api.Mismatched != int64(mismatches) || api.Noise != int64(tl.kinds[kindNoise]) {
		t.Errorf("API counts %+v disagree with the traffic %+v", api, tl)
	}
	if want := float64(mismatches) / n; api.DiffRate != want {
		t.Errorf("API diff rate %v, want %v", api.DiffRate, want)
	}

	// The ramp gauges say what the API's ramp says: the limits of the
	// config, each gate's value and bound, the step and the state. (The
	// gates are re-evaluated every second: read both until one API answer
	// and the scrape between two equal answers agree.)
	var got, want map[string]float64
	if !pollUntil(15*time.Second, func() bool {
		st := r.rampStatus()
		got = r.scrape().rampGauges(r.route)
		want = rampGauges(st)
		again := rampGauges(r.rampStatus())
		return len(st.Gates) == 3 && fmt.Sprint(want) == fmt.Sprint(again) && fmt.Sprint(got) == fmt.Sprint(want)
	}) {
		t.Fatalf("tandem_ramp_* on /metrics\n%v\nthe API's ramp says\n%v", got, want)
	}
	if want["tandem_ramp_step_percent"] != 50 || want["tandem_ramp_state"] != float64(ramp.StateCode(ramp.StateHolding)) ||
		want["tandem_ramp_gate_value diff_rate"] == 0 || want["tandem_ramp_gate_bound diff_rate"] <= want["tandem_ramp_gate_value diff_rate"] {
		t.Errorf("ramp gauges %v: want step 50, holding, a diff rate with its upper bound above it", want)
	}
}

// vmBinary is Debian's victoria-metrics package (apt-get install -y
// victoria-metrics), a Prometheus-compatible store and query engine.
const vmBinary = "/usr/bin/victoria-metrics"

// Every panel and annotation query returns data from VictoriaMetrics after a
// healthy run with mismatches and a promotion.
//
// The test pushes tandem's /metrics page to VictoriaMetrics'
// /api/v1/import/prometheus four times a second itself rather than having
// VictoriaMetrics scrape it: the test then knows exactly which snapshots are
// stored (including one taken after every comparison finished), with no
// dependence on the scraper's start-up jitter. The shipped scrape config is
// checked with -dryRun instead.
func TestDashboardQueriesReturnData(t *testing.T) {
	if _, err := os.Stat(vmBinary); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not installed (apt-get install -y victoria-metrics); skipping the query test", vmBinary)
		}
		t.Fatalf("%s is required in CI (CI=%q): %v", vmBinary, os.Getenv("CI"), err)
	}
	d := loadDashboard(t)

	// The scrape config the README tells users to use parses.
	if out, err := exec.Command(vmBinary, "-dryRun", "-promscrape.config=../grafana/scrape.yml", "-loggerLevel=ERROR").CombinedOutput(); err != nil {
		t.Fatalf("grafana/scrape.yml: %v\n%s", err, out)
	}

	vm := startVM(t)
	r := startDashRig(t, "vm", 10)
	instance := r.p.run.AdminAddr()
	importURL := vm + "/api/v1/import/prometheus?extra_label=job=tandem&extra_label=instance=" + url.QueryEscape(instance)
	hc := &http.Client{Timeout: 5 * time.Second}
	// push copies one /metrics page into VictoriaMetrics, labelled as a
	// scrape would. It runs on the pusher goroutine too, so it returns
	// errors instead of failing the test.
	push := func() error {
		resp, err := hc.Get("http://" + instance + "/metrics")
		if err != nil {
			return err
		}
		page, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("GET /metrics: %d %v", resp.StatusCode, err)
		}
		resp, err = hc.Post(importURL, "text/plain", strings.NewReader(string(page)))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			msg, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("import: %d %s", resp.StatusCode, msg)
		}
		return nil
	}

	// Push while the traffic flows: ~8 s of requests, promoted from 10 to
	// 50 halfway, so the rules-change annotation has something to mark.
	stop, pushed := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				pushed <- nil
				return
			case <-tick.C:
				if err := push(); err != nil {
					pushed <- err
					return
				}
			}
		}
	}()
	const n = 320
	tl := newTally()
	pace := time.NewTicker(25 * time.Millisecond)
	for i := 0; i < n; i++ {
		<-pace.C
		if i == n/2 {
			r.promote(50)
		}
		r.send(i, tl)
	}
	pace.Stop()
	r.settle(n)
	// The report-gauge job (every 10 s) catches up with the settled report
	// before the last snapshots are pushed.
	var reportRate float64
	var gauge float64
	if !pollUntil(25*time.Second, func() bool {
		reportRate = r.reportDiffRate()
		gauge = r.scrape().value(t, "tandem_report_diff_rate", "route", r.route)
		return gauge == reportRate && reportRate > 0
	}) {
		t.Fatalf("tandem_report_diff_rate %v, the report's diff rate %v: the gauge did not catch up", gauge, reportRate)
	}
	// VictoriaMetrics hides the newest second of points from queries
	// (-search.latencyOffset): push until a query sees the caught-up gauge.
	gaugeQuery := url.Values{"query": {fmt.Sprintf(`tandem_report_diff_rate{route=%q}`, r.route)}, "nocache": {"1"}}
	if !pollUntil(15*time.Second, func() bool {
		var res struct {
			Data struct{ Result []struct{ Value [2]any } }
		}
		gaugeQuery.Set("time", strconv.FormatInt(time.Now().Unix(), 10))
		vmGet(t, hc, vm+"/api/v1/query?"+gaugeQuery.Encode(), &res)
		if len(res.Data.Result) != 1 {
			return false
		}
		v, _ := res.Data.Result[0].Value[1].(string)
		got, err := strconv.ParseFloat(v, 64)
		return err == nil && math.Abs(got-reportRate) <= 1e-9*reportRate
	}) {
		t.Fatalf("VictoriaMetrics never returned tandem_report_diff_rate = %v", reportRate)
	}
	close(stop)
	if err := <-pushed; err != nil {
		t.Fatalf("pushing /metrics: %v", err)
	}
	for i := 0; i < 2; i++ { // the settled numbers, twice so rate() sees them
		if err := push(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	vmGet(t, hc, vm+"/internal/force_flush", nil)
	// The ramp's numbers as the API gives them; the snapshots just pushed
	// hold the same (no traffic since the settle, and a step's window only
	// grows).
	wantRamp := rampGauges(r.rampStatus())
	if got := r.scrape().rampGauges(r.route); fmt.Sprint(got) != fmt.Sprint(wantRamp) || len(wantRamp) != 2+3*3 {
		t.Fatalf("tandem_ramp_* on /metrics\n%v\nthe API's ramp says\n%v", got, wantRamp)
	}
	rampFamilyRe := regexp.MustCompile(`\btandem_ramp_[a-z_]+`)
	gateRe := regexp.MustCompile(`gate="([a-z_]+)"`)
	rampPanels := 0

	// As Grafana interpolates a single value into a regex matcher: regex
	// metacharacters escaped, the backslash doubled for the PromQL string.
	asRegex := func(v string) string { return strings.ReplaceAll(regexp.QuoteMeta(v), `\`, `\\`) }
	subst := strings.NewReplacer("$__rate_interval", "30s", "$__interval", "30s",
		"$route", asRegex(r.route), "$instance", asRegex(instance))
	reportPanel := false
	for _, q := range d.Queries {
		if fleetQuery(q.Expr) {
			t.Logf("%s: reads a fleet-only metric; TestDashboardAcrossInstances checks it", q.Where)
			continue
		}
		expr := subst.Replace(q.Expr)
		var res struct {
			Status string
			Data   struct {
				ResultType string
				Result     []struct {
					Metric map[string]string
					Value  [2]any
				}
			}
		}
		vmGet(t, hc, vm+"/api/v1/query?"+url.Values{"query": {expr}, "time": {strconv.FormatInt(time.Now().Unix(), 10)}, "nocache": {"1"}}.Encode(), &res)
		if res.Status != "success" || len(res.Data.Result) == 0 {
			t.Errorf("%s returned no data: %s", q.Where, expr)
			continue
		}
		t.Logf("%s: %d series", q.Where, len(res.Data.Result))
		if strings.Contains(q.Where, `"Diff rate (report)" A`) {
			// The panel shows the report's number, as GET /api/v1/report
			// gives it.
			v, _ := res.Data.Result[0].Value[1].(string)
			if got, err := strconv.ParseFloat(v, 64); err != nil || len(res.Data.Result) != 1 || math.Abs(got-reportRate) > 1e-9*reportRate {
				t.Errorf("%s: %v (%d series), want the report's diff rate %v", q.Where, v, len(res.Data.Result), reportRate)
			}
			reportPanel = true
		}
		if fam := rampFamilyRe.FindString(q.Expr); fam != "" {
			// A ramp panel shows the API's ramp numbers: one series, this
			// route's, with the value GET /api/v1/routes gives.
			key := fam
			if m := gateRe.FindStringSubmatch(q.Expr); m != nil {
				key += " " + m[1]
			}
			want, ok := wantRamp[key]
			v, _ := res.Data.Result[0].Value[1].(string)
			got, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil || len(res.Data.Result) != 1 || res.Data.Result[0].Metric["route"] != r.route || math.Abs(got-want) > 1e-9*math.Abs(want) {
				t.Errorf("%s: %v %v (%d series), want %s = %v as GET /api/v1/routes says", q.Where, res.Data.Result[0].Metric, v, len(res.Data.Result), key, want)
			}
			rampPanels++
		}
		for _, x := range res.Data.Result {
			if v, _ := x.Value[1].(string); v == "NaN" || v == "" {
				t.Errorf("%s: series %v has value %q: %s", q.Where, x.Metric, v, expr)
			}
		}
	}
	if !reportPanel {
		t.Error(`no "Diff rate (report)" panel on the dashboard`)
	}
	if rampPanels < 10 {
		t.Errorf("%d ramp queries checked against the API, want the ramp state, step, gate values, bounds and limits", rampPanels)
	}
	// The template variables list this route and this instance.
	for _, v := range d.Variables {
		m := regexp.MustCompile(`^label_values\(([a-z_]+),\s*([a-z_]+)\)$`).FindStringSubmatch(v.Expr)
		if m == nil {
			t.Errorf("%s: %q is not label_values(metric, label)", v.Where, v.Expr)
			continue
		}
		var res struct{ Data []string }
		vmGet(t, hc, vm+"/api/v1/label/"+m[2]+"/values?"+url.Values{"match[]": {m[1]}}.Encode(), &res)
		want := map[string]string{"route": r.route, "instance": instance}[m[2]]
		if !contains(res.Data, want) {
			t.Errorf("%s: %v does not hold %q", v.Where, res.Data, want)
		}
	}
}

// fleetQuery: expr reads a metric a single instance without a fleet does
// not export.
func fleetQuery(expr string) bool {
	for _, m := range metricsIn(expr) {
		if fleetOnly[m] || fleetPending(m) {
			return true
		}
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// startVM runs victoria-metrics on a free 127.0.0.1 port with a temporary
// storage directory and returns its base URL once it answers /health.
func startVM(t *testing.T) string {
	t.Helper()
	dir := t.TempDir() // registered first, so removed after the process is gone
	addr := freeAddr(t)
	logs := &lockedWriter{b: &strings.Builder{}}
	cmd := exec.Command(vmBinary,
		"-storageDataPath="+filepath.Join(dir, "vm"),
		"-httpListenAddr="+addr,
		"-retentionPeriod=1d",
		"-search.latencyOffset=1s", // default 30s hides the newest points from queries
		"-search.disableCache",
		"-memory.allowedPercent=5",
		"-loggerLevel=ERROR",
	)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("victoria-metrics output:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		select {
		case <-exited:
			t.Fatalf("victoria-metrics exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("victoria-metrics did not answer /health in 15s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// vmGet GETs u and decodes a JSON answer into out (nil: ignore the body).
func vmGet(t *testing.T, hc *http.Client, u string, out any) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v: %s", u, err, b)
		}
	}
}

// grafanaForSchema is the first Grafana release that writes each dashboard
// schemaVersion (public/app/features/dashboard/state/DashboardMigrator.ts;
// Grafana 10.4 exports 39, grafana/grafonnet#196). A dashboard's __requires
// must not claim an older Grafana than its schemaVersion needs.
var grafanaForSchema = map[int][3]int{36: {9, 0, 0}, 37: {9, 1, 0}, 38: {10, 0, 0}, 39: {10, 4, 0}}

// __requires matches the file: the Grafana version its schemaVersion
// needs, exactly the panel types it uses, the Prometheus data source; the
// dashboard links to the UI through a defined admin_url variable, and
// every $variable a query or link uses is defined (or one of Grafana's).
func TestDashboardRequires(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Requires []struct {
			Type, ID, Name, Version string
		} `json:"__requires"`
		SchemaVersion int `json:"schemaVersion"`
		Panels        []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			GridPos struct{ H, W, X, Y int }
		} `json:"panels"`
		Links []struct {
			Type, URL, Title string
		} `json:"links"`
		Templating struct {
			List []struct{ Name, Type string } `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	need, ok := grafanaForSchema[doc.SchemaVersion]
	if !ok {
		t.Fatalf("schemaVersion %d: add the first Grafana release that writes it to grafanaForSchema", doc.SchemaVersion)
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range doc.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" {
			used[p.Type] = true
		}
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
	}
	required := map[string]bool{}
	var grafana, prometheus bool
	for _, r := range doc.Requires {
		switch r.Type {
		case "grafana":
			grafana = true
			var v [3]int
			if _, err := fmt.Sscanf(r.Version, "%d.%d.%d", &v[0], &v[1], &v[2]); err != nil {
				t.Errorf("__requires grafana version %q: %v", r.Version, err)
			}
			if v[0] < need[0] || v[0] == need[0] && (v[1] < need[1] || v[1] == need[1] && v[2] < need[2]) {
				t.Errorf("__requires Grafana %s, but schemaVersion %d needs %d.%d.%d", r.Version, doc.SchemaVersion, need[0], need[1], need[2])
			}
		case "datasource":
			prometheus = prometheus || r.ID == "prometheus"
		case "panel":
			required[r.ID] = true
		}
	}
	if !grafana || !prometheus {
		t.Errorf("__requires lacks grafana (%v) or the prometheus data source (%v)", grafana, prometheus)
	}
	for ty := range used {
		if !required[ty] {
			t.Errorf("panel type %s is used but not in __requires", ty)
		}
	}
	for ty := range required {
		if !used[ty] {
			t.Errorf("__requires lists panel type %s, which no panel uses", ty)
		}
	}

	vars := map[string]string{}
	for _, v := range doc.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["admin_url"] != "textbox" {
		t.Errorf("no admin_url textbox variable (have %v)", vars)
	}
	uiLink := false
	for _, l := range doc.Links {
		uiLink = uiLink || l.Type == "link" && strings.HasPrefix(l.URL, "${admin_url}/ui/")
	}
	if !uiLink {
		t.Errorf("no dashboard link to ${admin_url}/ui/: %+v", doc.Links)
	}
	builtin := map[string]bool{"__rate_interval": true, "__interval": true, "__range": true, "__field": true}
	varRe := regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	var all any
	json.Unmarshal(b, &all)
	walkJSON(all, func(k string, v any) {
		s, ok := v.(string)
		if !ok || (k != "expr" && k != "url" && k != "uid") {
			return
		}
		for _, m := range varRe.FindAllStringSubmatch(s, -1) {
			if _, ok := vars[m[1]]; !ok && !builtin[m[1]] {
				t.Errorf("%s %q uses $%s, which is not a variable of the dashboard", k, s, m[1])
			}
		}
	})
}
