//go:build !race

package compare

const jsonRaceEnabled = false
