package loadtest

import (
	"syscall"
	"time"
)

// sleepFine sleeps for a short d (under a few milliseconds) more precisely
// than time.Sleep, whose timers wake an idle Go runtime on millisecond
// boundaries: a nanosleep(2) overshoots by about 0.1 ms, not up to 1 ms.
// It blocks its OS thread, which the runtime replaces meanwhile.
func sleepFine(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
