package ramp

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/internal/latency"
	"github.com/tandem-proxy/tandem/rules"
)

// Bounds of a window's signature counts. A window keeps one count per
// distinct comparison Signature, so that the noise model can classify the
// comparisons when the gates are evaluated, not when they were made. Past
// MaxSignatures distinct signatures, a new one is counted by its Shape
// (array indexes as [*]: "$.items[3].id" and "$.items[7].id" share a count);
// past MaxShapes distinct shapes as well, a new one is counted as a real
// mismatch whatever the noise model says later (Stats.Overflow), which errs
// towards holding and rolling back, never towards promoting. Memory is then
// bounded by about 4,096 signatures per ramped route.
const (
	MaxSignatures = 2048
	MaxShapes     = 2048
)

// sigCount is one distinct signature and its comparisons.
type sigCount struct {
	sig compare.Signature
	n   int64
}

// Window gathers one route's ramp statistics for the current step. It is
// safe for concurrent use: the request path adds samples while the ramp
// loop reads Stats.
//
// Every Add method takes the start time of the request the sample belongs
// to, and drops samples of requests that started before the window's last
// Reset: a comparison that completes after a step change still describes
// the old step and must not count for the new one. A zero start time is
// before every window, so such samples are dropped.
//
// Comparisons are kept by Signature and classified with the window's
// compare.NoiseModel when Stats is read: a comparison made before a field
// was learned as noise stops counting as a mismatch once it is learned.
type Window struct {
	route string
	model compare.NoiseModel

	mu       sync.Mutex
	since    time.Time
	matched  int64 // comparisons with an empty signature
	sigs     map[string]*sigCount
	shapes   map[string]*sigCount
	overflow int64
	whenCmp  int64 // mismatches as classified when compared
	newReqs  int64
	newErrs  int64
	// served: the cumulative counts of requests served by new (and failed)
	// last given to SetServed; servedBase those at the last Reset.
	served, servedBase [2]int64
	servedSet          bool
	legacyReqs         int64
	breakerSeen        bool
	newLat             *hdrhistogram.Histogram
	legacyLat          *hdrhistogram.Histogram
}

// NewWindow returns an empty window starting at now, without a noise
// model: every comparison with a difference counts as a mismatch.
func NewWindow(now time.Time) *Window { return NewRouteWindow(now, "", nil) }

// NewRouteWindow returns an empty window for route starting at now, whose
// Stats classify comparisons with model (nil: every difference is real).
func NewRouteWindow(now time.Time, route string, model compare.NoiseModel) *Window {
	return &Window{
		route:     route,
		model:     model,
		since:     now,
		sigs:      map[string]*sigCount{},
		shapes:    map[string]*sigCount{},
		newLat:    latency.New(),
		legacyLat: latency.New(),
	}
}

// Reset empties the window and starts it at now.
func (w *Window) Reset(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.since = now
	w.matched, w.overflow, w.whenCmp, w.newReqs, w.newErrs, w.legacyReqs = 0, 0, 0, 0, 0, 0
	clear(w.sigs)
	clear(w.shapes)
	w.servedBase = w.served
	w.breakerSeen = false
	w.newLat.Reset()
	w.legacyLat.Reset()
}

// AddCompare counts one comparison by its signature (nil or empty: a
// match). mismatchWhenCompared is how the comparison was classified when it
// was made (Result.Outcome); it is kept only as Stats.MismatchedWhenCompared,
// for the record: the gates classify sig with the noise model when read.
// Comparisons that failed to run are not counted.
func (w *Window) AddCompare(start time.Time, sig compare.Signature, mismatchWhenCompared bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if start.Before(w.since) {
		return
	}
	if mismatchWhenCompared {
		w.whenCmp++
	}
	if len(sig) == 0 {
		w.matched++
		return
	}
	if c := w.sigs[sig.Key()]; c != nil {
		c.n++
		return
	}
	if len(w.sigs) < MaxSignatures {
		w.sigs[sig.Key()] = &sigCount{sig: sig, n: 1}
		return
	}
	shape := sig.Shape()
	key := shape.Key()
	if c := w.shapes[key]; c != nil {
		c.n++
		return
	}
	if len(w.shapes) < MaxShapes {
		w.shapes[key] = &sigCount{sig: shape, n: 1}
		return
	}
	w.overflow++
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

// AddNewLatency records the latency of a request served by new that
// SetServed counts.
func (w *Window) AddNewLatency(start time.Time, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if start.Before(w.since) {
		return
	}
	latency.Record(w.newLat, d)
}

// SetServed gives the window the data plane's cumulative counts of
// requests served by new and of those that failed. Stats adds what they
// grew by since the window's last Reset (the first call sets the base) to
// NewRequests and NewErrors. Counts that went down (counters reset with a
// new rules table) restart the base.
func (w *Window) SetServed(requests, failed int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := [2]int64{requests, failed}
	if !w.servedSet || now[0] < w.servedBase[0] || now[1] < w.servedBase[1] {
		w.servedBase, w.servedSet = now, true
	}
	w.served = now
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

// Stats returns the statistics gathered since the window started, its
// comparisons classified with the window's noise model as it stands now.
func (w *Window) Stats() Stats {
	w.mu.Lock()
	s := Stats{
		Since:                  w.since,
		Compared:               w.matched + w.overflow,
		Mismatched:             w.overflow,
		Overflow:               w.overflow,
		MismatchedWhenCompared: w.whenCmp,
		Signatures:             len(w.sigs) + len(w.shapes),
		NewRequests:            w.newReqs + w.served[0] - w.servedBase[0],
		NewErrors:              w.newErrs + w.served[1] - w.servedBase[1],
		LegacyRequests:         w.legacyReqs,
		LegacyP99:              p99(w.legacyLat),
		NewP99:                 p99(w.newLat),
		BreakerOpen:            w.breakerSeen,
	}
	counts := make([]sigCount, 0, s.Signatures)
	for _, m := range []map[string]*sigCount{w.sigs, w.shapes} {
		for _, c := range m {
			counts = append(counts, *c)
		}
	}
	w.mu.Unlock()
	// Classified outside the window's lock: the request path keeps adding
	// while the noise model is asked.
	for _, c := range counts {
		s.Compared += c.n
		if w.model != nil && w.model.Classify(w.route, c.sig) != compare.OutcomeMismatch {
			s.Noise += c.n
		} else {
			s.Mismatched += c.n
		}
	}
	return s
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
	mu    sync.Mutex
	st    Progress
	w     *Window
	fleet fleetAnchor // with a Fleet only
}

// NewTracker returns a tracker in state st (see NewProgress), its
// window starting at st.StepSince and classifying route's comparisons with
// model (nil: every difference is real).
func NewTracker(st Progress, route string, model compare.NoiseModel) *Tracker {
	return &Tracker{st: st, w: NewRouteWindow(st.StepSince, route, model)}
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
	if stats.BreakerOpen && !breakerOpen && rules.Threshold(current) == 0 && !t.st.Halted {
		// At 0% a breaker that opened and closed again does not roll back
		// (there is nothing to roll back) nor hold the ramp for ever: the
		// statistics of that stretch restart, and so does the hold.
		t.st.StepSince = now
		t.w.Reset(now)
		stats = t.w.Stats()
	}
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
