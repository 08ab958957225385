// Package latency is tandem's one latency-histogram setup: the diff store's
// per-minute histograms (and the report's p50/p99 read from them), the
// ramp's latency gate and the load generator's results all record and read
// latencies here, so one set of samples gives one p99 wherever it is shown.
//
// A histogram is an HdrHistogram of microseconds from Lowest (1 µs) to
// Highest (1 h) with Digits (2) significant digits: every recorded value is
// kept within 1% (a bucket's width is under 1% of its values), and one
// histogram is about 25 KiB of counts whatever it holds. Two digits, not
// three: the store keeps a histogram per side per route and minute in
// memory and on disk, where three digits would cost seven times as much (184 KiB), and
// a 1.25 latency-ratio gate or a report in milliseconds needs no finer
// step. Durations below 1 µs count as 1 µs and above 1 h as 1 h.
//
// The store's encoding of a histogram names this geometry; changing a
// constant makes every stored histogram undecodable (store/hist.go refuses
// a geometry other than its own), so a change needs a migration there.
//
// The package is a leaf: it imports nothing from tandem.
package latency

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The histogram geometry (see the package doc). Values are microseconds.
const (
	Lowest  int64 = 1
	Highest int64 = int64(time.Hour / time.Microsecond)
	Digits        = 2
)

// New returns an empty latency histogram.
func New() *hdrhistogram.Histogram { return hdrhistogram.New(Lowest, Highest, Digits) }

// Micros is d in whole microseconds, clamped to [Lowest, Highest]: the value
// Record records for d.
func Micros(d time.Duration) int64 {
	return min(max(int64(d/time.Microsecond), Lowest), Highest)
}

// Record adds d to h, a histogram from New.
func Record(h *hdrhistogram.Histogram, d time.Duration) {
	h.RecordValue(Micros(d)) // cannot fail: in range by construction
}

// Duration converts a value read from h (Min, Max, a percentile) back to
// a duration.
func Duration(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// Percentile is the latency at percentile p (0 to 100; 99 for p99) of h:
// the highest value that is equivalent, within the histogram's precision,
// to the value at or below which p percent of the recorded values fall
// (HdrHistogram's ValueAtQuantile). Zero when h is empty.
func Percentile(h *hdrhistogram.Histogram, p float64) time.Duration {
	if h.TotalCount() == 0 {
		return 0
	}
	return Duration(h.ValueAtQuantile(p))
}

// Milliseconds is d in (fractional) milliseconds, as the report shows
// latencies: exactly the microsecond count over 1000.
func Milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
