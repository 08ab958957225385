package ramp

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tandem-proxy/tandem/rules"
)

// Action is what a ramp decision asks for.
type Action string

const (
	// ActionWait: do nothing now (too few samples, hold not elapsed,
	// statistics restarting, ramp halted or finished).
	ActionWait Action = "wait"
	// ActionAdvance: set serve_new to Decision.ToPercent.
	ActionAdvance Action = "advance"
	// ActionRollback: set serve_new to 0; the ramp halts.
	ActionRollback Action = "rollback"
	// ActionDone: the last step (100%) held with every gate passing; the
	// ramp is finished.
	ActionDone Action = "done"
)

// Gates, as named in Decision.Gate.
const (
	GateDiffRate     = "diff_rate"
	GateErrorRate    = "error_rate"
	GateLatencyRatio = "latency_ratio"
	GateBreaker      = "breaker"
)

// LatencyFloor is the smallest p99 the latency gate divides by or into:
// p99s below it count as LatencyFloor, so that sub-millisecond jitter
// between two fast backends (100µs against 200µs) cannot fail the gate.
const LatencyFloor = time.Millisecond

// Progress is where a route's ramp stands. Tracker keeps it; callers
// of Step keep it themselves.
type Progress struct {
	// StepIndex is the index in Steps of the highest step at or below
	// Percent; -1 = not started (Percent is below the first step).
	StepIndex int
	// StepSince is when the ramp arrived at Percent. The hold counts from
	// here, and statistics must be gathered from here on (Stats.Since).
	StepSince time.Time
	// Percent is the serve_new the state was anchored at. A different
	// current serve_new means it was changed outside the ramp (an
	// operator, a config reload, or the ramp's own change taking effect):
	// the state must be re-anchored (NewProgress) and statistics reset.
	Percent float64
	// Halted is set after a rollback: the ramp advances no more, and while
	// serve_new is still above 0 it keeps asking for the rollback. Any
	// change of serve_new to above 0 from outside (a promote by hand)
	// resumes the ramp from there.
	Halted bool
	// Done is set after a "done" decision: the ramp is finished and makes
	// no more decisions until serve_new changes.
	Done bool
}

// NewProgress returns a ramp state anchored at the current serve_new at
// now, not halted: at 0 it is a ramp about to start. A caller starting up
// after a rollback sets Halted itself (see Halted), since the state is
// not persisted.
func NewProgress(now time.Time, r *rules.Ramp, current float64) Progress {
	return Progress{StepIndex: r.StepIndex(current), StepSince: now, Percent: current}
}

// Stats are a route's statistics gathered since the ramp's StepSince.
// Window gathers them.
type Stats struct {
	// Since is when gathering started. Step refuses (waits on) statistics
	// gathered from before Progress.StepSince.
	Since time.Time
	// Compared counts comparisons of legacy and new responses; Mismatched
	// the real (non-noise) mismatches among them.
	Compared, Mismatched int64
	// NewRequests counts requests sent to new (served and shadow),
	// NewErrors those that failed (transport error, timeout, 5xx).
	NewRequests, NewErrors int64
	// LegacyRequests counts legacy latency samples.
	LegacyRequests int64
	// LegacyP99 and NewP99 are the 99th-percentile latencies.
	LegacyP99, NewP99 time.Duration
	// BreakerOpen: the new backend's breaker is open, or opened since Since.
	BreakerOpen bool
}

// Decision is the outcome of one ramp evaluation.
type Decision struct {
	Action Action `json:"action"`
	// FromPercent is serve_new when the decision was made; ToPercent what
	// it should become (equal to FromPercent for wait and done).
	FromPercent float64 `json:"from_percent"`
	ToPercent   float64 `json:"to_percent"`
	// Gate names the first failing gate of a rollback ("diff_rate",
	// "error_rate", "latency_ratio", "breaker"); empty otherwise.
	Gate string `json:"gate,omitempty"`
	// Reason is a sentence with the numbers.
	Reason string `json:"reason"`
	// Values holds diff_rate, error_rate, latency_ratio, compared,
	// mismatched, new_requests, new_errors, legacy_requests,
	// legacy_p99_seconds, new_p99_seconds and held_seconds. Undefined
	// rates (no samples) are 0; no value is NaN or infinite.
	Values map[string]float64 `json:"values,omitempty"`
}

// details returns the decision's numbers for an audit event.
func (d Decision) details() map[string]any {
	m := make(map[string]any, len(d.Values)+3)
	for k, v := range d.Values {
		m[k] = v
	}
	m["action"] = string(d.Action)
	m["from_percent"] = d.FromPercent
	m["to_percent"] = d.ToPercent
	if d.Gate != "" {
		m["gate"] = d.Gate
	}
	return m
}

// Step decides the next move of an automatic ramp. It is a pure function
// of its inputs: now, the ramp, the route's current serve_new, the ramp's
// state and the statistics gathered since st.StepSince.
//
// In order:
//  1. no ramp → wait. A finished ramp (st.Done) → wait. A halted ramp at 0
//     → wait (a promote by hand resumes it).
//  2. the breaker is open → rollback at once, gate "breaker" (also at 0%
//     before the first step: the ramp then halts instead of starting).
//  3. current differs from st.Percent → wait: serve_new changed outside
//     this state; re-anchor it and reset the statistics first.
//  4. halted but current above 0 (the rollback has not taken effect) →
//     rollback again.
//  5. statistics gathered from before st.StepSince → wait.
//  6. gates, each evaluated only once it has its minimum of samples, so
//     that a handful of samples can neither promote nor roll back:
//     diff_rate = Mismatched/Compared once Compared ≥ MinCompared;
//     error_rate = NewErrors/NewRequests once NewRequests ≥ MinCompared
//     (sudden failure is the breaker's job, and a single error in the first
//     requests would otherwise exceed any small max_error_rate);
//     latency_ratio = NewP99/LegacyP99 (each at least LatencyFloor) once
//     NewRequests and LegacyRequests are both ≥ MinCompared. A rate above
//     its maximum fails (equal passes). Any failure → rollback to 0, Gate
//     the first failing gate, Reason every failing gate with its numbers.
//     With MinCompared 0 a gate is evaluated as soon as it has a sample.
//  7. a gate short of its minimum → wait (too few samples).
//  8. now − StepSince < Hold → wait.
//  9. the next step above current (NextStep; the first step when the ramp
//     has not started, the first step above an off-step value set by hand)
//     → advance; none and current is 100 → done; none and current below 100
//     (steps not ending at 100, which rules.Validate rejects) → wait, never done.
//
// The ramp runs at 0% too: before the first step, mirrored traffic feeds the
// gates, and the first step is taken only after a hold with gates passing.
func Step(now time.Time, r *rules.Ramp, current float64, st Progress, stats Stats) Decision {
	d := Decision{Action: ActionWait, FromPercent: current, ToPercent: current, Values: rampValues(now, st, stats)}
	at := fmtPercent(current) + "%"
	switch {
	case r == nil:
		d.Reason = "the route has no ramp"
		return d
	case st.Done && samePercent(current, st.Percent):
		d.Reason = fmt.Sprintf("the ramp finished at %s", at)
		return d
	case st.Halted && rules.Threshold(current) == 0:
		d.Reason = "the ramp halted after a rollback; promote by hand to resume it"
		return d
	}
	if stats.BreakerOpen {
		return rollback(d, GateBreaker, fmt.Sprintf("the new backend's circuit breaker is open at %s", at))
	}
	if !samePercent(current, st.Percent) {
		d.Reason = fmt.Sprintf("serve_new changed from %s%% to %s outside the ramp; statistics restart", fmtPercent(st.Percent), at)
		return d
	}
	if st.Halted {
		return rollback(d, "", fmt.Sprintf("the ramp halted but serve_new is still %s (the rollback has not taken effect)", at))
	}
	if stats.Since.Before(st.StepSince) {
		d.Reason = fmt.Sprintf("statistics gathered since %s predate the step at %s (since %s); reset them",
			stats.Since.Format(time.RFC3339), at, st.StepSince.Format(time.RFC3339))
		return d
	}

	minN := r.MinCompared
	enough := func(n int64) bool { return n >= minN && n > 0 }
	var failed []string
	gate := ""
	fail := func(g, msg string) {
		if gate == "" {
			gate = g
		}
		failed = append(failed, msg)
	}
	v := d.Values
	if enough(stats.Compared) && v["diff_rate"] > r.MaxDiffRate {
		fail(GateDiffRate, fmt.Sprintf("diff rate %.4f (%d of %d compared) is above max_diff_rate %v",
			v["diff_rate"], stats.Mismatched, stats.Compared, r.MaxDiffRate))
	}
	if enough(stats.NewRequests) && v["error_rate"] > r.MaxErrorRate {
		fail(GateErrorRate, fmt.Sprintf("error rate %.4f (%d of %d requests to new) is above max_error_rate %v",
			v["error_rate"], stats.NewErrors, stats.NewRequests, r.MaxErrorRate))
	}
	if enough(stats.NewRequests) && enough(stats.LegacyRequests) && v["latency_ratio"] > r.MaxLatencyRatio {
		fail(GateLatencyRatio, fmt.Sprintf("latency ratio %.2f (new p99 %v / legacy p99 %v) is above max_latency_ratio %v",
			v["latency_ratio"], stats.NewP99, stats.LegacyP99, r.MaxLatencyRatio))
	}
	if len(failed) > 0 {
		return rollback(d, gate, strings.Join(failed, "; ")+" at "+at)
	}

	var short []string
	if stats.Compared < minN {
		short = append(short, fmt.Sprintf("%d of %d comparisons", stats.Compared, minN))
	}
	if stats.NewRequests < minN {
		short = append(short, fmt.Sprintf("%d of %d requests to new", stats.NewRequests, minN))
	}
	if stats.LegacyRequests < minN {
		short = append(short, fmt.Sprintf("%d of %d requests to legacy", stats.LegacyRequests, minN))
	}
	if len(short) > 0 {
		d.Reason = fmt.Sprintf("too few samples at %s: %s", at, strings.Join(short, ", "))
		return d
	}
	passing := fmt.Sprintf("diff rate %.4f, error rate %.4f, latency ratio %.2f", v["diff_rate"], v["error_rate"], v["latency_ratio"])
	held, hold := now.Sub(st.StepSince), r.Hold.D()
	if held < hold {
		d.Reason = fmt.Sprintf("gates pass at %s (%s); held %v of %v", at, passing, held.Round(time.Second), hold)
		return d
	}
	next, ok := r.NextStep(current)
	switch {
	case ok:
		d.Action, d.ToPercent = ActionAdvance, next
		d.Reason = fmt.Sprintf("gates passed for %v at %s (%s); advancing to %s%%", held.Round(time.Second), at, passing, fmtPercent(next))
	case rules.Threshold(current) == rules.Buckets:
		d.Action = ActionDone
		d.Reason = fmt.Sprintf("gates passed for %v at %s (%s); the ramp is complete", held.Round(time.Second), at, passing)
	default:
		d.Reason = fmt.Sprintf("no step above %s and it is below 100%%: the ramp cannot finish (its last step must be 100)", at)
	}
	return d
}

func rollback(d Decision, gate, why string) Decision {
	d.Action, d.ToPercent, d.Gate = ActionRollback, 0, gate
	d.Reason = why + fmt.Sprintf("; rolling back from %s%% to 0%%", fmtPercent(d.FromPercent))
	return d
}

func rampValues(now time.Time, st Progress, s Stats) map[string]float64 {
	ratio := func(a, b int64) float64 {
		if b <= 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	latency := 0.0
	if s.NewRequests > 0 && s.LegacyRequests > 0 {
		latency = float64(max(s.NewP99, LatencyFloor)) / float64(max(s.LegacyP99, LatencyFloor))
	}
	held := now.Sub(st.StepSince).Seconds()
	if st.StepSince.IsZero() || held < 0 || math.IsInf(held, 0) {
		held = 0
	}
	return map[string]float64{
		"diff_rate":          ratio(s.Mismatched, s.Compared),
		"error_rate":         ratio(s.NewErrors, s.NewRequests),
		"latency_ratio":      latency,
		"compared":           float64(s.Compared),
		"mismatched":         float64(s.Mismatched),
		"new_requests":       float64(s.NewRequests),
		"new_errors":         float64(s.NewErrors),
		"legacy_requests":    float64(s.LegacyRequests),
		"legacy_p99_seconds": s.LegacyP99.Seconds(),
		"new_p99_seconds":    s.NewP99.Seconds(),
		"held_seconds":       held,
	}
}

// samePercent compares percentages as bucket counts (two decimals).
func samePercent(a, b float64) bool { return rules.Threshold(a) == rules.Threshold(b) }

// Halted reports whether a route's ramp should start halted after a
// restart: serve_new is 0 and the route's last serve_new event in the audit
// log (promote, rollback, ramp_step, ramp_rollback) is a rollback, by hand
// or by the ramp. events are oldest first, as State.Events returns them.
func Halted(events []rules.Event, route string, current float64) bool {
	if rules.Threshold(current) != 0 {
		return false
	}
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if e.Route != route {
			continue
		}
		switch e.Kind {
		case rules.KindRollback, "ramp_rollback":
			return true
		case rules.KindPromote, "ramp_step":
			return false
		}
	}
	return false
}
