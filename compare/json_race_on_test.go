//go:build race

package compare

// jsonRaceEnabled: the race detector is on; sync.Pool drops items at
// random, so a Comparer's JSON tapes are not always reused.
const jsonRaceEnabled = true
