package proxy

import (
	"io"
	"strings"
	"testing"
	"time"

	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

const passConfig = `
data_dir: {{data}}
backends: {legacy: {url: "{{legacy}}", timeout: 300ms}}
routes: [{name: r, match: {path_prefix: /up}, legacy: legacy}]
`

// Serving backend unreachable → 502, timed out → 504, no route → 404, each
// with a short plain-text reason.
func TestServingBackendErrors(t *testing.T) {
	hang := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindHang})
	cases := []struct {
		name, legacy, path string
		status             int
		reason             string
	}{
		{"unreachable", tb.ClosedURL(t), "/up", 502, "backend legacy failed: connect"},
		{"timeout", hang.URL, "/up", 504, "backend legacy timed out"},
		{"no route", hang.URL, "/other", 404, "no route"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := startProxy(t, passConfig, map[string]string{"legacy": c.legacy})
			start := time.Now()
			resp, err := f.client.Post(f.url+c.path, "text/plain", strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(b), c.reason) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, b, c.status, c.reason)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("answer took %v", d)
			}
		})
	}
}

// With serve_new 100 and the new backend refusing connections, legacy serves
// (a fallback) and, once the breaker opens, new is not even tried.
func TestNewRefusingFallsBackToLegacy(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	cfg := strings.Replace(basicConfig, "mirror: 100", "mirror: 0\n    serve_new: 100", 1)
	cfg = strings.Replace(cfg, `new:    {url: "{{new}}", timeout: 5s}`, `new:    {url: "{{new}}", timeout: 5s, breaker: {consecutive_failures: 3, open_for: 1h}}`, 1)
	f := startProxy(t, cfg, map[string]string{"legacy": legacy.URL, "new": tb.ClosedURL(t)})
	for i := 0; i < 10; i++ {
		st, _, _, _ := f.post("/upload", strings.NewReader("abc"), 3, nil)
		if st != 200 {
			t.Fatalf("request %d: status %d", i, st)
		}
	}
	if legacy.Count() != 10 {
		t.Fatalf("legacy served %d, want 10", legacy.Count())
	}
	if got := f.metric(`tandem_fallback_total{route="up"}`); got != 10 {
		t.Fatalf("fallbacks = %v, want 10", got)
	}
	// 3 connect failures opened the breaker; the other 7 never tried new.
	if got := f.metric(`tandem_backend_errors_total{route="up",backend="new",reason="connect"}`); got != 3 {
		t.Fatalf("connect errors = %v, want 3", got)
	}
	if got := f.metric(`tandem_breaker_state{backend="new"}`); got != 2 {
		t.Fatalf("breaker state = %v, want 2 (open)", got)
	}
}
