package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/internal/pgtest"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// fleetInstance opens and runs one instance of a fleet on url with one
// mirrored route "up"; it is shut down at the end of the test.
func fleetInstance(t *testing.T, url, name, legacy, newURL string) *Instance {
	t.Helper()
	return fleetInstanceWith(t, url, name, legacy, newURL, "[{name: up, legacy: legacy, new: new, mirror: 100}]")
}

// fleetInstanceWith is fleetInstance with the routes given as YAML.
func fleetInstanceWith(t *testing.T, url, name, legacy, newURL, routes string) *Instance {
	t.Helper()
	cfg, path := loadConfig(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
shutdown_timeout: 5s
fleet: {database: %q, instance: %q}
backends:
  legacy: {url: %q}
  new: {url: %q}
routes: %s
`, url, name, legacy, newURL, routes))
	return runInstance(t, cfg, path)
}

// runInstance opens and runs an instance of cfg (loaded from path), its
// log discarded; it is shut down and closed at the end of the test.
func runInstance(t *testing.T, cfg *config.Config, path string) *Instance {
	t.Helper()
	in, err := Open(cfg, Options{ConfigPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; in.Close() })
	return in
}

func adminDo(t *testing.T, in *Instance, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+in.AdminAddr()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+in.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func metricValue(t *testing.T, in *Instance, name string) string {
	t.Helper()
	_, body := adminDo(t, in, "GET", "/metrics", "")
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return f[1]
		}
	}
	return ""
}

// Two instances on one database are one tandem: a promote through one is in
// force on the other within 2 s, both export the fleet's metrics, and the
// data plane keeps serving while the database is down (a promote gets 503).
func TestFleetInstancesShareRules(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase()
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	a := fleetInstance(t, url, "a", legacy.URL, newb.URL)
	b := fleetInstance(t, url, "b", legacy.URL, newb.URL)
	if a.State().Current().Version != 1 || b.State().Current().Version != 1 {
		t.Fatalf("versions at start %d and %d, want 1 (seeded once)", a.State().Current().Version, b.State().Current().Version)
	}
	if code, body := adminDo(t, a, "POST", "/api/v1/routes/up/promote", `{"percent": 40, "reason": "fleet test"}`); code != 200 {
		t.Fatalf("promote through a: %d %s", code, body)
	}
	deadline := time.Now().Add(2 * time.Second)
	for b.Proxy().RulesVersion() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("b has version %d in force 2 s after the promote through a", b.Proxy().RulesVersion())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, in := range []*Instance{a, b} {
		if v := metricValue(t, in, "tandem_rules_applied_version"); v != "2" {
			t.Errorf("%s: tandem_rules_applied_version %q, want 2", in.InstanceName(), v)
		}
		if v := metricValue(t, in, "tandem_fleet_database_up"); v != "1" {
			t.Errorf("%s: tandem_fleet_database_up %q, want 1", in.InstanceName(), v)
		}
	}

	c.Stop()
	// Serving goes on with the rules in force.
	for i := 0; i < 20; i++ {
		resp, err := http.Post("http://"+b.Addr()+"/upload", "text/plain", strings.NewReader(fmt.Sprint("body ", i)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d with the database down: %d", i, resp.StatusCode)
		}
	}
	if code, body := adminDo(t, b, "POST", "/api/v1/routes/up/promote", `{"percent": 50, "reason": "db down"}`); code != 503 {
		t.Fatalf("promote with the database down: %d %s, want 503", code, body)
	}
	deadline = time.Now().Add(10 * time.Second)
	for metricValue(t, b, "tandem_fleet_database_up") != "0" {
		if time.Now().After(deadline) {
			t.Fatal("tandem_fleet_database_up still 1 10 s after the database stopped")
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Restart()
	deadline = time.Now().Add(15 * time.Second)
	for {
		code, _ := adminDo(t, b, "POST", "/api/v1/routes/up/promote", `{"percent": 50, "reason": "db back"}`)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("promote still %d 15 s after the database came back", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	deadline = time.Now().Add(2 * time.Second)
	for a.Proxy().RulesVersion() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("a has version %d in force 2 s after the promote through b", a.Proxy().RulesVersion())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A ramp across two instances: one of them drives it (both show the same
// driver), the gates count both instances' comparisons (min_compared is
// more than either sees alone), and each step is in the audit log once.
func TestFleetRampOneDriver(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase()
	same := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"v": 1}`)
	}
	legacy, newb := startBackend(t, same), startBackend(t, same)
	var ins []*Instance
	const routes = `
  - name: up
    legacy: legacy
    new: new
    serve_new: 10
    mirror: 100
    ramp: {steps: [10, 50, 100], hold: 1s, min_compared: 30, max_diff_rate: 0.5, max_error_rate: 0.5, max_latency_ratio: 1000}`
	for _, name := range []string{"a", "b"} {
		ins = append(ins, fleetInstanceWith(t, url, name, legacy, newb, routes))
	}
	// 20 requests through each: 40 compared in the fleet, 20 on each.
	for _, in := range ins {
		for i := 0; i < 20; i++ {
			resp, err := http.Post("http://"+in.Addr()+"/up", "text/plain", strings.NewReader(fmt.Sprint("body ", i)))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for serveNewOf(ins[0]) != 50 || serveNewOf(ins[1]) != 50 {
		if time.Now().After(deadline) {
			_, body := adminDo(t, ins[0], "GET", "/api/v1/routes", "")
			t.Fatalf("the ramp did not step to 50%% on both within 30 s: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	drivers := map[string]bool{}
	for _, in := range ins {
		st := in.ctl.Status(&in.State().Current().Routes[0])
		drivers[st.Driver] = true
	}
	if len(drivers) != 1 || drivers[""] {
		t.Fatalf("drivers seen by the two instances: %v, want one name", drivers)
	}
	evs, err := ins[1].State().Events(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for _, e := range evs {
		if e.Kind == "ramp_step" {
			steps++
		}
	}
	if steps != 1 {
		t.Fatalf("%d ramp_step events for one step: %+v", steps, evs)
	}
}

func serveNewOf(in *Instance) float64 {
	return in.State().Current().Routes[0].ServeNew
}
