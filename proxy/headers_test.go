package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// Hop-by-hop headers, and every header named in Connection, never reach a
// backend; X-Forwarded-* are set; Host is kept.
func TestHopByHopHeadersRemoved(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, basicConfig, map[string]string{"legacy": legacy.URL, "new": newb.URL})
	raw := "POST /upload?q=1 HTTP/1.1\r\n" +
		"Host: media.example\r\n" +
		"Connection: keep-alive, X-Forwarded-For, X-Secret\r\n" +
		"Connection: X-Other\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Upgrade: h2c\r\n" +
		"Proxy-Connection: keep-alive\r\n" +
		"TE: trailers\r\n" +
		"X-Secret: s\r\nX-Other: o\r\n" +
		"X-Forwarded-For: 10.9.9.9\r\n" +
		"X-Kept: yes\r\n" +
		"Content-Length: 3\r\n\r\nabc" +
		"GET /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	out := rawExchange(t, f.addr, raw)
	if strings.Count(out, "HTTP/1.1 200 ") != 2 {
		t.Fatalf("want two 200 answers, got %q", out)
	}
	if !legacy.WaitCount(2, 30*time.Second) || !newb.WaitCount(2, 30*time.Second) {
		got, _ := f.shadowOutcomes()
		t.Fatalf("legacy got %d requests and new %d, want 2 each; shadow outcomes %v", legacy.Count(), newb.Count(), got)
	}
	// Shadows run concurrently, so new may see them in either order.
	post := func(rs []tb.Received) tb.Received {
		for _, r := range rs {
			if r.Method == "POST" {
				return r
			}
		}
		t.Fatal("no POST received")
		return tb.Received{}
	}
	for _, r := range []tb.Received{post(legacy.Received()), post(newb.Received())} {
		for _, h := range []string{"Connection", "Keep-Alive", "Upgrade", "Proxy-Connection", "Te", "X-Secret", "X-Other"} {
			if v := r.Header.Values(h); len(v) > 0 {
				t.Errorf("backend got hop-by-hop %s: %q", h, v)
			}
		}
		// X-Forwarded-For was named in Connection, so the client's value is
		// dropped; the proxy's own entry is the peer address.
		if got := r.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", got)
		}
		if r.Host != "media.example" || r.Header.Get("X-Forwarded-Host") != "media.example" || r.Header.Get("X-Forwarded-Proto") != "http" {
			t.Errorf("host %q xfh %q xfp %q", r.Host, r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"))
		}
		if r.Header.Get("X-Kept") != "yes" || r.RawQuery != "q=1" || r.BodySize != 3 {
			t.Errorf("end-to-end parts lost: %+v", r)
		}
	}
}

// X-Forwarded-For is appended to, not replaced.
func TestXForwardedForAppended(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, `
data_dir: {{data}}
backends: {legacy: {url: "{{legacy}}"}}
routes: [{name: r, legacy: legacy}]
`, map[string]string{"legacy": legacy.URL})
	req, _ := http.NewRequest("GET", f.url+"/x", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := legacy.Received()[0].Header.Get("X-Forwarded-For"); got != "203.0.113.7, 127.0.0.1" {
		t.Fatalf("X-Forwarded-For = %q", got)
	}
}

// Response hop-by-hop headers are removed; the rest arrive unchanged.
func TestResponseHeadersRelayed(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, `
data_dir: {{data}}
backends: {legacy: {url: "{{legacy}}"}}
routes: [{name: r, legacy: legacy}]
`, map[string]string{"legacy": legacy.URL})
	resp, err := f.client.Get(f.url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Backend") != "legacy" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", resp.Header)
	}
	if resp.Header.Get("Server") != "" {
		t.Fatalf("tandem added a Server header: %q", resp.Header.Get("Server"))
	}
}
