package proxy

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

type recorder struct {
	mu  sync.Mutex
	exs []*exchange.Exchange
	ch  chan struct{}
}

func (r *recorder) Observe(ex *exchange.Exchange) {
	r.mu.Lock()
	r.exs = append(r.exs, ex)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *recorder) wait(t *testing.T, n int) []*exchange.Exchange {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d exchanges observed", i, n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*exchange.Exchange(nil), r.exs...)
}

// Comparisons are oriented legacy → new whichever side serves, and their
// results reach the counters and the observer.
func TestComparisonOrientationAndCounters(t *testing.T) {
	for _, serveNew := range []string{"0", "100"} {
		t.Run("serve_new="+serveNew, func(t *testing.T) {
			legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
			newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
			cfg := strings.Replace(basicConfig, "mirror: 100", "mirror: 100\n    serve_new: "+serveNew, 1)
			cfg = strings.ReplaceAll(cfg, "{{legacy}}", legacy.URL)
			cfg = strings.ReplaceAll(cfg, "{{new}}", newb.URL)
			cfg = strings.ReplaceAll(cfg, "{{data}}", t.TempDir())
			rec := &recorder{ch: make(chan struct{}, 16)}
			srv, addr := mustServeWith(t, cfg, rec)
			f := &fixture{t: t, srv: srv, addr: addr, url: "http://" + addr, client: newClient()}
			const n = 3
			for i := 0; i < n; i++ {
				if st, _, _, _ := f.post("/upload", strings.NewReader("abc"), 3, nil); st != 200 {
					t.Fatalf("status %d", st)
				}
			}
			exs := rec.wait(t, n)
			wantServed := map[string]string{"0": "legacy", "100": "new"}[serveNew]
			for _, ex := range exs {
				if ex.ServedBy != wantServed {
					t.Errorf("served by %s, want %s", ex.ServedBy, wantServed)
				}
				if got := headerOf(ex.Legacy, "X-Backend"); got != "legacy" {
					t.Errorf("Legacy side holds %q's response", got)
				}
				if got := headerOf(ex.New, "X-Backend"); got != "new" {
					t.Errorf("New side holds %q's response", got)
				}
				// The backends differ in X-Backend and in the JSON "shadow" field.
				if ex.Result.Outcome != compare.OutcomeMismatch || !hasDiff(ex.Result, compare.KindJSON, "$.shadow") {
					t.Errorf("result %+v", ex.Result)
				}
			}
			if got := f.metric(`tandem_compare_total{route="up",result="mismatch"}`); got != n {
				t.Errorf("mismatches counted %v, want %d", got, n)
			}
			if got := f.metric(`tandem_mismatch_total{route="up",kind="json"}`); got != n {
				t.Errorf("json mismatches counted %v, want %d", got, n)
			}
		})
	}
}

func headerOf(r *compare.Response, name string) string {
	for _, h := range r.Header {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

func hasDiff(r compare.Result, k compare.Kind, path string) bool {
	for _, d := range r.Diffs {
		if d.Kind == k && d.Path == path {
			return true
		}
	}
	return false
}
