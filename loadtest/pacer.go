package loadtest

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// A Pacer schedules the hits of an open-loop attack. It is a pure function
// of time: given the time elapsed since the attack began and the number of
// hits already sent, Next says how long from elapsed until hit number sent
// (counting from zero) is due.
//
// wait is negative when that hit was due -wait ago: the attacker is behind
// schedule and sends at once, and the hit's latency is still measured from
// elapsed+wait, its intended time. stop reports that the pacer has no more
// hits; wait is then meaningless.
//
// The due time elapsed+wait must not decrease as sent grows, and must not
// depend on elapsed for a given sent (elapsed is there for pacers that need
// it to compute wait).
type Pacer interface {
	Next(elapsed time.Duration, sent uint64) (wait time.Duration, stop bool)
}

// ConstantPacer sends Freq hits every Per, evenly spaced: hit n is due at
// n×Per/Freq, so the first hit goes out at once. A zero Freq or a
// non-positive Per sends nothing. The arithmetic is exact (128-bit), so the
// schedule does not drift however long the attack runs.
type ConstantPacer struct {
	Freq uint64
	Per  time.Duration
}

var _ Pacer = ConstantPacer{}

// Next implements Pacer.
func (p ConstantPacer) Next(elapsed time.Duration, sent uint64) (time.Duration, bool) {
	due, ok := p.due(sent)
	if !ok {
		return 0, true
	}
	return due - elapsed, false
}

// due returns when hit n is due; ok is false if there is no such hit (zero
// rate, or a due time beyond what a time.Duration holds).
func (p ConstantPacer) due(n uint64) (time.Duration, bool) {
	if p.Freq == 0 || p.Per <= 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(n, uint64(p.Per))
	if hi >= p.Freq {
		return 0, false // the quotient would not fit in 64 bits
	}
	q, _ := bits.Div64(hi, lo, p.Freq)
	if q > uint64(1<<63-1) {
		return 0, false
	}
	return time.Duration(q), true
}

// Rate returns the pacer's rate in hits per second.
func (p ConstantPacer) Rate() float64 {
	if p.Per <= 0 {
		return 0
	}
	return float64(p.Freq) / p.Per.Seconds()
}

// String formats the pacer the way ParseRate reads it.
func (p ConstantPacer) String() string {
	if p.Per == time.Second {
		return strconv.FormatUint(p.Freq, 10) + "/s"
	}
	return strconv.FormatUint(p.Freq, 10) + "/" + p.Per.String()
}

// ParseRate reads a rate written as "N" (hits per second), "N/s", "N/m" or
// "N/DURATION" ("50/100ms", "3/1m") into a ConstantPacer. N must be positive.
func ParseRate(s string) (ConstantPacer, error) {
	num, per, hasPer := strings.Cut(strings.TrimSpace(s), "/")
	freq, err := strconv.ParseUint(num, 10, 64)
	if err != nil || freq == 0 {
		return ConstantPacer{}, fmt.Errorf("cannot parse rate %q: want a positive whole number of hits, optionally /DURATION", s)
	}
	p := ConstantPacer{Freq: freq, Per: time.Second}
	if !hasPer {
		return p, nil
	}
	switch per {
	case "s":
		return p, nil
	case "m":
		p.Per = time.Minute
		return p, nil
	case "h":
		p.Per = time.Hour
		return p, nil
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return ConstantPacer{}, fmt.Errorf("cannot parse rate %q: %q is not a positive duration", s, per)
	}
	p.Per = d
	return p, nil
}
