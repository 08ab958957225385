package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// jsonBackend answers {"v": N} after reading the body; N can change live.
type jsonBackend struct {
	url string
	v   atomic.Int64
}

func startJSONBackend(t *testing.T, v int64) *jsonBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &jsonBackend{url: "http://" + ln.Addr().String()}
	b.v.Store(v)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"v": %d, "ok": true}`, b.v.Load())
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

// End to end: an automatic ramp walks 0 → 5 → 25; the new backend starts
// returning a wrong field once the route reaches 25%; the ramp rolls back to
// 0 and /api/v1/events says which gate failed and why.
func TestRampRollsBackOnRegression(t *testing.T) {
	legacy := startJSONBackend(t, 1)
	newb := startJSONBackend(t, 1)
	p := startInProcess(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
backends:
  legacy: {url: %q}
  new: {url: %q}
routes:
  - name: images
    legacy: legacy
    new: new
    sticky: header:X-User-Id
    ramp: {steps: [5, 25, 50, 100], hold: 1s, min_compared: 20, max_diff_rate: 0.01, max_error_rate: 0.01, max_latency_ratio: 100}
`, legacy.url, newb.url), "")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			deadline := time.Now().Add(60 * time.Second)
			for i := 0; time.Now().Before(deadline) && i < 200000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", p.proxyBase+"/upload", strings.NewReader("img"))
				req.Header.Set("X-User-Id", fmt.Sprintf("u%d-%d", w, i))
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		}(w)
	}
	defer func() { close(stop); wg.Wait() }()

	var seen []float64
	broke := false
	deadline := time.Now().Add(50 * time.Second)
	for time.Now().Before(deadline) {
		pct := p.rules().Routes[0].ServeNew
		if len(seen) == 0 || seen[len(seen)-1] != pct {
			seen = append(seen, pct)
		}
		if pct >= 25 && !broke {
			newb.v.Store(2) // the regression appears at 25%
			broke = true
		}
		if broke && pct == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !broke || seen[len(seen)-1] != 0 {
		t.Fatalf("serve_new went %v (sent %d requests); want 0 → 5 → 25 → rollback to 0", seen, sent.Load())
	}
	if len(seen) < 4 || seen[0] != 0 || seen[1] != 5 || seen[2] != 25 {
		t.Fatalf("serve_new went %v, want 0, 5, 25, ..., 0", seen)
	}
	var rollback *struct{ reason, gate string }
	for _, e := range p.events() {
		if e.Kind == "ramp_rollback" && e.Actor == "ramp" {
			rollback = &struct{ reason, gate string }{e.Reason, fmt.Sprint(e.Details["gate"])}
		}
	}
	if rollback == nil {
		t.Fatalf("no ramp_rollback event in %+v", p.events())
	}
	if rollback.gate != "diff_rate" || !strings.Contains(rollback.reason, "diff rate") {
		t.Fatalf("rollback event gate %q reason %q", rollback.gate, rollback.reason)
	}
	// The ramp stays halted: it does not promote again by itself.
	time.Sleep(2500 * time.Millisecond)
	if pct := p.rules().Routes[0].ServeNew; pct != 0 {
		t.Fatalf("ramp promoted again to %v after rolling back", pct)
	}
}
