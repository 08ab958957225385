//go:build !race

package imagefmt

const raceEnabled = false
