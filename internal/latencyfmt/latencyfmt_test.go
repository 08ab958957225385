package latencyfmt

import (
	"testing"
	"time"
)

func TestMillis(t *testing.T) {
	for _, c := range []struct {
		ms   float64
		want string
		why  string
	}{
		{842, "842 ms", "three digits, no decimals"},
		{84.2, "84.2 ms", "one decimal"},
		{8.42, "8.42 ms", "two decimals"},
		{0.842, "0.842 ms", "below a millisecond, still ms"},
		{8.4249, "8.42 ms", "rounds down"},
		{8.425001, "8.43 ms", "rounds up"},
		{99.96, "100 ms", "rounding adds a digit: no decimal left"},
		{999.7, "1.00 s", "rounds to one second: printed in seconds"},
		{1000, "1.00 s", "exactly one second"},
		{1234, "1.23 s", "seconds, two decimals"},
		{10092.5, "10.1 s", "the issue's 10092.5ms"},
		{123456, "123 s", "no decimals past 100 s"},
		{1234567, "1235 s", "past 1000 s: whole seconds"},
		{0, "0 ms", "zero"},
		{-84.2, "-84.2 ms", "sign kept"},
	} {
		if got := Millis(c.ms); got != c.want {
			t.Errorf("Millis(%v) = %q, want %q (%s)", c.ms, got, c.want, c.why)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{842 * time.Millisecond, "842 ms"},
		{8420 * time.Microsecond, "8.42 ms"},
		{1230 * time.Millisecond, "1.23 s"},
		{10*time.Second + 92*time.Millisecond, "10.1 s"},
		{842 * time.Microsecond, "0.842 ms"},
	} {
		if got := Duration(c.d); got != c.want {
			t.Errorf("Duration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}
