package loadtest

import (
	"net/http"
	"testing"
	"time"
)

// TestClosedLoopRespectsConcurrency: the backend never sees more than
// Concurrency requests in flight, and does see that many.
func TestClosedLoopRespectsConcurrency(t *testing.T) {
	b := newBackend(t, func(int, http.ResponseWriter, *http.Request) { time.Sleep(5 * time.Millisecond) })
	res := attack(t, &Targets{URL: b.URL}, Options{Concurrency: 4, Duration: 300 * time.Millisecond})
	if m := b.peakInFlight(); m != 4 {
		t.Errorf("backend saw at most %d in flight, want 4", m)
	}
	if res.Mode != "closed" || res.Workers != 4 || res.MaxWorkers != 4 {
		t.Errorf("mode %q, %d workers (max %d); want closed, 4 (max 4)", res.Mode, res.Workers, res.MaxWorkers)
	}
	// 4 workers at ≥ 5 ms each for 300 ms: at most 4×60 hits, and well
	// over a few dozen even on a loaded machine.
	if res.Requests > 4*61 || res.Requests < 40 {
		t.Errorf("sent %d hits, want between 40 and 244", res.Requests)
	}
	if got := uint64(len(b.requests())); got != res.Requests {
		t.Errorf("backend saw %d, attacker sent %d", got, res.Requests)
	}
}

// TestClosedLoopRequestsBound sends exactly Requests hits across workers.
func TestClosedLoopRequestsBound(t *testing.T) {
	b := newBackend(t, nil)
	res := attack(t, &Targets{URL: b.URL}, Options{Concurrency: 3, Requests: 37})
	if res.Requests != 37 || len(b.requests()) != 37 || res.Status[200] != 37 {
		t.Errorf("sent %d, backend saw %d, statuses %v; want 37", res.Requests, len(b.requests()), res.Status)
	}
	if res.Throughput <= 0 || res.Rate <= 0 {
		t.Errorf("rate %v, throughput %v; want positive", res.Rate, res.Throughput)
	}
}
