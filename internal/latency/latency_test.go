package latency

import (
	"math"
	"testing"
	"time"
)

// Recording clamps to the geometry, and a percentile comes back within the
// documented 1% of the value recorded.
func TestRecordAndPercentile(t *testing.T) {
	for _, c := range []struct {
		why  string
		d    time.Duration
		want time.Duration
	}{
		{"below 1 µs counts as 1 µs", 300 * time.Nanosecond, time.Microsecond},
		{"zero counts as 1 µs", 0, time.Microsecond},
		{"a value in range", 12345 * time.Microsecond, 12345 * time.Microsecond},
		{"above 1 h counts as 1 h", 3 * time.Hour, time.Hour},
	} {
		h := New()
		Record(h, c.d)
		got := Percentile(h, 99)
		if rel := math.Abs(float64(got-c.want)) / float64(c.want); rel > 0.01 {
			t.Errorf("%s: p99 of %v = %v, want %v within 1%%", c.why, c.d, got, c.want)
		}
	}
	if got := Percentile(New(), 99); got != 0 {
		t.Errorf("p99 of an empty histogram = %v, want 0", got)
	}
}

// p50 and p99 of 1..1000 ms land on the samples at those ranks, within 1%.
func TestPercentileRanks(t *testing.T) {
	h := New()
	for i := 1; i <= 1000; i++ {
		Record(h, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 500 * time.Millisecond}, {99, 990 * time.Millisecond}, {100, time.Second}} {
		got := Percentile(h, c.p)
		if got < c.want || float64(got-c.want) > 0.01*float64(c.want) {
			t.Errorf("p%v = %v, want %v up to 1%% above", c.p, got, c.want)
		}
	}
}

// Milliseconds is exactly the microsecond count over 1000, as the store's
// report computed it before this package.
func TestMilliseconds(t *testing.T) {
	for _, us := range []int64{1, 999, 1001, 3607101439, 12345} {
		if got, want := Milliseconds(Duration(us)), float64(us)/1000; got != want {
			t.Errorf("Milliseconds(%d µs) = %v, want %v", us, got, want)
		}
	}
}
