// Package latencyfmt prints a latency for people, by one rule that the CLI
// (report, status, loadtest) and the UI share: below one second, three
// significant digits in milliseconds ("842 ms", "84.2 ms", "8.42 ms",
// "0.842 ms"); from one second, three significant digits in seconds
// ("1.23 s", "10.1 s", "123 s"), and whole seconds from 1000 s. It owns nothing else and imports only the
// standard library.
package latencyfmt

import (
	"math"
	"strconv"
	"time"
)

// Duration formats d by the package's rule. Negative durations keep their
// sign; zero is "0 ms".
func Duration(d time.Duration) string {
	return Millis(float64(d) / float64(time.Millisecond))
}

// Millis formats a latency given in milliseconds (the unit of the report's
// p50/p99 fields) by the package's rule. NaN and infinities print as Go
// formats them.
func Millis(ms float64) string {
	if math.IsNaN(ms) || math.IsInf(ms, 0) {
		return strconv.FormatFloat(ms, 'f', -1, 64) + " ms"
	}
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	if ms == 0 {
		return "0 ms"
	}
	// Round to three significant digits first: 999.7 ms becomes 1000 ms,
	// which is printed as "1.00 s", not "1000 ms".
	r := sig3(ms)
	if r < 1000 {
		return sign + fixed(r) + " ms"
	}
	sec := sig3(ms / 1000)
	if sec >= 1000 { // past 1000 s, whole seconds: no digit is dropped
		return sign + strconv.FormatFloat(math.Round(ms/1000), 'f', 0, 64) + " s"
	}
	return sign + fixed(sec) + " s"
}

// sig3 rounds v > 0 to three significant digits.
func sig3(v float64) float64 {
	e := math.Floor(math.Log10(v))
	p := math.Pow(10, 2-e)
	return math.Round(v*p) / p
}

// fixed prints v (already rounded to three significant digits) with as many
// decimals as three significant digits need, and at least none.
func fixed(v float64) string {
	dec := 2 - int(math.Floor(math.Log10(v)))
	if dec < 0 {
		dec = 0
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}
