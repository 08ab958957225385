//go:build race

package imagefmt

// raceEnabled: the race detector is on; sync.Pool drops items at random, so
// decoders allocate more than they do in production.
const raceEnabled = true
