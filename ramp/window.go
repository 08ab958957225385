package ramp

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/tandem-proxy/tandem/internal/latency"
	"github.com/tandem-proxy/tandem/rules"
)

// Window gathers one route's ramp statistics for the current step. It is
// safe for concurrent use: the request path adds samples while the ramp
// loop reads Stats.
//
// Every Add method takes the start time of the request the sample belongs
// to, and drops samples of requests that started before the window's last
// Reset: a comparison that completes after a step change still describes
// the old step and must not count for the new one. A zero start time is
// before every window, so such samples are dropped.
type Window struct {
	mu          sync.Mutex
	since       time.Time
	compared    int64
	mismatched  int64
	newReqs     int64
	newErrs     int64
	legacyReqs  int64
	breakerSeen bool
	newLat      *hdrhistogram.Histogram
	legacyLat   *hdrhistogram.Histogram
}

// NewWindow returns an empty window starting at now.
func NewWindow(now time.Time) *Window {
	return &Window{
		since:     now,
		newLat:    latency.New(),
		legacyLat: latency.New(),
	}
}

// Reset empties the window and starts it at now.
func (w *Window) Reset(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.since = now
	w.compared, w.mismatched, w.newReqs, w.newErrs, w.legacyReqs = 0, 0, 0, 0, 0
	w.breakerSeen = false
	w.newLat.Reset()
	w.legacyLat.Reset()
}

// AddCompare counts one comparison; mismatch means a real (non-noise)
// mismatch. Comparisons that failed to run are not counted.
func (w *Window) AddCompare(start time.Time, mismatch bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if start.Before(w.since) {
		return
	}
	w.compared++
	if mismatch {
		w.mismatched++
	}
}

// AddNew counts one request sent to the new backend, served or shadow, with
// its latency d; failed means a transport error, timeout or 5xx. Failed
// requests count in the latency too (a timeout is a slow request).
func (w *Window) AddNew(start time.Time, d time.Duration, failed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if start.Before(w.since) {
		return
	}
	w.newReqs++
	if failed {
		w.newErrs++
	}
	latency.Record(w.newLat, d)
}

// AddLegacy counts one legacy response's latency d, served or shadow.
func (w *Window) AddLegacy(start time.Time, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if start.Before(w.since) {
		return
	}
	w.legacyReqs++
	latency.Record(w.legacyLat, d)
}

// MarkBreakerOpen records that the new backend's breaker opened at at (call
// it from the breaker's state-change hook): the window then reports
// BreakerOpen even if the breaker closed again before the ramp looked.
func (w *Window) MarkBreakerOpen(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !at.Before(w.since) {
		w.breakerSeen = true
	}
}

// Since returns when the window started.
func (w *Window) Since() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.since
}

// Stats returns the statistics gathered since the window started.
func (w *Window) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Stats{
		Since:          w.since,
		Compared:       w.compared,
		Mismatched:     w.mismatched,
		NewRequests:    w.newReqs,
		NewErrors:      w.newErrs,
		LegacyRequests: w.legacyReqs,
		LegacyP99:      p99(w.legacyLat),
		NewP99:         p99(w.newLat),
		BreakerOpen:    w.breakerSeen,
	}
}

// p99 is the gate's latency: latency.Percentile, as the report reads it.
func p99(h *hdrhistogram.Histogram) time.Duration { return latency.Percentile(h, 99) }

// Tracker runs one route's ramp: it keeps the Progress and the
// Window together, so that statistics always belong to the step being
// judged. Feed Window() from the request path and call Decide from the ramp
// loop; apply non-wait decisions with Apply.
//
// The tracker follows the route's actual serve_new: whenever Decide sees a
// value other than the one its state is anchored at — the ramp's own
// advance or rollback having taken effect, an operator's promote or
// rollback, a config reload — it re-anchors there (hold restarts, window
// reset). A change to 0 halts the ramp; a change to above 0 resumes it from
// there. A decision that failed to apply is simply made again next time.
type Tracker struct {
	mu sync.Mutex
	st Progress
	w  *Window
}

// NewTracker returns a tracker in state st (see NewProgress), its
// window starting at st.StepSince.
func NewTracker(st Progress) *Tracker {
	return &Tracker{st: st, w: NewWindow(st.StepSince)}
}

// Window returns the statistics window to feed.
func (t *Tracker) Window() *Window { return t.w }

// State returns the ramp's current state.
func (t *Tracker) State() Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// Decide evaluates the ramp at now with the route's ramp r, its current
// serve_new, and whether the new backend's breaker is open now.
func (t *Tracker) Decide(now time.Time, r *rules.Ramp, current float64, breakerOpen bool) Decision {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !samePercent(current, t.st.Percent) {
		t.st = Progress{StepIndex: r.StepIndex(current), StepSince: now, Percent: current, Halted: rules.Threshold(current) == 0}
		t.w.Reset(now)
	}
	t.st.StepIndex = r.StepIndex(current) // the steps may have changed on reload
	stats := t.w.Stats()
	stats.BreakerOpen = stats.BreakerOpen || breakerOpen
	d := Step(now, r, current, t.st, stats)
	switch d.Action {
	case ActionRollback:
		t.st.Halted = true
	case ActionDone:
		t.st.Done = true
	}
	return d
}
