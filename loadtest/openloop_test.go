package loadtest

import (
	"net/http"
	"testing"
	"time"
)

// TestOpenLoopHoldsRateWhenBackendSlows offers 200 hits/s for 3 s to a
// backend that answers in 1 ms for the first 1.5 s and in 200 ms after:
// the attacker must add workers and keep every second of arrivals at the
// server within 2% of 200.
func TestOpenLoopHoldsRateWhenBackendSlows(t *testing.T) {
	b := newBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		delay := time.Millisecond
		if n >= 300 { // hit 300 is due at 1.5 s
			delay = 200 * time.Millisecond
		}
		time.Sleep(delay)
	})
	const rate, seconds = 200, 3
	res := attack(t, &Targets{URL: b.URL + "/upload"}, Options{
		Pacer:    ConstantPacer{Freq: rate, Per: time.Second},
		Duration: seconds * time.Second,
	})

	if res.Requests != rate*seconds || res.Missed != 0 {
		t.Errorf("sent %d, missed %d; want %d sent, none missed", res.Requests, res.Missed, rate*seconds)
	}
	if res.Rate < rate*0.98 || res.Rate > rate*1.02 {
		t.Errorf("offered rate %.2f/s, want %d/s ± 2%%", res.Rate, rate)
	}
	got := b.requests()
	if len(got) != rate*seconds {
		t.Fatalf("backend saw %d requests, want %d", len(got), rate*seconds)
	}
	perSecond := make([]int, seconds+1)
	for _, r := range got {
		perSecond[int(r.at.Sub(got[0].at)/time.Second)]++
	}
	t.Logf("arrivals per second %v, offered %.2f/s, %d workers, p50 %v p99 %v", perSecond, res.Rate, res.Workers, res.Latency.P50, res.Latency.P99)
	for s := range seconds {
		if c := perSecond[s]; c < rate*98/100 || c > rate*102/100 {
			t.Errorf("second %d: backend saw %d requests start, want %d ± 2%% (all seconds: %v)", s, c, rate, perSecond)
		}
	}
	// 200/s at 200 ms needs about 40 in flight; one worker per request.
	if res.Workers < 30 {
		t.Errorf("attack ran %d workers; a 200 ms backend at 200/s needs about 40", res.Workers)
	}
	if res.Latency.P99 < 200*time.Millisecond {
		t.Errorf("p99 %v, want ≥ 200ms: half the hits took 200 ms", res.Latency.P99)
	}
	if res.Status[200] != rate*seconds {
		t.Errorf("status counts %v, want all %d 200", res.Status, rate*seconds)
	}
}

// TestOpenLoopLatencyFromIntendedTime caps the attacker at one worker
// against a 20 ms backend while offering a hit every 10 ms: the hits queue
// up, and their latency must include the time spent waiting for the
// worker. A tool with coordinated omission would report 20 ms throughout.
func TestOpenLoopLatencyFromIntendedTime(t *testing.T) {
	b := newBackend(t, func(int, http.ResponseWriter, *http.Request) { time.Sleep(20 * time.Millisecond) })
	res := attack(t, &Targets{URL: b.URL}, Options{
		Pacer:      ConstantPacer{Freq: 100, Per: time.Second},
		MaxWorkers: 1,
		Requests:   20,
	})
	if res.Requests != 20 || res.Workers != 1 {
		t.Fatalf("sent %d with %d workers, want 20 with 1", res.Requests, res.Workers)
	}
	if m := b.peakInFlight(); m != 1 {
		t.Errorf("backend saw %d in flight, want 1", m)
	}
	// Hit k is due at 10k ms and answered at about 20(k+1) ms: its latency
	// is about 20 + 10k ms, so the last is about 210 ms late.
	if res.Latency.Max < 180*time.Millisecond {
		t.Errorf("max latency %v, want ≈ 210ms: queueing for the worker was not counted", res.Latency.Max)
	}
	if res.Latency.P50 < 90*time.Millisecond {
		t.Errorf("p50 %v, want ≈ 110ms", res.Latency.P50)
	}
	if res.Rate > 60 {
		t.Errorf("offered rate %.1f/s, want ≤ 50/s: one 20 ms worker cannot send faster", res.Rate)
	}
}

// TestOpenLoopCountsMissedHits bounds a saturated attack by time: hits due
// before the end but never sent are counted as missed, not forgotten.
func TestOpenLoopCountsMissedHits(t *testing.T) {
	b := newBackend(t, func(int, http.ResponseWriter, *http.Request) { time.Sleep(100 * time.Millisecond) })
	res := attack(t, &Targets{URL: b.URL}, Options{
		Pacer:      ConstantPacer{Freq: 100, Per: time.Second},
		MaxWorkers: 1,
		Duration:   300 * time.Millisecond,
	})
	if res.Requests+res.Missed != 30 {
		t.Errorf("sent %d + missed %d = %d, want the 30 hits due in 300ms", res.Requests, res.Missed, res.Requests+res.Missed)
	}
	if res.Missed < 20 {
		t.Errorf("missed %d, want most of 30: one 100 ms worker sends about 3", res.Missed)
	}
}

// TestOpenLoopRequestsBound stops after exactly Requests hits.
func TestOpenLoopRequestsBound(t *testing.T) {
	b := newBackend(t, nil)
	res := attack(t, &Targets{URL: b.URL}, Options{
		Pacer:    ConstantPacer{Freq: 1000, Per: time.Second},
		Requests: 50,
	})
	if res.Requests != 50 || len(b.requests()) != 50 {
		t.Errorf("sent %d, backend saw %d; want 50", res.Requests, len(b.requests()))
	}
	if res.Mode != "open" || res.TargetRate != 1000 {
		t.Errorf("mode %q at %v/s, want open at 1000/s", res.Mode, res.TargetRate)
	}
}
