package e2e

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/pgtest"
)

// The dashboard over two instances: two real tandems (a fleet on one
// PostgreSQL database) with different traffic on the same route, their
// /metrics pages imported into VictoriaMetrics as instance="a" and "b".
// A summed panel is a's value plus b's, a max panel is the one value both
// report (not twice it), the instance variable narrows every panel to the
// instances chosen, and the Fleet row shows each instance's
// database state, the live instances and the applied rules version.
func TestDashboardAcrossInstances(t *testing.T) {
	if _, err := os.Stat(vmBinary); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not installed (apt-get install -y victoria-metrics); skipping the query test", vmBinary)
		}
		t.Fatalf("%s is required in CI (CI=%q): %v", vmBinary, os.Getenv("CI"), err)
	}
	d := loadDashboard(t)
	extra := map[string]string{"a": "", "b": ""}
	db := pgtest.Start(t).NewDatabase()
	for name := range extra {
		extra[name] = fmt.Sprintf("fleet: {database: %q, instance: %s}\n", db, name)
	}
	vm := startVM(t)
	const route = "across"
	// The noise mark and the promotion made through a reach b through the
	// database.
	rigs := map[string]*dashRig{
		"a": startDashRigWith(t, route, 10, extra["a"], true),
		"b": startDashRigWith(t, route, 10, extra["b"], false),
	}
	rigs["a"].promote(50)
	// The promote through a is in force on b: one rules history.
	waitFor(t, func() bool { return rigs["b"].scrape().value(t, "tandem_serve_new_percent", "route", route) == 50 })
	hc := &http.Client{Timeout: 5 * time.Second}
	push := func(name string) {
		t.Helper()
		resp, err := hc.Get("http://" + rigs[name].p.run.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp, err = hc.Post(vm+"/api/v1/import/prometheus?extra_label=job=tandem&extra_label=instance="+name, "text/plain", strings.NewReader(string(page)))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("import: %d %s", resp.StatusCode, msg)
		}
	}
	pushBoth := func() { push("a"); push("b") }

	// Different traffic: a serves 60 requests, b 140, over a few pushes.
	sent := map[string]int{"a": 60, "b": 140}
	tl := map[string]*tally{"a": newTally(), "b": newTally()}
	pushBoth()
	for i := 0; i < sent["b"]; i++ {
		for _, name := range []string{"a", "b"} {
			if i < sent[name] {
				rigs[name].send(i, tl[name])
			}
		}
		if i%20 == 19 {
			pushBoth()
			time.Sleep(100 * time.Millisecond)
		}
	}
	for name, r := range rigs {
		r.settle(sent[name])
	}
	// The report gauges (refreshed every 10 s) catch up with the settled
	// reports: both are the fleet's one number.
	report := map[string]float64{}
	for name, r := range rigs {
		if !pollUntil(25*time.Second, func() bool {
			report[name] = r.reportDiffRate()
			return r.scrape().value(t, "tandem_report_diff_rate", "route", route) == report[name] && report[name] > 0
		}) {
			t.Fatalf("%s: tandem_report_diff_rate did not catch up with the report's %v", name, report[name])
		}
	}
	if report["a"] != report["b"] {
		t.Errorf("fleet: a's report diff rate %v, b's %v: want the fleet's one number", report["a"], report["b"])
	}
	for i := 0; i < 3; i++ { // the settled numbers, more than once so rate() sees them
		pushBoth()
		time.Sleep(300 * time.Millisecond)
	}
	vmGet(t, hc, vm+"/internal/force_flush", nil)
	// Every panel is read at one moment past the last push (and past the
	// newest second VictoriaMetrics hides), so a + b and all cover the
	// same points.
	time.Sleep(2 * time.Second)
	at := strconv.FormatInt(time.Now().Unix(), 10)

	// panel evaluates one query of the dashboard with $instance set as
	// Grafana interpolates it (All: the variable's allValue, .*), by the
	// series' labels (those of legend, joined by spaces).
	type series map[string]float64
	panel := func(title, ref, instance string, by ...string) series {
		t.Helper()
		var expr string
		for _, q := range d.Queries {
			if q.Where == fmt.Sprintf("panel %q %s", title, ref) {
				expr = q.Expr
			}
		}
		if expr == "" {
			t.Fatalf("no panel %q query %s on the dashboard", title, ref)
		}
		expr = strings.NewReplacer("$__rate_interval", "30s", "$route", route, "$instance", instance).Replace(expr)
		var out series
		if !pollUntil(5*time.Second, func() bool {
			var res struct {
				Status string
				Data   struct {
					Result []struct {
						Metric map[string]string
						Value  [2]any
					}
				}
			}
			vmGet(t, hc, vm+"/api/v1/query?"+url.Values{"query": {expr}, "time": {at}, "nocache": {"1"}}.Encode(), &res)
			out = series{}
			for _, x := range res.Data.Result {
				var key []string
				for _, l := range by {
					key = append(key, x.Metric[l])
				}
				s, _ := x.Value[1].(string)
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					t.Fatalf("%s %s: value %q: %v", title, ref, s, err)
				}
				out[strings.Join(key, " ")] = v
			}
			return res.Status == "success" && len(out) > 0
		}) {
			t.Fatalf("panel %q %s ($instance=%s) returned no data: %s", title, ref, instance, expr)
		}
		return out
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Abs(want) }

	// Summed panels: all instances = a + b, and a and b differ.
	for _, p := range []struct{ title, ref string }{
		{"Requests by serving backend", "A"},
		{"Comparisons by result", "A"},
	} {
		all, a, b := panel(p.title, p.ref, ".*", "route", "served_by", "result"), panel(p.title, p.ref, "a", "route", "served_by", "result"), panel(p.title, p.ref, "b", "route", "served_by", "result")
		differ := false
		for k, v := range all {
			if !near(v, a[k]+b[k]) {
				t.Errorf("panel %q %s, series %q: all instances %v, want a %v + b %v", p.title, p.ref, k, v, a[k], b[k])
			}
			differ = differ || a[k] > 0 && b[k] > 0 && a[k] != b[k]
		}
		if len(all) != len(a) || len(all) != len(b) || !differ {
			t.Errorf("panel %q %s: all %v, a %v, b %v: want the same series, a and b non-zero and different", p.title, p.ref, all, a, b)
		}
	}

	// Max panels: the one value each instance reports, not N times it.
	if got := panel("Serve new", "A", ".*", "route"); len(got) != 1 || got[route] != 50 {
		t.Errorf(`panel "Serve new": %v, want %s = 50 (both instances serve 50%%; a sum would say 100)`, got, route)
	}
	if got := panel("Ramp gate: diff rate", "C", ".*", "route"); len(got) != 1 || !near(got[route], dashRampLimits["diff_rate"]) {
		t.Errorf(`panel "Ramp gate: diff rate" C: %v, want the configured limit %v`, got, dashRampLimits["diff_rate"])
	}
	if got, want := panel("Diff rate (report)", "A", ".*", "route"), math.Max(report["a"], report["b"]); len(got) != 1 || !near(got[route], want) {
		t.Errorf(`panel "Diff rate (report)": %v, want %v (a reports %v, b %v)`, got, want, report["a"], report["b"])
	}

	// The instance variable narrows: per-instance panels show the chosen.
	if got := panel("Rules version", "A", ".*", "instance"); len(got) != 2 || got["a"] == 0 || got["b"] == 0 {
		t.Errorf(`panel "Rules version" for all instances: %v, want a and b`, got)
	}
	if got := panel("Rules version", "A", "a", "instance"); len(got) != 1 || got["a"] == 0 {
		t.Errorf(`panel "Rules version" for instance a: %v, want a alone`, got)
	}
	if got := panel("Rules version", "A", "(b)", "instance"); len(got) != 1 || got["b"] == 0 {
		t.Errorf(`panel "Rules version" for instance b: %v, want b alone`, got)
	}
	var vals struct{ Data []string }
	vmGet(t, hc, vm+"/api/v1/label/instance/values?"+url.Values{"match[]": {"tandem_rules_version"}}.Encode(), &vals)
	if !contains(vals.Data, "a") || !contains(vals.Data, "b") {
		t.Errorf("label_values(tandem_rules_version, instance) = %v, want a and b", vals.Data)
	}

	// The Fleet row.
	version := float64(rigs["a"].p.rules().Version)
	if got := panel("Rules version applied", "A", ".*", "instance"); len(got) != 2 || got["a"] != version || got["b"] != version {
		t.Errorf(`panel "Rules version applied": %v, want a and b at version %v`, got, version)
	}
	if got := panel("Fleet database", "A", ".*", "instance"); len(got) != 2 || got["a"] != 1 || got["b"] != 1 {
		t.Errorf(`panel "Fleet database": %v, want a and b up (1)`, got)
	}
	if got := panel("Fleet database", "A", "b", "instance"); len(got) != 1 || got["b"] != 1 {
		t.Errorf(`panel "Fleet database" for instance b: %v, want b alone`, got)
	}
	if got := panel("Live instances", "A", ".*", "instance"); len(got) != 2 || got["a"] != 2 || got["b"] != 2 {
		t.Errorf(`panel "Live instances" A: %v, want a and b each seeing 2`, got)
	}
	if got := panel("Live instances", "B", ".*"); got[""] != 2 {
		t.Errorf(`panel "Live instances" B (scraped): %v, want 2`, got)
	}
}
