package loadtest

import (
	"net/http"
	"testing"
	"time"
)

// TestPercentilesMatchInjectedLatencies injects a known distribution, 90%
// of answers after 10 ms and 10% after 100 ms, and reads it back.
func TestPercentilesMatchInjectedLatencies(t *testing.T) {
	b := newBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n%10 == 9 {
			time.Sleep(100 * time.Millisecond)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	})
	res := attack(t, &Targets{URL: b.URL}, Options{
		Pacer:    ConstantPacer{Freq: 200, Per: time.Second},
		Requests: 200,
	})
	l := res.Latency
	t.Logf("latency %+v", l)
	if res.Requests != 200 || res.Status[200] != 200 {
		t.Fatalf("sent %d, statuses %v; want 200 answered 200", res.Requests, res.Status)
	}
	// Nothing is faster than the injected delay, so the lower bounds are
	// exact. The upper bounds only keep each percentile in its mode (the
	// fast 90% below the slow 10%'s 100 ms): on a loaded 2-core machine
	// scheduling adds tens of milliseconds, which is no percentile error.
	if l.P50 < 10*time.Millisecond || l.P50 >= 60*time.Millisecond {
		t.Errorf("p50 = %v, want in the fast mode (10 ms, at most 60 ms)", l.P50)
	}
	if l.P99 < 100*time.Millisecond || l.P99 > 400*time.Millisecond {
		t.Errorf("p99 = %v, want in the slow mode (100 ms, at most 400 ms)", l.P99)
	}
	if l.Max < l.P99 || l.Max > 500*time.Millisecond {
		t.Errorf("max = %v, want ≥ p99 and in the slow mode", l.Max)
	}
	if l.Min < 10*time.Millisecond || !(l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("percentiles out of order or below the floor: %+v", l)
	}
	if h := res.Histogram(); h.TotalCount() != 200 {
		t.Errorf("histogram holds %d values, want 200", h.TotalCount())
	}
}
