package ramp

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/rules"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func testRamp() *rules.Ramp {
	r := rules.DefaultRamp() // steps 1 5 25 50 100, hold 10m, min 500, 0.005, 0.001, 1.25
	return &r
}

// goodStats pass every gate with enough samples: 1 real mismatch in 1000
// (95% upper bound 0.0045 ≤ 0.005), no error in 3000 requests to new
// (upper bound 0.0009 ≤ 0.001).
func goodStats() Stats {
	return Stats{
		Since: t0, Compared: 1000, Mismatched: 1, NewRequests: 3000, NewErrors: 0, LegacyRequests: 3000,
		LegacyP99: 200 * time.Millisecond, NewP99: 220 * time.Millisecond,
	}
}

// noRamp in a TestStep row stands for a route without a ramp (nil).
var noRamp = &rules.Ramp{}

// The bounds in the reasons below are the one-sided 95% Wilson bounds,
// computed apart from this package (Python: statistics.NormalDist for z,
// the bound found by bisection on the score statistic):
// 6/1000 [0.0031, 0.0116], 3/1000 [0.0012, 0.0075], 12/1000 [0.0075,
// 0.0191], 12/3000 [0.0025, 0.0064], 0/1000 errors upper 0.0027.
func TestStep(t *testing.T) {
	at5 := Progress{StepIndex: 1, StepSince: t0, Percent: 5}
	at0 := Progress{StepIndex: -1, StepSince: t0}
	held := t0.Add(10 * time.Minute)
	with := func(f func(*Stats)) Stats { s := goodStats(); f(&s); return s }
	cases := []struct {
		why     string
		ramp    *rules.Ramp
		now     time.Time
		current float64
		st      Progress
		stats   Stats
		action  Action
		to      float64
		gate    string
		reason  string // substring
	}{
		{"upper bounds within the limits and the hold elapsed: next step", nil, held, 5, at5, goodStats(), ActionAdvance, 25, "", "advancing to 25%"},
		{"hold not elapsed yet: wait", nil, t0.Add(9 * time.Minute), 5, at5, goodStats(), ActionWait, 5, "", "held 9m0s of 10m0s"},
		{"lower bound above max_diff_rate: rollback", nil, t0.Add(time.Minute), 5, at5, with(func(s *Stats) { s.Mismatched = 12 }),
			ActionRollback, 0, GateDiffRate, "diff rate 0.0120 (12 of 1000 compared), 95% bounds [0.0075, 0.0191], max_diff_rate 0.005: the lower bound is above the limit"},
		{"rate above the limit, lower bound not: hold with the numbers, never roll back", nil, held, 5, at5, with(func(s *Stats) { s.Mismatched = 6 }),
			ActionWait, 5, "", "holding at 5%: diff rate 0.0060 (6 of 1000 compared), 95% bounds [0.0031, 0.0116], max_diff_rate 0.005: the interval straddles the limit"},
		{"rate below the limit, upper bound not: hold, never advance", nil, held, 5, at5, with(func(s *Stats) { s.Mismatched = 3 }),
			ActionWait, 5, "", "diff rate 0.0030 (3 of 1000 compared), 95% bounds [0.0012, 0.0075]"},
		{"no error in 1000 requests does not prove an error rate ≤ 0.001: hold", nil, held, 5, at5, with(func(s *Stats) { s.NewRequests, s.LegacyRequests = 1000, 1000 }),
			ActionWait, 5, "", "error rate 0.0000 (0 of 1000 requests to new), 95% bounds [0.0000, 0.0027], max_error_rate 0.001"},
		{"error rate's lower bound above the maximum: rollback", nil, t0.Add(time.Minute), 5, at5, with(func(s *Stats) { s.NewErrors = 12 }),
			ActionRollback, 0, GateErrorRate, "error rate 0.0040 (12 of 3000 requests to new), 95% bounds [0.0025, 0.0064]"},
		{"latency ratio above the maximum: rollback", nil, t0.Add(time.Minute), 5, at5, with(func(s *Stats) { s.NewP99 = 300 * time.Millisecond }),
			ActionRollback, 0, GateLatencyRatio, "latency ratio 1.50 (new p99 300ms / legacy p99 200ms)"},
		{"sub-millisecond latencies are floored, not compared raw", nil, held, 5, at5,
			with(func(s *Stats) { s.LegacyP99, s.NewP99 = 100*time.Microsecond, 400*time.Microsecond }), ActionAdvance, 25, "", ""},
		{"several gates fail: the first is named, all are explained", nil, held, 5, at5,
			with(func(s *Stats) { s.Mismatched, s.NewErrors = 50, 50 }), ActionRollback, 0, GateDiffRate, "max_error_rate"},
		{"breaker open: rollback at once, without samples", nil, t0, 5, at5, Stats{Since: t0, BreakerOpen: true},
			ActionRollback, 0, GateBreaker, "circuit breaker is open at 5%"},
		{"breaker open at 0%: the ramp does not start, and does not roll back", nil, t0, 0, at0, Stats{Since: t0, BreakerOpen: true},
			ActionWait, 0, GateBreaker, "never rolls back before its first step"},
		{"breaker opening mid-step, gates fine: rollback", nil, t0.Add(4 * time.Minute), 25, Progress{StepIndex: 2, StepSince: t0, Percent: 25},
			with(func(s *Stats) { s.BreakerOpen = true }), ActionRollback, 0, GateBreaker, "from 25% to 0%"},
		{"3 samples, all mismatched: too few to roll back", nil, held, 5, at5,
			Stats{Since: t0, Compared: 3, Mismatched: 3, NewRequests: 3, LegacyRequests: 3}, ActionWait, 5, "", "diff rate: too few samples, 3 of 500 compared"},
		{"at 0% a failing gate holds, never rolls back before the first step", nil, held, 0, at0,
			with(func(s *Stats) { s.Mismatched = 300 }), ActionWait, 0, GateDiffRate, "holding at 0% before the first step"},
		{"at 0% with too few samples: wait", nil, held, 0, at0, Stats{Since: t0, Compared: 10, Mismatched: 10, NewRequests: 10, LegacyRequests: 10},
			ActionWait, 0, "", "too few samples, 10 of 500 compared"},
		{"enough comparisons, few requests to new: the error gate waits for its own minimum", nil, held, 5, at5,
			with(func(s *Stats) { s.NewRequests, s.NewErrors = 10, 5 }), ActionWait, 5, "", "error rate: too few samples, 10 of 500 requests to new"},
		{"too few samples never advance, however long the hold", nil, t0.Add(time.Hour), 5, at5,
			with(func(s *Stats) { s.Compared = 499 }), ActionWait, 5, "", "499 of 500 compared"},
		{"statistics from before the step do not count, even failing ones", nil, held, 5, Progress{StepIndex: 1, StepSince: t0.Add(time.Minute), Percent: 5},
			with(func(s *Stats) { s.Mismatched = 900 }), ActionWait, 5, "", "predate the step"},
		{"last step passing: done", nil, held, 100, Progress{StepIndex: 4, StepSince: t0, Percent: 100}, goodStats(), ActionDone, 100, "", "the ramp is complete"},
		{"not started: the first step after a hold at 0% on mirrored traffic", nil, held, 0, at0, goodStats(), ActionAdvance, 1, "", "advancing to 1%"},
		{"off-step value set by hand: the next step is the first above it", nil, held, 10, Progress{StepIndex: 1, StepSince: t0, Percent: 10}, goodStats(), ActionAdvance, 25, "", ""},
		{"serve_new changed outside the state: wait for re-anchoring", nil, held, 10, at5, goodStats(), ActionWait, 10, "", "changed from 5% to 10% outside the ramp"},
		{"Flagger bug: steps ending below 100 never report done", &rules.Ramp{Steps: []float64{10, 50}, Hold: rules.Duration(time.Minute), MinCompared: 1, MaxDiffRate: 1, MaxErrorRate: 1, MaxLatencyRatio: 9},
			held, 50, Progress{StepIndex: 1, StepSince: t0, Percent: 50}, goodStats(), ActionWait, 50, "", "cannot finish"},
		{"halted at 0: wait for an operator", nil, held, 0, Progress{StepIndex: -1, StepSince: t0, Halted: true}, goodStats(), ActionWait, 0, "", "promote by hand"},
		{"halted at 0 with the breaker open: nothing to roll back", nil, held, 0, Progress{StepIndex: -1, StepSince: t0, Halted: true},
			Stats{Since: t0, BreakerOpen: true}, ActionWait, 0, "", "halted"},
		{"halted but still at 25: the rollback is asked for again", nil, held, 25, Progress{StepIndex: 2, StepSince: t0, Percent: 25, Halted: true}, goodStats(), ActionRollback, 0, "", "has not taken effect"},
		{"finished: no more decisions", nil, held, 100, Progress{StepIndex: 4, StepSince: t0, Percent: 100, Done: true}, Stats{BreakerOpen: true}, ActionWait, 100, "", "finished"},
		{"min_compared 0: time alone advances", &rules.Ramp{Steps: []float64{50, 100}, Hold: rules.Duration(time.Minute), MaxDiffRate: 0.1, MaxErrorRate: 0.1, MaxLatencyRatio: 2},
			held, 50, Progress{StepIndex: 0, StepSince: t0, Percent: 50}, Stats{Since: t0}, ActionAdvance, 100, "", ""},
		{"no ramp: wait", noRamp, held, 5, at5, goodStats(), ActionWait, 5, "", "no ramp"},
	}
	for _, tc := range cases {
		t.Run(tc.why, func(t *testing.T) {
			r := tc.ramp
			switch r {
			case nil:
				r = testRamp()
			case noRamp:
				r = nil
			}
			d := Step(tc.now, r, tc.current, tc.st, tc.stats)
			if d.Action != tc.action || d.ToPercent != tc.to || d.Gate != tc.gate || d.FromPercent != tc.current {
				t.Errorf("got %s %v→%v gate %q; want %s →%v gate %q\nreason: %s", d.Action, d.FromPercent, d.ToPercent, d.Gate, tc.action, tc.to, tc.gate, d.Reason)
			}
			if !strings.Contains(d.Reason, tc.reason) || d.Reason == "" {
				t.Errorf("reason %q lacks %q", d.Reason, tc.reason)
			}
			for k, v := range d.Values {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("value %s = %v", k, v)
				}
			}
			// Whenever the gates were evaluated, each is there with its
			// numbers, and a rollback's gate is one that failed.
			for _, g := range d.Gates {
				if g.Name == "" || g.Reason == "" || g.Limit == 0 && r != nil && r.MaxDiffRate != 0 && g.Name == GateDiffRate {
					t.Errorf("gate %+v", g)
				}
				if g.Bound < g.Lower || g.Value < g.Lower-1e-12 || g.Value > g.Bound+1e-12 {
					t.Errorf("gate %s: value %v outside its bounds [%v, %v]", g.Name, g.Value, g.Lower, g.Bound)
				}
				if d.Action == ActionRollback && g.Name == d.Gate && g.State != GateFail {
					t.Errorf("rolled back on gate %s in state %s", g.Name, g.State)
				}
				if d.Action == ActionAdvance && g.State != GatePass {
					t.Errorf("advanced with gate %s in state %s", g.Name, g.State)
				}
			}
		})
	}
}

// The window counts only requests that started after its Reset, and takes
// p99s from HDR histograms.
func TestRampWindow(t *testing.T) {
	w := NewWindow(t0)
	for i := 1; i <= 100; i++ {
		w.AddLegacy(t0, time.Duration(i)*time.Millisecond)
		w.AddNew(t0, time.Duration(2*i)*time.Millisecond, i%50 == 0)
		var sig compare.Signature
		if i%25 == 0 {
			sig = compare.Signature{{Kind: compare.KindJSON, Path: "$.v"}}
		}
		w.AddCompare(t0, sig, i%25 == 0)
	}
	s := w.Stats()
	if s.Compared != 100 || s.Mismatched != 4 || s.NewRequests != 100 || s.NewErrors != 2 || s.LegacyRequests != 100 || !s.Since.Equal(t0) {
		t.Errorf("counts %+v", s)
	}
	if math.Abs(float64(s.LegacyP99-99*time.Millisecond)) > float64(time.Millisecond) || math.Abs(float64(s.NewP99-198*time.Millisecond)) > float64(2*time.Millisecond) {
		t.Errorf("p99s legacy %v new %v", s.LegacyP99, s.NewP99)
	}
	step := t0.Add(time.Minute)
	w.Reset(step)
	w.AddCompare(step.Add(-time.Second), compare.Signature{{Kind: compare.KindStatus, Path: "$.status"}}, true) // request from the previous step, finishing late
	w.AddNew(step.Add(-time.Second), time.Hour, true)
	w.AddLegacy(time.Time{}, time.Second) // no start time: dropped
	w.MarkBreakerOpen(step.Add(-time.Second))
	if s := w.Stats(); s.Compared != 0 || s.NewRequests != 0 || s.LegacyRequests != 0 || s.NewP99 != 0 || s.BreakerOpen || !s.Since.Equal(step) {
		t.Errorf("stale samples counted after Reset: %+v", s)
	}
	w.AddNew(step, 2*time.Hour, false) // beyond the histogram: counted as 1h
	w.MarkBreakerOpen(step.Add(time.Second))
	if s := w.Stats(); s.NewRequests != 1 || s.NewP99 < 59*time.Minute || !s.BreakerOpen {
		t.Errorf("after Reset: %+v", s)
	}
}

// A whole ramp driven through the tracker with injected time: statistics
// restart at every step, a failing gate rolls back and halts, a promote by
// hand resumes.
func TestRampTrackerLifecycle(t *testing.T) {
	r := &rules.Ramp{Steps: []float64{10, 100}, Hold: rules.Duration(time.Minute), MinCompared: 100, MaxDiffRate: 0.01, MaxErrorRate: 0.01, MaxLatencyRatio: 1.5}
	now, current := t0, 0.0
	tr := NewTracker(NewProgress(now, r, current), "images", nil)
	feed := func(start time.Time, n int, mismatch bool) {
		for i := 0; i < n; i++ {
			var sig compare.Signature
			if mismatch {
				sig = compare.Signature{{Kind: compare.KindJSON, Path: "$.v"}}
			}
			tr.Window().AddCompare(start, sig, mismatch)
			tr.Window().AddNew(start, 10*time.Millisecond, false)
			tr.Window().AddLegacy(start, 10*time.Millisecond)
		}
	}
	expect := func(step string, d Decision, action Action, to float64) {
		t.Helper()
		if d.Action != action || d.ToPercent != to {
			t.Fatalf("%s: got %s → %v (%s); want %s → %v", step, d.Action, d.ToPercent, d.Reason, action, to)
		}
	}

	feed(now, 300, false)
	expect("gates pass at 0% before the hold", tr.Decide(now.Add(30*time.Second), r, current, false), ActionWait, 0)
	now = now.Add(time.Minute)
	d := tr.Decide(now, r, current, false)
	expect("hold elapsed at 0%", d, ActionAdvance, 10)
	current = d.ToPercent // applied by the caller

	lateStart := now.Add(-time.Second) // in flight across the step change
	now = now.Add(5 * time.Second)
	expect("re-anchored at 10%", tr.Decide(now, r, current, false), ActionWait, 10)
	if st := tr.State(); st.StepIndex != 0 || !st.StepSince.Equal(now) || st.Percent != 10 {
		t.Fatalf("state after the step: %+v", st)
	}
	feed(lateStart, 500, true) // mismatches from requests of the previous step
	feed(now, 300, false)
	now = now.Add(time.Minute)
	d = tr.Decide(now, r, current, false)
	expect("stale statistics after the step change do not count", d, ActionAdvance, 100)
	if d.Values["compared"] != 300 {
		t.Errorf("compared = %v, want 300 (the late comparisons dropped)", d.Values["compared"])
	}
	// The advance failed to apply (disk full): the same decision next time.
	expect("an unapplied decision is made again", tr.Decide(now.Add(time.Second), r, current, false), ActionAdvance, 100)

	feed(now, 10, true)
	d = tr.Decide(now.Add(2*time.Second), r, current, false)
	expect("diff rate fails at 10%", d, ActionRollback, 0)
	if d.Gate != GateDiffRate || !tr.State().Halted {
		t.Fatalf("gate %q, state %+v", d.Gate, tr.State())
	}
	current = 0
	now = now.Add(time.Minute)
	expect("halted at 0%", tr.Decide(now, r, current, false), ActionWait, 0)
	feed(now, 500, false)
	expect("still halted, however good the gates", tr.Decide(now.Add(time.Hour), r, current, false), ActionWait, 0)

	current = 10 // an operator promotes by hand
	now = now.Add(2 * time.Hour)
	tr.Decide(now, r, current, false)
	if st := tr.State(); st.Halted || st.Percent != 10 {
		t.Fatalf("promote by hand did not resume: %+v", st)
	}
	feed(now, 300, false)
	tr.Window().MarkBreakerOpen(now.Add(time.Second))
	d = tr.Decide(now.Add(2*time.Second), r, current, false)
	expect("breaker opened and closed between looks", d, ActionRollback, 0)
	if d.Gate != GateBreaker {
		t.Errorf("gate %q", d.Gate)
	}

	current = 100 // by hand again, then hold with gates passing
	now = now.Add(time.Hour)
	tr.Decide(now, r, current, false)
	feed(now, 300, false)
	now = now.Add(time.Minute)
	expect("last step held", tr.Decide(now, r, current, false), ActionDone, 100)
	expect("finished", tr.Decide(now.Add(time.Minute), r, current, true), ActionWait, 100)
}

// At 0% an open breaker holds the ramp without halting it; once it has
// closed, the statistics and the hold restart and the ramp can start.
func TestRampBreakerAtZero(t *testing.T) {
	r := &rules.Ramp{Steps: []float64{10, 100}, Hold: rules.Duration(time.Minute), MinCompared: 10, MaxDiffRate: 0.5, MaxErrorRate: 0.5, MaxLatencyRatio: 10}
	tr := NewTracker(NewProgress(t0, r, 0), "r", nil)
	feed := func(at time.Time, n int) {
		for i := 0; i < n; i++ {
			tr.Window().AddCompare(at, nil, false)
			tr.Window().AddNew(at, time.Millisecond, false)
			tr.Window().AddLegacy(at, time.Millisecond)
		}
	}
	feed(t0, 50)
	tr.Window().MarkBreakerOpen(t0.Add(time.Second))
	d := tr.Decide(t0.Add(2*time.Minute), r, 0, true)
	if d.Action != ActionWait || d.Gate != GateBreaker || tr.State().Halted {
		t.Fatalf("breaker open at 0%%: %s gate %q halted %v (%s)", d.Action, d.Gate, tr.State().Halted, d.Reason)
	}
	closed := t0.Add(3 * time.Minute)
	d = tr.Decide(closed, r, 0, false) // closed again: restart
	if d.Action != ActionWait || d.Values["compared"] != 0 || !tr.State().StepSince.Equal(closed) {
		t.Fatalf("breaker closed at 0%%: %s, %v compared, since %v (%s)", d.Action, d.Values["compared"], tr.State().StepSince, d.Reason)
	}
	feed(closed, 50)
	if d := tr.Decide(closed.Add(time.Minute), r, 0, false); d.Action != ActionAdvance || d.ToPercent != 10 {
		t.Fatalf("after the breaker closed: %s → %v (%s), want advance to 10", d.Action, d.ToPercent, d.Reason)
	}
}

// After a restart, the audit log says whether the ramp was halted.
func TestRampHalted(t *testing.T) {
	ev := func(kind, route string) rules.Event { return rules.Event{Kind: kind, Route: route} }
	cases := []struct {
		why     string
		events  []rules.Event
		current float64
		want    bool
	}{
		{"ramp rolled back last", []rules.Event{ev("ramp_step", "r"), ev("ramp_rollback", "r")}, 0, true},
		{"rolled back by hand", []rules.Event{ev("promote", "r"), ev("rollback", "r")}, 0, true},
		{"promoted after the rollback", []rules.Event{ev("ramp_rollback", "r"), ev("promote", "r")}, 0, false},
		{"another route's events do not count", []rules.Event{ev("ramp_rollback", "r"), ev("promote", "other")}, 0, true},
		{"serve_new above 0 is never halted", []rules.Event{ev("ramp_rollback", "r")}, 5, false},
		{"never started", []rules.Event{ev("seed", "")}, 0, false},
	}
	for _, tc := range cases {
		if got := Halted(tc.events, "r", tc.current); got != tc.want {
			t.Errorf("%s: got %v", tc.why, got)
		}
	}
}
