//go:build !linux

package loadtest

import "time"

// sleepFine sleeps for a short d; off Linux it is time.Sleep.
func sleepFine(d time.Duration) { time.Sleep(d) }
