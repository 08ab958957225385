package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/ramp"
)

// startBackend serves h on a loopback port until the test ends.
func startBackend(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// The ramp as the app wires it: its gates classify comparisons with the
// app's Learner when they are evaluated, so a path marked as noise after the
// comparisons were made stops counting for them; and its error gate counts
// every request served by new, also those not mirrored, which no comparison
// reports.
func TestRampWiring(t *testing.T) {
	legacy := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"v": 1}`)
	})
	newb := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) == "fail" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"v": 2}`)
	})
	cfg, path := loadConfig(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
backends:
  legacy: {url: %q}
  new: {url: %q}
routes:
  - name: cmp
    match: {path_prefix: /cmp}
    legacy: legacy
    new: new
    mirror: 100
    ramp: {steps: [50, 100], hold: 1h, min_compared: 10, max_diff_rate: 0.2, max_error_rate: 0.5, max_latency_ratio: 1000}
  - name: served
    match: {path_prefix: /served}
    legacy: legacy
    new: new
    serve_new: 100
    mirror: 0
    ramp: {steps: [50, 100], hold: 1h, min_compared: 10, max_diff_rate: 0.1, max_error_rate: 0.5, max_latency_ratio: 1000}
`, legacy, newb))
	in := runInstance(t, cfg, path)

	post := func(p, body string) {
		t.Helper()
		resp, err := http.Post("http://"+in.Addr()+p, "application/octet-stream", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	api := func(method, p, body string, out any) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+in.AdminAddr()+p, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+in.Token())
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, p, resp.StatusCode, b)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %v\n%s", method, p, err, b)
			}
		}
	}
	gatesOf := func(route string) []ramp.Gate {
		var v struct {
			Routes []struct {
				Name string
				Ramp *ramp.Status
			}
		}
		api("GET", "/api/v1/routes", "", &v)
		for _, r := range v.Routes {
			if r.Name == route && r.Ramp != nil {
				return r.Ramp.Gates
			}
		}
		return nil
	}
	waitGates := func(route string, ok func([]ramp.Gate) bool) []ramp.Gate {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			g := gatesOf(route)
			if len(g) == 3 && ok(g) {
				return g
			}
			if time.Now().After(deadline) {
				t.Fatalf("route %s: gates %+v", route, g)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// 20 comparisons, every one differing at $.v: real mismatches, until
	// $.v is marked as noise; then the same 20 are noise.
	for i := 0; i < 20; i++ {
		post("/cmp", "x")
	}
	g := waitGates("cmp", func(g []ramp.Gate) bool { return g[0].Samples == 20 })
	if g[0].Value != 1 || g[0].State != ramp.GateFail {
		t.Fatalf("before the mark: diff gate %+v, want all 20 real (fail)", g[0])
	}
	api("POST", "/api/v1/routes/cmp/noise", `{"path": "$.v", "reason": "test: v is a version"}`, nil)
	g = waitGates("cmp", func(g []ramp.Gate) bool { return g[0].Value == 0 })
	if g[0].Samples != 20 || g[0].State != ramp.GatePass { // upper bound of 0/20: 0.119
		t.Fatalf("after the mark: diff gate %+v, want 0 real of 20 (pass)", g[0])
	}

	// 30 requests served by new with no mirror, 6 failing (never 5 in a
	// row, so the breaker stays closed): no comparison, yet the error gate
	// counts all 30.
	for i := 0; i < 30; i++ {
		body := "ok"
		if i%5 == 0 {
			body = "fail"
		}
		post("/served", body)
	}
	g = waitGates("served", func(g []ramp.Gate) bool { return g[1].Samples == 30 })
	if g[1].Value != 0.2 || g[0].Samples != 0 {
		t.Fatalf("error gate %+v, diff gate %+v; want 6 of 30 errors and no comparison", g[1], g[0])
	}

	// The ramp gauges on /metrics say what the API says: each gate's
	// limit, value and bound, the step and the state (0 waiting … 5 done).
	scrape := func() map[string]float64 {
		t.Helper()
		resp, err := http.Get("http://" + in.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := map[string]float64{}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "tandem_ramp_") {
				continue
			}
			name, v, _ := strings.Cut(line, " ")
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("bad line %q", line)
			}
			if _, dup := m[name]; dup {
				t.Fatalf("%s twice on /metrics", name)
			}
			m[name] = f
		}
		return m
	}
	var st struct {
		Routes []struct {
			Name string
			Ramp *ramp.Status
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		api("GET", "/api/v1/routes", "", &st)
		got := scrape()
		want := map[string]float64{}
		limits := map[string]map[string]float64{
			"cmp":    {"diff_rate": 0.2, "error_rate": 0.5, "latency_ratio": 1000},
			"served": {"diff_rate": 0.1, "error_rate": 0.5, "latency_ratio": 1000},
		}
		for _, r := range st.Routes {
			for _, g := range r.Ramp.Gates {
				want[fmt.Sprintf(`tandem_ramp_gate_value{route=%q,gate=%q}`, r.Name, g.Name)] = g.Value
				want[fmt.Sprintf(`tandem_ramp_gate_bound{route=%q,gate=%q}`, r.Name, g.Name)] = g.Bound
				if g.Limit != limits[r.Name][g.Name] {
					t.Fatalf("route %s gate %s: API limit %v, the config says %v", r.Name, g.Name, g.Limit, limits[r.Name][g.Name])
				}
			}
			for g, l := range limits[r.Name] {
				want[fmt.Sprintf(`tandem_ramp_gate_limit{route=%q,gate=%q}`, r.Name, g)] = l
			}
			want[fmt.Sprintf(`tandem_ramp_step_percent{route=%q}`, r.Name)] = r.Ramp.Current
			want[fmt.Sprintf(`tandem_ramp_state{route=%q}`, r.Name)] = float64(ramp.StateCode(r.Ramp.State))
		}
		if fmt.Sprint(got) == fmt.Sprint(want) && len(want) == 2*(3*3+2) {
			if got[`tandem_ramp_state{route="served"}`] != 1 || got[`tandem_ramp_step_percent{route="served"}`] != 100 ||
				got[`tandem_ramp_state{route="cmp"}`] != 0 {
				t.Errorf("states and steps %v: want served holding (1) at 100, cmp waiting (0)", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ramp gauges\n%v\nthe API says\n%v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
