package ramp

import (
	"fmt"
	"math"
	"strings"
)

// Confidence is the one-sided confidence of the rate gates' bounds.
//
// Why 95%: it is the customary level of canary analysis (Kayenta's and most
// A/B tools' default), and it keeps the documented defaults coherent: with
// max_diff_rate 0.005 a backend with no real mismatch at all passes after
// 539 comparisons (the Wilson upper bound of 0/n is z²/(n+z²)), just past
// min_compared 500. At 99% the same backend would need 1,077 comparisons,
// twice what min_compared says. The gates are looked at every second, so the
// chance that a backend exactly at the limit passes at some look of a long
// hold is higher than 5% (repeated looks); min_compared and the hold, not
// the confidence, are the guard against promoting on a lucky stretch.
const Confidence = 0.95

// Z is the standard normal quantile of Confidence, Φ⁻¹(0.95). The test
// checks it against the standard library: Φ⁻¹(p) = √2·erfinv(2p−1).
const Z = 1.6448536269514722

// Wilson returns the Wilson score interval of k successes in n trials at the
// normal quantile z: the lower and upper bounds of a one-sided interval
// each, at the confidence of z. n ≤ 0 gives [0, 1] (no evidence); k is
// clamped to [0, n].
func Wilson(k, n int64, z float64) (lower, upper float64) {
	if n <= 0 {
		return 0, 1
	}
	k = min(max(k, 0), n)
	nf := float64(n)
	p := float64(k) / nf
	z2 := z * z
	denom := 1 + z2/nf
	center := p + z2/(2*nf)
	adj := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	lower, upper = (center-adj)/denom, (center+adj)/denom
	if k == 0 {
		lower = 0
	}
	if k == n {
		upper = 1
	}
	return max(lower, 0), min(upper, 1)
}

// GateState is a gate's verdict.
type GateState string

const (
	// GatePass: the gate allows the next step (a rate's upper bound is at
	// or below its limit; the latency ratio is at or below its limit).
	GatePass GateState = "pass"
	// GateHold: too few samples, or the interval straddles the limit.
	GateHold GateState = "hold"
	// GateFail: the gate asks for a rollback (a rate's lower bound is
	// above its limit; the latency ratio is above its limit).
	GateFail GateState = "fail"
)

// Gate is one gate of a ramp decision, as the API, the CLI and the UI
// show it.
type Gate struct {
	Name string `json:"name"` // diff_rate, error_rate, latency_ratio
	// Value is the observed rate (real mismatches / compared, errors /
	// requests to new) or the latency ratio.
	Value float64 `json:"value"`
	// Bound is the upper bound of the rate's one-sided Wilson interval at
	// Confidence: the gate passes when it is at or below Limit. Lower is
	// the lower bound: the gate fails when it is above Limit. The latency
	// ratio has no interval: both equal Value.
	Bound float64 `json:"bound"`
	Lower float64 `json:"lower"`
	Limit float64 `json:"limit"`
	// Samples is what the gate counted (comparisons, requests to new, the
	// smaller of the two sides' latency samples); MinSamples what it needs
	// (min_compared) before it can pass or fail.
	Samples    int64     `json:"samples"`
	MinSamples int64     `json:"min_samples"`
	State      GateState `json:"state"`
	// Reason is a sentence with the numbers.
	Reason string `json:"reason"`
}

// rateGate judges k events in n samples against limit: pass when the
// upper bound is at or below it, fail when the lower bound is above it,
// hold otherwise or below minN samples. what names the samples ("compared",
// "requests to new"), limitName the setting.
func rateGate(name string, k, n, minN int64, limit float64, what, limitName string) Gate {
	label := strings.ReplaceAll(name, "_", " ") // "diff rate", as a sentence says it
	lo, hi := Wilson(k, n, Z)
	g := Gate{Name: name, Bound: hi, Lower: lo, Limit: limit, Samples: n, MinSamples: minN}
	if n > 0 {
		g.Value = float64(k) / float64(n)
	}
	nums := fmt.Sprintf("%s %.4f (%d of %d %s), %g%% bounds [%.4f, %.4f], %s %v",
		label, g.Value, k, n, what, Confidence*100, lo, hi, limitName, limit)
	switch {
	case n == 0 && minN == 0:
		g.State, g.Bound, g.Lower = GatePass, 0, 0
		g.Reason = fmt.Sprintf("%s: no samples and min_compared 0", label)
	case n < minN || n == 0:
		g.State = GateHold
		g.Reason = fmt.Sprintf("%s: too few samples, %d of %d %s", label, n, minN, what)
	case lo > limit:
		g.State = GateFail
		g.Reason = nums + ": the lower bound is above the limit"
	case hi <= limit:
		g.State = GatePass
		g.Reason = nums + ": the upper bound is within the limit"
	default:
		g.State = GateHold
		g.Reason = nums + ": the interval straddles the limit; more samples will settle it"
	}
	return g
}
