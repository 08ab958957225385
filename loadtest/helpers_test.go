package loadtest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// received is what the test backend saw of one request.
type received struct {
	at       time.Time
	method   string
	host     string
	path     string
	header   http.Header
	body     []byte
	inFlight int // requests in flight when this one arrived, itself included
}

// backend is a 127.0.0.1 HTTP server that records every request and
// answers with answer (nil: 200 and an empty body).
type backend struct {
	*httptest.Server
	mu          sync.Mutex
	got         []received
	inFlight    int
	maxInFlight int
}

// newBackend starts a backend; answer gets the request's arrival index.
func newBackend(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		b.mu.Lock()
		n := len(b.got)
		b.inFlight++
		b.maxInFlight = max(b.maxInFlight, b.inFlight)
		b.got = append(b.got, received{at: at, method: r.Method, host: r.Host, path: r.URL.Path, header: r.Header.Clone(), body: body, inFlight: b.inFlight})
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			b.inFlight--
			b.mu.Unlock()
		}()
		if answer != nil {
			answer(n, w, r)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) requests() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.got...)
}

// attack runs an attack and fails the test on a setup error. The context
// bounds the attack at 20 s whatever its options say.
func attack(t *testing.T, tg *Targets, o Options) *Results {
	t.Helper()
	a, err := NewAttacker(tg, o)
	if err != nil {
		t.Fatalf("NewAttacker: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := a.Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if p := a.Progress(); p.Sent != res.Requests || p.Done != res.Requests || p.Workers != 0 {
		t.Errorf("progress after the run = %+v, want %d sent and done, no workers", p, res.Requests)
	}
	return res
}

func (b *backend) peakInFlight() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.maxInFlight
}

func within(got, want, tol time.Duration) bool { return got >= want-tol && got <= want+tol }
