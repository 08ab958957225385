package store

import (
	"crypto/sha256"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
)

// t0 is the tests' epoch, on a minute boundary.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is an injectable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// openTest opens a store in a fresh directory; it is closed at cleanup.
func openTest(t testing.TB, o Options) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "store.db"), o)
}

func openAt(t testing.TB, path string, o Options) *Store {
	t.Helper()
	s, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func flush(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func resp(status int, body string, hdr ...compare.HeaderField) *compare.Response {
	return &compare.Response{Status: status, Header: hdr, Body: []byte(body), Size: int64(len(body)), SHA256: sha256.Sum256([]byte(body))}
}

func diff(kind compare.Kind, path string, noise bool) compare.Difference {
	return compare.Difference{Kind: kind, Path: path, Legacy: "l", New: "n", Noise: noise}
}

// exch builds an exchange of route at at with the given verdict.
func exch(route string, at time.Time, outcome compare.Outcome, diffs ...compare.Difference) *exchange.Exchange {
	return &exchange.Exchange{
		Route: route, RequestID: "req-" + at.Format("150405.000000000"), Method: "POST", Path: "/upload", ServedBy: "legacy",
		At: at, Legacy: resp(200, `{"w":1}`), New: resp(200, `{"w":2}`),
		LegacyLatency: 10 * time.Millisecond, NewLatency: 20 * time.Millisecond,
		Result: compare.Result{Outcome: outcome, Diffs: diffs},
	}
}

func record(t testing.TB, s *Store, ex *exchange.Exchange) {
	t.Helper()
	if !s.Record(ex) {
		t.Fatalf("Record refused %s", ex.RequestID)
	}
}

func reportOf(t testing.TB, s *Store, route string, since time.Time) RouteReport {
	t.Helper()
	reps, err := s.Report(route, since)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if len(reps) != 1 {
		t.Fatalf("Report(%q) gave %d reports, want 1", route, len(reps))
	}
	return reps[0]
}

func sampleCount(t testing.TB, s *Store, f SampleFilter) int {
	t.Helper()
	f.Limit = MaxSampleLimit
	l, err := s.Samples(f)
	if err != nil {
		t.Fatalf("Samples: %v", err)
	}
	return len(l)
}
