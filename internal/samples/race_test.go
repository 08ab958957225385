//go:build race

package samples

const raceEnabled = true
