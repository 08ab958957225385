package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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
	in, err := Open(cfg, Options{ConfigPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; in.Close() })

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
}
