package proxy

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/backends"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
	"github.com/tandem-proxy/tandem/rules"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// No access log unless asked; -access-log 1 logs one line per request, and
// 0.5 about half of them.
func TestAccessLogSampled(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	for _, c := range []struct {
		share  float64
		lo, hi int
	}{{0, 0, 0}, {1, 200, 200}, {0.5, 70, 130}} {
		b, err := backends.New("legacy", backends.Options{URLs: []string{legacy.URL}})
		if err != nil {
			t.Fatal(err)
		}
		var buf lockedBuf
		srv, err := New(Options{
			Backends:  map[string]*backends.Backend{"legacy": b},
			Rules:     &rules.Rules{Version: 1, Routes: []rules.Route{{Name: "r", Legacy: "legacy"}}},
			SpoolDir:  t.TempDir(),
			Logger:    slog.New(slog.NewTextHandler(&buf, nil)),
			AccessLog: c.share,
		})
		if err != nil {
			t.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		go srv.Serve(ln)
		f := &fixture{t: t, srv: srv, addr: ln.Addr().String(), url: "http://" + ln.Addr().String(), client: newClient()}
		for i := 0; i < 200; i++ {
			f.post("/x", strings.NewReader("a"), 1, nil)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(ctx)
		cancel()
		if n := strings.Count(buf.String(), "msg=request "); n < c.lo || n > c.hi {
			t.Errorf("access-log %v: %d lines for 200 requests, want %d..%d", c.share, n, c.lo, c.hi)
		}
	}
}
