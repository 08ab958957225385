package compare

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Noise is applied when numbers are read, not when they are recorded: a
// comparison is a real mismatch if it has a difference that the noise model,
// as it stands at the moment of reading, does not explain. So what a store
// or a ramp window keeps of a comparison is its Signature, the set of
// (kind, path) pairs at which the two responses differed, and a reader turns
// signatures into outcomes with a NoiseModel (the Learner is one) when it
// reads them. A field learned as noise after 50 requests then stops counting
// for those first 50 too.

// SigKey is one differing (kind, path) of a comparison. Path is the
// difference's own path ("$.items[3].width"), not its shape.
type SigKey struct {
	Kind Kind   `json:"kind"`
	Path string `json:"path"`
}

// Signature is the set of differing (kind, path) pairs of one comparison:
// distinct, sorted by kind then path. An empty Signature is a match.
type Signature []SigKey

// Signature returns the distinct (kind, path) pairs of r's differences,
// sorted. A Result with OutcomeError has a Signature too (its "$.error"
// difference), but readers count errors apart and never classify them.
func (r *Result) Signature() Signature {
	if len(r.Diffs) == 0 {
		return nil
	}
	sig := make(Signature, 0, len(r.Diffs))
	for _, d := range r.Diffs {
		sig = append(sig, SigKey{d.Kind, d.Path})
	}
	return sig.normalize()
}

// normalize sorts s and removes duplicates, in place.
func (s Signature) normalize() Signature {
	sort.Slice(s, func(i, j int) bool { return s[i].less(s[j]) })
	out := s[:0]
	for i, k := range s {
		if i > 0 && k == s[i-1] {
			continue
		}
		out = append(out, k)
	}
	return out
}

func (k SigKey) less(o SigKey) bool {
	if k.Kind != o.Kind {
		return k.Kind < o.Kind
	}
	return k.Path < o.Path
}

// Shape returns s with every array index replaced by "[*]" ("$.items[3].id"
// becomes "$.items[*].id"), distinct and sorted: the coarser signature a
// store may keep when a route has too many distinct ones. A Learner
// classifies a shape signature as it classifies the full one, except for a
// mark that names one array index, which covers only the full path.
func (s Signature) Shape() Signature {
	out := make(Signature, len(s))
	for i, k := range s {
		out[i] = SigKey{k.Kind, shapePath(k.Path)}
	}
	return out.normalize()
}

// Separators of the Key encoding: no path or kind contains them (paths
// render control characters quoted and escaped, kinds are a closed set).
const (
	sigFieldSep = "\x1f"
	sigKeySep   = "\x1e"
)

// Key is the canonical text of s, the same for equal signatures: each pair
// as kind, U+001F, path, the pairs joined by U+001E. The empty signature's
// Key is "". ParseSignature reads it back.
func (s Signature) Key() string {
	var b strings.Builder
	for i, k := range s {
		if i > 0 {
			b.WriteString(sigKeySep)
		}
		b.WriteString(string(k.Kind))
		b.WriteString(sigFieldSep)
		b.WriteString(k.Path)
	}
	return b.String()
}

// ParseSignature reads a Signature from its Key. Text that no Key could be
// (an unknown kind, an unparsable path, pairs out of order or repeated)
// gives an error, so a corrupt record is noticed rather than misread.
func ParseSignature(key string) (Signature, error) {
	if key == "" {
		return nil, nil
	}
	parts := strings.Split(key, sigKeySep)
	sig := make(Signature, 0, len(parts))
	for i, p := range parts {
		kind, path, ok := strings.Cut(p, sigFieldSep)
		if !ok {
			return nil, fmt.Errorf("signature pair %d: no kind/path separator", i+1)
		}
		if !validKind(Kind(kind)) {
			return nil, fmt.Errorf("signature pair %d: unknown kind %q", i+1, kind)
		}
		if _, err := parsePath(path, true); err != nil {
			return nil, fmt.Errorf("signature pair %d: bad path %q: %w", i+1, path, err)
		}
		k := SigKey{Kind(kind), path}
		if i > 0 && !sig[i-1].less(k) {
			return nil, errors.New("signature pairs out of order or repeated")
		}
		sig = append(sig, k)
	}
	return sig, nil
}

// NoiseModel turns what was recorded into outcomes when it is read. The
// Learner is one; a fleet's shared model is another.
type NoiseModel interface {
	// Noise reports whether a difference of kind at path is noise for
	// route as the model stands now.
	Noise(route string, kind Kind, path string) bool
	// Classify gives the outcome of a comparison with signature sig as the
	// model stands now: OutcomeMatch when sig is empty, OutcomeNoise when
	// every pair is noise, else OutcomeMismatch.
	Classify(route string, sig Signature) Outcome
}

var _ NoiseModel = (*Learner)(nil)

// Noise reports whether a difference of kind at path is noise for route: an
// operator's mark covers path, or the counts make its shape learned noise.
func (l *Learner) Noise(route string, kind Kind, path string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	rn := l.routes[route]
	return rn != nil && rn.noise(kind, path)
}

// Classify gives the outcome of a comparison with signature sig for route
// as the Learner stands now (see NoiseModel).
func (l *Learner) Classify(route string, sig Signature) Outcome {
	if len(sig) == 0 {
		return OutcomeMatch
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	rn := l.routes[route]
	if rn == nil {
		return OutcomeMismatch
	}
	for _, k := range sig {
		if !rn.noise(k.Kind, k.Path) {
			return OutcomeMismatch
		}
	}
	return OutcomeNoise
}

// noise is the one rule Apply, Noise and Classify share; the Learner's lock
// must be held.
func (rn *routeNoise) noise(kind Kind, path string) bool {
	if _, ok := rn.markFor(path); ok {
		return true
	}
	return rn.learned(noiseKey{kind, shapePath(path)})
}
