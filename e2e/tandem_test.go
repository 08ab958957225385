package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/realservers"
)

// tandem is one `tandem serve -config FILE` child process.
type tandem struct {
	addr, admin string
	route       string
	cmd         *exec.Cmd
	logs        *strings.Builder
	done        chan struct{}
}

const adminToken = "e2e-admin-token-0123456789"

// startTandem writes a config with one route "media" (prefix /, every
// method, mirror 100, defaults otherwise) from legacy to newURL and starts
// tandem on it; it is stopped with SIGTERM when the test ends.
func startTandem(t *testing.T, legacy, newURL string) *tandem {
	t.Helper()
	dir := t.TempDir()
	tn := &tandem{
		addr:  "127.0.0.1:" + strconv.Itoa(realservers.FreePort(t)),
		admin: "127.0.0.1:" + strconv.Itoa(realservers.FreePort(t)),
		route: "media",
		logs:  &strings.Builder{},
		done:  make(chan struct{}),
	}
	cfg := fmt.Sprintf(`listen: %s
admin: {listen: %s}
data_dir: %s
shutdown_timeout: 5s
backends:
  legacy:
    url: %s
    timeout: 30s
  new:
    url: %s
    timeout: 30s
routes:
  - name: media
    match: {path_prefix: /}
    legacy: legacy
    new: new
    mirror: 100
`, tn.addr, tn.admin, filepath.Join(dir, "data"), legacy, newURL)
	path := filepath.Join(dir, "tandem.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tn.cmd = exec.Command(tandemBin, "serve", "-config", path)
	var lw lockedWriter
	lw.b = tn.logs
	tn.cmd.Stdout, tn.cmd.Stderr = &lw, &lw
	tn.cmd.Env = append(os.Environ(), "TANDEM_ADMIN_TOKEN="+adminToken)
	tn.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := tn.cmd.Start(); err != nil {
		t.Fatalf("cannot start tandem: %v", err)
	}
	go func() { _ = tn.cmd.Wait(); close(tn.done) }()
	t.Cleanup(func() {
		_ = tn.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-tn.done:
		case <-time.After(10 * time.Second):
			_ = tn.cmd.Process.Kill()
			<-tn.done
		}
		if t.Failed() {
			t.Logf("tandem's log:\n%s", lw.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + tn.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return tn
			}
		}
		select {
		case <-tn.done:
			t.Fatalf("tandem exited at start-up:\n%s\n--- config ---\n%s", lw.String(), cfg)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("tandem not ready within 20 s: %v\n%s", err, lw.String())
		}
	}
}

// metrics reads tandem's /metrics: every sample, keyed by its full series
// text (name{labels}).
func (tn *tandem) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	return scrapeMetrics(t, tn.admin)
}

// sum adds the samples of metric whose labels include every one of labels
// (each `name="value"`); found says whether the metric has any series.
func sum(m map[string]float64, metric string, labels ...string) (total float64, found bool) {
	for k, v := range m {
		name, rest, _ := strings.Cut(k, "{")
		if name != metric {
			continue
		}
		found = true
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total, found
}

// series lists the samples of metric (for failure messages).
func series(m map[string]float64, metric string) string {
	var out []string
	for k, v := range m {
		if strings.HasPrefix(k, metric+"{") || k == metric {
			out = append(out, fmt.Sprintf("%s %v", k, v))
		}
	}
	return strings.Join(out, "\n")
}

// awaitCompared waits up to 15 s until tandem has finished the shadows of
// n requests (none in flight and n accounted for under some outcome), then
// requires that all n were mirrored (the shadow answered) and compared
// (compare_total other than result="error").
func (tn *tandem) awaitCompared(t testing.TB, n int) map[string]float64 {
	t.Helper()
	route := `route="` + tn.route + `"`
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := tn.metrics(t)
		outcomes, _ := sum(m, "tandem_shadow_total", route)
		inFlight, _ := sum(m, "tandem_shadow_in_flight")
		sent, _ := sum(m, "tandem_shadow_total", route, `outcome="sent"`)
		all, _ := sum(m, "tandem_compare_total", route)
		dropped, _ := sum(m, "tandem_compare_dropped_total", route)
		// A pair is compared on a compare worker after both sides are in,
		// so the shadows being done (nothing in flight) is not enough: wait
		// until every sent shadow's pair was compared or dropped.
		settled := outcomes >= float64(n) && inFlight == 0 && all+dropped >= sent
		if settled || time.Now().After(deadline) {
			cerr, _ := sum(m, "tandem_compare_total", route, `result="error"`)
			if sent != float64(n) || all-cerr != float64(n) {
				t.Errorf("of %d requests, %v mirrored and %v compared (%v comparisons failed), want all:\n%s\n%s\n%s",
					n, sent, all-cerr, cerr, series(m, "tandem_shadow_total"), series(m, "tandem_compare_total"),
					series(m, "tandem_backend_errors_total"))
			}
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
}
