package proxy

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/exchange"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

func withMirror(cfg string, pct string) string {
	return strings.Replace(cfg, "mirror: 100", "mirror: "+pct, 1)
}

// mirror 0 and 100 are exact; mirror 30 lies within binomial bounds.
func TestMirrorSampling(t *testing.T) {
	cases := []struct {
		pct    string
		n      int
		lo, hi int
	}{
		{"0", 300, 0, 0},       // never mirrored
		{"100", 300, 300, 300}, // always mirrored
		// 2,000 draws at p=0.3: mean 600, sd 20.5; ±5 sd
		{"30", 2000, 498, 702},
	}
	for _, c := range cases {
		t.Run(c.pct, func(t *testing.T) {
			legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
			newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
			f := startProxy(t, withMirror(basicConfig, c.pct), map[string]string{"legacy": legacy.URL, "new": newb.URL})
			var wg sync.WaitGroup
			work := make(chan int)
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						if st, _, _, _ := f.post("/upload", bytes.NewReader([]byte("x")), 1, nil); st != 200 {
							t.Errorf("status %d", st)
						}
					}
				}()
			}
			for i := 0; i < c.n; i++ {
				work <- i
			}
			close(work)
			wg.Wait()
			sampled := f.metric(shadowMetric("up", exchange.Sampling))
			mirrored := float64(c.n) - sampled
			f.waitMetric(shadowMetric("up", exchange.Sent), mirrored)
			if got := newb.Count(); got < c.lo || got > c.hi || float64(got) != mirrored {
				t.Fatalf("mirrored %d of %d (metric says %v), want within [%d, %d]", got, c.n, mirrored, c.lo, c.hi)
			}
			if legacy.Count() != c.n {
				t.Fatalf("legacy got %d, want %d", legacy.Count(), c.n)
			}
		})
	}
}

// A hung shadow costs the served request nothing.
func TestHungShadowDoesNotDelayServed(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindHang})
	cfg := strings.Replace(basicConfig, `new:    {url: "{{new}}", timeout: 5s}`, `new:    {url: "{{new}}", timeout: 30s}`, 1)
	f := startProxy(t, cfg, map[string]string{"legacy": legacy.URL, "new": newb.URL})
	for i := 0; i < 10; i++ {
		start := time.Now()
		st, _, _, _ := f.post("/upload", bytes.NewReader([]byte("hello")), 5, nil)
		// A served request that waited for the hung shadow would take 30 s.
		if d := time.Since(start); st != 200 || d > 5*time.Second {
			t.Fatalf("request %d: status %d after %v", i, st, d)
		}
	}
}

// 50 sequential requests on one keep-alive connection with a 1 s shadow delay
// finish in seconds, not 50: the failure that makes nginx's mirror unusable.
func TestSlowShadowKeepAliveSequence(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash, Delay: time.Second})
	f := startProxy(t, basicConfig, map[string]string{"legacy": legacy.URL, "new": newb.URL})
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	start := time.Now()
	for i := 0; i < 50; i++ {
		resp, err := client.Post(f.url+"/upload", "application/octet-stream", strings.NewReader("abc"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// Waiting on the shadow would take at least 50 s; allow a wide margin
	// for slow CI machines and still fail that behaviour.
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("50 sequential requests took %v", d)
	}
	f.waitMetric(shadowMetric("up", exchange.Sent), 50)
}

// A misbehaving shadow: every client request still gets legacy's answer, and
// each shadow failure is counted.
func TestShadowFailuresDoNotReachClient(t *testing.T) {
	huge := int64(1 << 30)
	if raceEnabled || testing.Short() {
		huge = 16 << 20
	}
	modes := []struct {
		name string
		mode tb.Mode
		url  string           // overrides the new backend URL
		want exchange.Outcome // shadow outcome
	}{
		{"refused", tb.Mode{}, "closed", exchange.Error},
		{"reset", tb.Mode{Kind: tb.KindReset}, "", exchange.Error},
		{"garbage", tb.Mode{Kind: tb.KindGarbage}, "", exchange.Error},
		{"5xx", tb.Mode{Kind: tb.KindStatus, Status: 503}, "", exchange.Sent},
		{"huge", tb.Mode{Kind: tb.KindHuge, Size: huge}, "", exchange.Sent},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
			newURL := tb.ClosedURL(t)
			if m.url == "" {
				newURL = tb.Start(t, "new", m.mode).URL
			}
			// A lenient breaker so that every request reaches the shadow.
			cfg := strings.Replace(basicConfig, `new:    {url: "{{new}}", timeout: 5s}`,
				`new:    {url: "{{new}}", timeout: 60s, breaker: {consecutive_failures: 1000}}`, 1)
			f := startProxy(t, cfg, map[string]string{"legacy": legacy.URL, "new": newURL})
			const n = 6
			for i := 0; i < n; i++ {
				body := fmt.Sprintf("upload-%d", i)
				st, got, _, _ := f.post("/upload", strings.NewReader(body), int64(len(body)), nil)
				if st != 200 || got == "" {
					t.Fatalf("request %d: status %d", i, st)
				}
			}
			f.waitMetric(shadowMetric("up", m.want), n)
			if legacy.Count() != n {
				t.Fatalf("legacy got %d requests, want %d", legacy.Count(), n)
			}
			// Every finished shadow yields exactly one comparison: a failed
			// one is a compare error, an answered one a verdict.
			errName := `tandem_compare_total{route="up",result="error"}`
			total := 0.0
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				total = 0
				for _, r := range compareResults {
					total += f.metric(fmt.Sprintf(`tandem_compare_total{route="up",result=%q}`, r))
				}
				if total >= n {
					break
				}
			}
			if total != n || (m.want == exchange.Error) != (f.metric(errName) == n) {
				t.Fatalf("comparisons: %v in all, %v errors; want %d, all errors iff the shadow failed", total, f.metric(errName), n)
			}
		})
	}
}

// mirrored + skipped = requests, and the skip reasons are counted.
func TestShadowQueueFullIsCounted(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindHang})
	cfg := basicConfig + "limits: {shadow_concurrency: 2}\n"
	f := startProxy(t, cfg, map[string]string{"legacy": legacy.URL, "new": newb.URL})
	const n = 10
	for i := 0; i < n; i++ {
		if st, _, _, _ := f.post("/upload", strings.NewReader("x"), 1, nil); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	// Two workers hang on the shadow; everything after is skipped.
	if got := f.metric(shadowMetric("up", exchange.QueueFull)); got != n-2 {
		t.Fatalf("queue_full = %v, want %d", got, n-2)
	}
	if !newb.WaitCount(2, 5*time.Second) || newb.Count() != 2 {
		t.Fatalf("new got %d requests, want 2", newb.Count())
	}
	newb.Close() // release the hung shadows before cleanup
	f.waitMetric(shadowMetric("up", exchange.Error), 2)
	total := 0.0
	for _, o := range exchange.Outcomes {
		total += f.metric(shadowMetric("up", o))
	}
	if math.Abs(total-n) > 0 {
		t.Fatalf("shadow outcomes sum to %v, want %d", total, n)
	}
}
