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

// GateNames are the gates Gates judges, in its order: the closed set of
// the gate label of tandem_ramp_gate_* (the breaker is a condition, not a
// gate with a value and a limit).
var GateNames = [...]string{GateDiffRate, GateErrorRate, GateLatencyRatio}

// Limit returns gate's limit in r (max_diff_rate, max_error_rate,
// max_latency_ratio), and false for a name not in GateNames.
func Limit(r *rules.Ramp, gate string) (float64, bool) {
	switch gate {
	case GateDiffRate:
		return r.MaxDiffRate, true
	case GateErrorRate:
		return r.MaxErrorRate, true
	case GateLatencyRatio:
		return r.MaxLatencyRatio, true
	}
	return 0, false
}

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
	// the real mismatches among them and Noise those whose every
	// difference is noise, both as the noise model reads their signatures
	// when the Stats are taken (Window.Stats).
	Compared, Mismatched, Noise int64
	// MismatchedWhenCompared counts the comparisons that were mismatches
	// as classified when they were made (the noise known then). It is
	// reported, never gated on: noise learned later makes it too high.
	MismatchedWhenCompared int64
	// Signatures is the number of distinct signatures (or shapes) the
	// window holds; Overflow the comparisons counted as real mismatches
	// because it held too many (see MaxSignatures).
	Signatures int
	Overflow   int64
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
	// "error_rate", "latency_ratio", "breaker"), or of a ramp at 0% that
	// holds instead of rolling back; empty otherwise.
	Gate string `json:"gate,omitempty"`
	// Reason is a sentence with the numbers.
	Reason string `json:"reason"`
	// Gates are the diff_rate, error_rate and latency_ratio gates with
	// their values, bounds, limits, samples and states; empty when the
	// decision was made before the gates were evaluated (no ramp, halted,
	// breaker open, statistics restarting).
	Gates []Gate `json:"gates,omitempty"`
	// Values holds diff_rate, error_rate, latency_ratio, the bounds
	// diff_rate_lower/upper and error_rate_lower/upper, confidence,
	// compared, mismatched, noise, mismatched_when_compared, new_requests,
	// new_errors, legacy_requests, legacy_p99_seconds, new_p99_seconds and
	// held_seconds. Undefined rates (no samples) are 0; no value is NaN or
	// infinite.
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
//  2. the breaker is open → rollback at once, gate "breaker"; at 0% (the
//     ramp has not started) → wait, saying so: a ramp never rolls back
//     before its first step, it does not start while the breaker is open
//     (Tracker restarts the statistics and the hold once it has closed).
//  3. current differs from st.Percent → wait: serve_new changed outside
//     this state; re-anchor it and reset the statistics first.
//  4. halted but current above 0 (the rollback has not taken effect) →
//     rollback again.
//  5. statistics gathered from before st.StepSince → wait.
//  6. gates (Gate), each judged only once it has MinCompared samples, so
//     that a handful of samples can neither promote nor roll back (with
//     MinCompared 0 and no samples a rate gate passes):
//     diff_rate: Mismatched (real, as the noise model reads it now) of
//     Compared; error_rate: NewErrors of NewRequests. A rate gate passes
//     when the upper bound of its one-sided Wilson interval at Confidence
//     is at or below its maximum, fails when the lower bound is above it,
//     and holds otherwise. latency_ratio = NewP99/LegacyP99 (each at least
//     LatencyFloor) once NewRequests and LegacyRequests are both ≥
//     MinCompared, with no interval: above its maximum fails, else passes.
//     Any failure → rollback to 0, Gate the first failing gate, Reason
//     every failing gate with its numbers; at 0% → wait instead, Gate and
//     Reason saying what would have failed (the ramp never rolls back
//     before its first step; it starts once the gates pass, for example
//     when early mismatches turn out to be noise).
//  7. a gate holding (too few samples, or an interval straddling its
//     limit) → wait, Reason every holding gate with its numbers.
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
	atZero := rules.Threshold(current) == 0
	switch {
	case r == nil:
		d.Reason = "the route has no ramp"
		return d
	case st.Done && samePercent(current, st.Percent):
		d.Reason = fmt.Sprintf("the ramp finished at %s", at)
		return d
	case st.Halted && atZero:
		d.Reason = "the ramp halted after a rollback; promote by hand to resume it"
		return d
	}
	if stats.BreakerOpen {
		if atZero {
			d.Gate = GateBreaker
			d.Reason = "the new backend's circuit breaker is open: the ramp does not start at 0% while it is (a ramp never rolls back before its first step)"
			return d
		}
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

	d.Gates = Gates(r, stats)
	var failed, holding, passing []string
	for _, g := range d.Gates {
		switch g.State {
		case GateFail:
			if d.Gate == "" {
				d.Gate = g.Name
			}
			failed = append(failed, g.Reason)
		case GateHold:
			holding = append(holding, g.Reason)
		default:
			passing = append(passing, fmt.Sprintf("%s %.4f (bound %.4f ≤ %v)", strings.ReplaceAll(g.Name, "_", " "), g.Value, g.Bound, g.Limit))
		}
	}
	if len(failed) > 0 {
		if atZero {
			d.Reason = fmt.Sprintf("holding at 0%% before the first step (a ramp never rolls back before it starts): %s",
				strings.Join(failed, "; "))
			return d
		}
		d.Gate = "" // rollback sets it
		return rollback(d, firstFailed(d.Gates), strings.Join(failed, "; ")+" at "+at)
	}
	if len(holding) > 0 {
		d.Reason = fmt.Sprintf("holding at %s: %s", at, strings.Join(holding, "; "))
		return d
	}
	pass := strings.Join(passing, ", ")
	held, hold := now.Sub(st.StepSince), r.Hold.D()
	if held < hold {
		d.Reason = fmt.Sprintf("gates pass at %s (%s); held %v of %v", at, pass, held.Round(time.Second), hold)
		return d
	}
	next, ok := r.NextStep(current)
	switch {
	case ok:
		d.Action, d.ToPercent = ActionAdvance, next
		d.Reason = fmt.Sprintf("gates passed for %v at %s (%s); advancing to %s%%", held.Round(time.Second), at, pass, fmtPercent(next))
	case rules.Threshold(current) == rules.Buckets:
		d.Action = ActionDone
		d.Reason = fmt.Sprintf("gates passed for %v at %s (%s); the ramp is complete", held.Round(time.Second), at, pass)
	default:
		d.Reason = fmt.Sprintf("no step above %s and it is below 100%%: the ramp cannot finish (its last step must be 100)", at)
	}
	return d
}

func firstFailed(gates []Gate) string {
	for _, g := range gates {
		if g.State == GateFail {
			return g.Name
		}
	}
	return ""
}

// Gates judges stats against the ramp's limits: diff_rate, error_rate and
// latency_ratio, in that order (see Step, item 6).
func Gates(r *rules.Ramp, s Stats) []Gate {
	minN := r.MinCompared
	diff := rateGate(GateDiffRate, s.Mismatched, s.Compared, minN, r.MaxDiffRate, "compared", "max_diff_rate")
	errs := rateGate(GateErrorRate, s.NewErrors, s.NewRequests, minN, r.MaxErrorRate, "requests to new", "max_error_rate")
	lat := Gate{Name: GateLatencyRatio, Limit: r.MaxLatencyRatio, Samples: min(s.NewRequests, s.LegacyRequests), MinSamples: minN}
	if s.NewRequests > 0 && s.LegacyRequests > 0 {
		lat.Value = latencyRatio(s)
	}
	lat.Bound, lat.Lower = lat.Value, lat.Value
	nums := fmt.Sprintf("latency ratio %.2f (new p99 %v / legacy p99 %v), max_latency_ratio %v",
		lat.Value, s.NewP99, s.LegacyP99, r.MaxLatencyRatio)
	switch {
	case lat.Samples == 0 && minN == 0:
		lat.State, lat.Reason = GatePass, "latency ratio: no samples and min_compared 0"
	case lat.Samples < minN || lat.Samples == 0:
		lat.State = GateHold
		lat.Reason = fmt.Sprintf("latency ratio: too few samples, %d of %d requests to new, %d of %d to legacy",
			s.NewRequests, minN, s.LegacyRequests, minN)
	case lat.Value > r.MaxLatencyRatio:
		lat.State, lat.Reason = GateFail, nums+": above the limit"
	default:
		lat.State, lat.Reason = GatePass, nums+": within the limit"
	}
	return []Gate{diff, errs, lat}
}

func latencyRatio(s Stats) float64 {
	return float64(max(s.NewP99, LatencyFloor)) / float64(max(s.LegacyP99, LatencyFloor))
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
		latency = latencyRatio(s)
	}
	dLo, dHi := Wilson(s.Mismatched, s.Compared, Z)
	eLo, eHi := Wilson(s.NewErrors, s.NewRequests, Z)
	held := now.Sub(st.StepSince).Seconds()
	if st.StepSince.IsZero() || held < 0 || math.IsInf(held, 0) {
		held = 0
	}
	return map[string]float64{
		"diff_rate":                ratio(s.Mismatched, s.Compared),
		"error_rate":               ratio(s.NewErrors, s.NewRequests),
		"latency_ratio":            latency,
		"diff_rate_lower":          dLo,
		"diff_rate_upper":          dHi,
		"error_rate_lower":         eLo,
		"error_rate_upper":         eHi,
		"confidence":               Confidence,
		"compared":                 float64(s.Compared),
		"mismatched":               float64(s.Mismatched),
		"noise":                    float64(s.Noise),
		"mismatched_when_compared": float64(s.MismatchedWhenCompared),
		"new_requests":             float64(s.NewRequests),
		"new_errors":               float64(s.NewErrors),
		"legacy_requests":          float64(s.LegacyRequests),
		"legacy_p99_seconds":       s.LegacyP99.Seconds(),
		"new_p99_seconds":          s.NewP99.Seconds(),
		"held_seconds":             held,
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
