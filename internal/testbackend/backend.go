package testbackend

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/recorder"
)

// Received is one request as the Backend saw it. It is recorded when the
// handler stops reading the body, whether or not the body was read whole.
type Received struct {
	Method, Path, Host string
	RawQuery           string      // URL query without '?'
	Header             http.Header // cloned; Host and Transfer-Encoding are not in it (net/http moves them)
	ContentLength      int64       // as declared; -1 when unknown (chunked)
	RequestID          string      // X-Request-Id
	Shadow             bool        // X-Tandem-Shadow == "1"
	BodySHA256         string      // hex SHA-256 of the body bytes read
	BodySize           int64       // body bytes read
	Complete           bool        // the body was read to EOF without error
	At                 time.Time   // when reading the body stopped
}

// Backend is a running instrumented HTTP server. Create it with Start.
type Backend struct {
	URL  string // http://127.0.0.1:port
	Addr string // 127.0.0.1:port
	Name string // sent back in the X-Backend response header

	srv    *http.Server
	served chan struct{} // closed when Serve has returned

	mu     sync.Mutex
	mode   Mode
	recs   recorder.Log[Received]
	closed bool

	inflight  sync.WaitGroup // handlers running; Add only under mu while !closed
	done      chan struct{}  // closed by Close: unblocks waiting handlers
	stopped   chan struct{}  // closed once Close has drained every handler
	closeOnce sync.Once
}

// Start starts a Backend named name on 127.0.0.1 with an ephemeral port,
// serving in mode m, and registers t.Cleanup(b.Close). An invalid mode or a
// failure to listen fails t.
func Start(t testing.TB, name string, m Mode) *Backend {
	t.Helper()
	if err := m.validate(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testbackend: cannot listen on 127.0.0.1: %v", err)
	}
	b := &Backend{
		Addr:    ln.Addr().String(),
		Name:    name,
		served:  make(chan struct{}),
		mode:    m,
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	b.URL = "http://" + b.Addr
	b.srv = &http.Server{
		Handler: http.HandlerFunc(b.serveHTTP),
		// Hijacked and aborted connections are the point of some modes; their
		// log lines are noise, and logging to t after a test ends panics.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go b.serveLoop(ln)
	t.Cleanup(b.Close)
	return b
}

// serveLoop runs the http.Server until Close; Close waits for it to return.
func (b *Backend) serveLoop(ln net.Listener) {
	defer close(b.served)
	if err := b.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		panic("BUG: testbackend: serve: " + err.Error())
	}
}

// SetMode switches the mode for requests that arrive from now on; requests
// already being handled keep theirs. It is safe while serving and panics on
// an invalid mode.
func (b *Backend) SetMode(m Mode) {
	if err := m.validate(); err != nil {
		panic(err)
	}
	b.mu.Lock()
	b.mode = m
	b.mu.Unlock()
}

// Received returns a copy of the recorded requests in the order their bodies
// finished (or stopped) being read. The caller owns the copy, headers included.
func (b *Backend) Received() []Received {
	out := b.recs.All()
	for i := range out {
		out[i].Header = out[i].Header.Clone()
	}
	return out
}

// Count returns the number of recorded requests.
func (b *Backend) Count() int { return b.recs.Len() }

// WaitCount waits until at least n requests are recorded and reports whether
// that happened within timeout. It returns false early once the backend is
// closed with fewer than n recorded, since no more can arrive.
func (b *Backend) WaitCount(n int, timeout time.Duration) bool {
	return b.recs.Wait(n, timeout, b.stopped)
}

// Reset forgets every recorded request. Requests still being read are
// recorded when they finish.
func (b *Backend) Reset() { b.recs.Reset() }

// Close stops the server, closes every connection, unblocks hung and delayed
// handlers and waits for all handlers to return. It is idempotent and safe to
// call concurrently; Received still works afterwards.
func (b *Backend) Close() {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		_ = b.srv.Close() // listener and tracked connections; not hijacked ones
		close(b.done)
		b.inflight.Wait()
		<-b.served
		close(b.stopped)
	})
}

// begin admits a handler: it returns the mode in force, or false once the
// backend is closing.
func (b *Backend) begin() (Mode, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Mode{}, false
	}
	b.inflight.Add(1)
	return b.mode, true
}

func (b *Backend) record(rec Received) { b.recs.Add(rec) }

// ClosedURL returns the URL of a 127.0.0.1 port that refuses connections: it
// binds an ephemeral port and closes it at once. Nothing else in the test
// process listens on it, though another process could in principle take the
// port later.
func ClosedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testbackend: cannot listen on 127.0.0.1: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("testbackend: cannot close listener: %v", err)
	}
	return "http://" + addr
}
