package proxy

import (
	"strings"
	"testing"

	"github.com/tandem-proxy/tandem/exchange"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// The client gets legacy's bytes exactly, and the shadow gets the identical
// body with the same request id, for every mirrored request.
func TestServedBytesExactAndShadowBodyIdentical(t *testing.T) {
	sizes := []int64{0, 1 << 10, 1 << 20, 64 << 20}
	if !testing.Short() && !raceEnabled {
		sizes = append(sizes, 512<<20)
	}
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoBody})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	// The backend timeout bounds the whole exchange, streaming included:
	// give 64 MiB each way time on a loaded machine under -race.
	cfg := strings.ReplaceAll(basicConfig, "timeout: 5s", "timeout: 120s")
	f := startProxy(t, cfg, map[string]string{"legacy": legacy.URL, "new": newb.URL})
	for i, n := range sizes {
		// Legacy reads the whole upload, then streams a response of the same
		// size (a different pattern), so both directions carry n bytes.
		legacy.SetMode(tb.Mode{Kind: tb.KindHuge, Size: n, Seed: int64(i) + 100})
		want := tb.PatternSHA256(int64(i), n)
		wantResp := tb.PatternSHA256(int64(i)+100, n)
		status, got, size, _ := f.post("/upload/x", tb.PatternReader(int64(i), n), n, map[string]string{"X-Request-Id": "req-" + want[:8]})
		if status != 200 || got != wantResp || size != n {
			t.Fatalf("size %d: status %d, got sha %s (%d bytes), want %s", n, status, got, size, wantResp)
		}
		if lg := legacy.Received()[i]; lg.BodySHA256 != want || !lg.Complete {
			t.Fatalf("size %d: legacy received sha %s complete %v, want %s", n, lg.BodySHA256, lg.Complete, want)
		}
		if !newb.WaitCount(i+1, 30e9) {
			t.Fatalf("size %d: shadow never arrived", n)
		}
		sh := newb.Received()[i]
		lg := legacy.Received()[i]
		if sh.BodySHA256 != want || sh.BodySize != n || !sh.Complete {
			t.Errorf("size %d: shadow body sha %s size %d complete %v, want %s", n, sh.BodySHA256, sh.BodySize, sh.Complete, want)
		}
		if sh.RequestID != "req-"+want[:8] || lg.RequestID != sh.RequestID {
			t.Errorf("size %d: request ids legacy %q shadow %q", n, lg.RequestID, sh.RequestID)
		}
		if !sh.Shadow || lg.Shadow {
			t.Errorf("size %d: X-Tandem-Shadow legacy %v shadow %v", n, lg.Shadow, sh.Shadow)
		}
	}
	f.waitMetric(shadowMetric("up", exchange.Sent), float64(len(sizes)))
	if got := f.metric(`tandem_requests_total{route="up",served_by="legacy"}`); got != float64(len(sizes)) {
		t.Errorf("requests served by legacy = %v, want %d", got, len(sizes))
	}
}

// A chunked upload (no Content-Length) is relayed and mirrored the same way.
func TestChunkedUpload(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoBody})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, basicConfig, map[string]string{"legacy": legacy.URL, "new": newb.URL})
	n := int64(3<<20 + 17)
	want := tb.PatternSHA256(7, n)
	status, got, _, _ := f.post("/upload", tb.PatternReader(7, n), -1, nil)
	if status != 200 || got != want {
		t.Fatalf("status %d sha %s, want 200 %s", status, got, want)
	}
	if !newb.WaitCount(1, 10e9) {
		t.Fatal("no shadow")
	}
	if r := newb.Received()[0]; r.BodySHA256 != want || !r.Complete {
		t.Fatalf("shadow got %s complete=%v", r.BodySHA256, r.Complete)
	}
	if r := legacy.Received()[0]; r.RequestID == "" || r.RequestID != newb.Received()[0].RequestID {
		t.Fatalf("generated request id not shared: legacy %q new %q", r.RequestID, newb.Received()[0].RequestID)
	}
}
