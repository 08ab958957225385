package loadtest

import (
	"fmt"
	"github.com/tandem-proxy/tandem/internal/latencyfmt"
	"strconv"
	"strings"
	"time"
)

// Thresholds are the pass criteria of an attack, in the manner of k6's
// thresholds: Results.Check judges the results against them. Whatever
// they say, an attack in which no hit got an expected answer fails.
type Thresholds struct {
	// MaxErrorRate is the largest share of hits that may fail (a transport
	// error or an unexpected status), from 0 to 1. Nil means no limit;
	// a pointer to 0 means no failure at all.
	MaxErrorRate *float64
	// MaxP99 is the largest 99th-percentile latency allowed. Zero means
	// no limit.
	MaxP99 time.Duration
	// MinRPS is the fewest successful responses per second allowed
	// (Results.Throughput). Zero means no limit.
	MinRPS float64
}

// Check is one criterion judged, as the report shows it.
type Check struct {
	// Name is "success" (at least one expected answer, always checked),
	// "error_rate", "p99" or "rps".
	Name string `json:"name"`
	// Value and Limit are what was measured and what was allowed, in
	// their natural units (a ratio, seconds, hits per second).
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Pass  bool    `json:"pass"`
	// Reason is one line with value and limit, e.g. "error rate 50.00% >
	// max 1.00%".
	Reason string `json:"reason"`
}

// Check judges r against th, records the checks in r.Checks (shown by
// WriteText and MarshalJSON) and reports whether every one passed.
func (r *Results) Check(th Thresholds) bool {
	var cs []Check
	ok := r.Success > 0
	reason := fmt.Sprintf("%d of %d hits got an expected answer (%s)", r.Success, r.Requests, r.Expect)
	if r.Requests == 0 {
		reason = "no hit was sent"
	} else if !ok {
		reason = fmt.Sprintf("no hit got an expected answer (%s): %d sent", r.Expect, r.Requests)
	}
	cs = append(cs, Check{Name: "success", Value: float64(r.Success), Limit: 1, Pass: ok, Reason: reason})
	if th.MaxErrorRate != nil {
		v, max := r.ErrorRatio(), *th.MaxErrorRate
		cs = append(cs, Check{Name: "error_rate", Value: v, Limit: max, Pass: v <= max,
			Reason: fmt.Sprintf("error rate %s %s max %s (%d of %d hits failed)", formatPercent(v), cmpSign(v <= max), formatPercent(max), r.Requests-r.Success, r.Requests)})
	}
	if th.MaxP99 > 0 {
		v := r.Latency.P99
		cs = append(cs, Check{Name: "p99", Value: v.Seconds(), Limit: th.MaxP99.Seconds(), Pass: v <= th.MaxP99,
			Reason: fmt.Sprintf("p99 latency %s %s max %s", latencyfmt.Duration(v), cmpSign(v <= th.MaxP99), latencyfmt.Duration(th.MaxP99))})
	}
	if th.MinRPS > 0 {
		v := r.Throughput
		cs = append(cs, Check{Name: "rps", Value: v, Limit: th.MinRPS, Pass: v >= th.MinRPS,
			Reason: fmt.Sprintf("successful rate %s/s %s min %s/s", formatFloat(v), map[bool]string{true: "≥", false: "<"}[v >= th.MinRPS], formatFloat(th.MinRPS))})
	}
	r.Checks = cs
	return r.Passed()
}

// Passed reports whether every check of the last Check passed; true when
// Check was not called.
func (r *Results) Passed() bool {
	for _, c := range r.Checks {
		if !c.Pass {
			return false
		}
	}
	return true
}

// Failures returns the reasons of the failed checks, joined by "; ": the
// one line to print when the attack failed.
func (r *Results) Failures() string {
	var out []string
	for _, c := range r.Checks {
		if !c.Pass {
			out = append(out, c.Reason)
		}
	}
	return strings.Join(out, "; ")
}

// ErrorRatio returns the share of hits sent that failed (a transport error
// or an unexpected status); zero when none were sent.
func (r *Results) ErrorRatio() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Requests-r.Success) / float64(r.Requests)
}

// ParseRatio reads a share written as a fraction ("0.01") or a percentage
// ("1%"), from 0 to 1.
func ParseRatio(s string) (float64, error) {
	t := strings.TrimSpace(s)
	scale := 1.0
	if p, ok := strings.CutSuffix(t, "%"); ok {
		t, scale = strings.TrimSpace(p), 100
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v != v {
		return 0, fmt.Errorf("cannot parse %q: want a fraction such as 0.01 or a percentage such as 1%%", s)
	}
	v /= scale
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("%q is outside 0 to 1 (0%% to 100%%)", s)
	}
	return v, nil
}

func cmpSign(ok bool) string {
	if ok {
		return "≤"
	}
	return ">"
}

func formatPercent(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) + "%" }
