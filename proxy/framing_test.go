package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/exchange"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// Malformed or ambiguous framing gets 400 (or 413/431 for sizes) and a
// closed connection, and no backend ever receives the request.
func TestBadFramingNeverReachesBackend(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfg := basicConfig + "limits: {max_body: 1MiB}\nclient: {max_header: 8KiB}\n"
	f := startProxy(t, cfg, map[string]string{"legacy": legacy.URL, "new": newb.URL})
	big := strings.Repeat("a", 10<<10)
	cases := []struct {
		name, raw string
		status    int
	}{
		{"CL and TE", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
		{"TE and CL", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
		{"conflicting CL", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
		{"CL list", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", 400},
		{"negative CL", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello", 400},
		{"TE not chunked", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
		{"TE xchunked", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
		{"two TE", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
		{"bad chunk size", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size overflow", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400},
		{"obs-fold", "POST /upload HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n", 400},
		{"space before colon", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", 400},
		// Refused on its declared length, whether or not the body follows
		// (TestImmediateRefusals: without a body byte, at once).
		{"body over max_body", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n" + strings.Repeat("b", 9000), 413},
		{"headers over max_header", "POST /upload HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\nContent-Length: 0\r\n\r\n", 431},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := rawExchange(t, f.addr, c.raw)
			if !strings.HasPrefix(out, fmt.Sprintf("HTTP/1.1 %d ", c.status)) {
				t.Fatalf("got %q, want status %d", firstLine(out), c.status)
			}
		})
	}
	// Let any stray request arrive before checking.
	time.Sleep(200 * time.Millisecond)
	for _, r := range legacy.Received() {
		if r.Complete {
			t.Errorf("legacy received a complete request: %+v", r)
		}
	}
	if newb.Count() != 0 {
		t.Errorf("new received %d requests", newb.Count())
	}
}

// A chunked body over max_body is cut off: 413, and the backend never gets a
// complete request. The client is still sending when the proxy answers; it
// must read the 413 rather than a reset (f.post fails the test on any
// transport error), which the proxy's lingering close (linger.go) ensures.
// Several rounds, since without it the reset came in about half of them.
func TestChunkedOverMaxBody(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, basicConfig+"limits: {max_body: 64KiB}\n", map[string]string{"legacy": legacy.URL, "new": newb.URL})
	const rounds = 5
	for i := 0; i < rounds; i++ {
		st, _, n, _ := f.post("/upload", tb.PatternReader(1, 1<<20), -1, nil)
		if st != 413 || n != int64(len("tandem: request body too large\n")) {
			t.Fatalf("round %d: status %d with a %d-byte body, want 413 and its message", i, st, n)
		}
	}
	time.Sleep(100 * time.Millisecond)
	for _, r := range legacy.Received() {
		if r.Complete {
			t.Fatalf("legacy received a complete request of %d bytes", r.BodySize)
		}
	}
	if newb.Count() != 0 {
		t.Fatalf("the shadow received %d requests", newb.Count())
	}
	if got := f.metric(shadowMetric("up", exchange.Error)); got != rounds {
		t.Fatalf("shadow error outcome = %v, want %d", got, rounds)
	}
}

// Expect: 100-continue over the limit gets a final 413 without the body.
func TestExpectContinueOverLimit(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, basicConfig+"limits: {max_body: 1KiB}\n", map[string]string{"legacy": legacy.URL, "new": newb.URL})
	out := rawExchange(t, f.addr, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 413 ") {
		t.Fatalf("got %q", firstLine(out))
	}
	out = rawExchange(t, f.addr, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhello")
	if !strings.Contains(out, "HTTP/1.1 200 ") {
		t.Fatalf("under the limit: got %q", out)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\r'); i >= 0 {
		return s[:i]
	}
	return s
}
