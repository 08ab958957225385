package compare

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

// maxNoisePaths bounds the paths counted per route.
const maxNoisePaths = 4096

// Learner learns, per route, which differences are noise, after Diffy. A
// route with a secondary backend (a second legacy instance) gets, for a
// share of requests, two comparisons: legacy vs secondary, whose differences can only be noise (timestamps, random ids,
// nondeterministic encoders), and legacy vs new. The Learner counts, per
// route and per (kind, path), in how many comparisons of each sort the path
// differs. Array indexes are counted together ("$.items[3].id" and
// "$.items[4].id" both count for "$.items[*].id"), and a path counts at most
// once per comparison.
//
// With S secondary comparisons of which s differ at a path, and P primary
// comparisons of which p differ there, rates rs = s/S and rp = p/P, the path
// is learned noise when all of:
//
//	S >= noise_min_samples                     enough evidence about the route
//	s >= 1 and P >= 1                          legacy differs from itself there
//	rp - rs <= noise_abs_tolerance  or  rp <= rs * (1 + noise_rel_tolerance)
//
// The test is one-sided on purpose: when legacy differs from the new backend
// at a path no more often (within tolerance) than legacy differs from
// itself, the differences there say nothing about the new backend. A path
// at which only the new backend differs (s = 0) is never learned.
//
// A path marked by an operator (Mark) is noise always, for every kind; a
// mark is a pattern and also covers the paths below it.
//
// Comparisons with OutcomeError are not counted. The Learner keeps at most
// 4096 (kind, path) pairs per route; later new ones are not counted.
//
// A Learner holds its state in memory; Snapshot and Restore move it to and
// from storage. It is safe for concurrent use. The zero value is not usable:
// call NewLearner.
type Learner struct {
	mu     sync.RWMutex
	routes map[string]*routeNoise
}

type noiseKey struct {
	kind Kind
	path string // shape path
}

type noiseCounts struct {
	secondary, primary int64 // comparisons that differ at the path
	// dSecondary and dPrimary are the part of secondary and primary
	// observed since the last TakeDelta.
	dSecondary, dPrimary int64
}

type mark struct {
	path   string
	pat    pattern
	reason string
}

type routeNoise struct {
	settings                     Settings // noise fields, defaults applied
	secondaryTotal, primaryTotal int64
	// dSecondaryTotal and dPrimaryTotal are the part of the totals
	// observed since the last TakeDelta.
	dSecondaryTotal, dPrimaryTotal int64
	paths                          map[noiseKey]*noiseCounts
	marks                          []mark
}

// NoiseStat is what the Learner knows about one (kind, path) of a route.
type NoiseStat struct {
	// Kind is empty for a mark that no counted difference falls under.
	Kind Kind   `json:"kind,omitempty"`
	Path string `json:"path"`
	// SecondaryDiffs of SecondaryTotal legacy-vs-secondary comparisons
	// differed at the path; likewise for primary (legacy-vs-new).
	SecondaryDiffs int64   `json:"secondary_diffs"`
	SecondaryTotal int64   `json:"secondary_total"`
	SecondaryRate  float64 `json:"secondary_rate"`
	PrimaryDiffs   int64   `json:"primary_diffs"`
	PrimaryTotal   int64   `json:"primary_total"`
	PrimaryRate    float64 `json:"primary_rate"`
	// Learned is set when the counts make the path noise; Marked when an
	// operator's mark covers it, with the mark's Reason.
	Learned bool   `json:"learned"`
	Marked  bool   `json:"marked"`
	Reason  string `json:"reason,omitempty"`
}

// NewLearner returns an empty Learner. Routes use the default thresholds
// until Configure gives them their own.
func NewLearner() *Learner {
	return &Learner{routes: map[string]*routeNoise{}}
}

// route returns the state of name, creating it; l.mu must be held for writing.
func (l *Learner) route(name string) *routeNoise {
	r := l.routes[name]
	if r == nil {
		r = &routeNoise{settings: Settings{}.withDefaults(), paths: map[noiseKey]*noiseCounts{}}
		l.routes[name] = r
	}
	return r
}

// Configure sets the thresholds of a route from its settings (the noise_*
// fields; zero values mean the defaults). Counts and marks are kept.
func (l *Learner) Configure(route string, s Settings) {
	s = s.withDefaults()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.route(route).settings = s
}

// ObserveSecondary counts a legacy-vs-secondary comparison.
func (l *Learner) ObserveSecondary(route string, r Result) { l.observe(route, r, true) }

// ObservePrimary counts a legacy-vs-new comparison. Call it before Apply
// (Apply only sets flags, so the order matters only for readability).
func (l *Learner) ObservePrimary(route string, r Result) { l.observe(route, r, false) }

func (l *Learner) observe(route string, r Result, secondary bool) {
	if r.Outcome == OutcomeError {
		return
	}
	keys := distinctKeys(r.Diffs)
	l.mu.Lock()
	defer l.mu.Unlock()
	rn := l.route(route)
	if secondary {
		rn.secondaryTotal++
		rn.dSecondaryTotal++
	} else {
		rn.primaryTotal++
		rn.dPrimaryTotal++
	}
	for _, k := range keys {
		c := rn.paths[k]
		if c == nil {
			if len(rn.paths) >= maxNoisePaths {
				continue
			}
			c = &noiseCounts{}
			rn.paths[k] = c
		}
		if secondary {
			c.secondary++
			c.dSecondary++
		} else {
			c.primary++
			c.dPrimary++
		}
	}
}

// distinctKeys returns the distinct (kind, shape path) of diffs.
func distinctKeys(diffs []Difference) []noiseKey {
	keys := make([]noiseKey, 0, len(diffs))
outer:
	for _, d := range diffs {
		k := noiseKey{d.Kind, shapePath(d.Path)}
		for _, seen := range keys {
			if seen == k {
				continue outer
			}
		}
		keys = append(keys, k)
	}
	return keys
}

// CheckMark returns the error Mark would give for path (not a pattern), or
// nil: for a caller that stores a mark before it calls Mark.
func CheckMark(path string) error {
	if _, err := parsePath(path, true); err != nil {
		return fmt.Errorf("cannot mark %q: %w", path, err)
	}
	return nil
}

// Mark makes path (a pattern, see the package documentation) noise for every kind of
// difference in route, with the operator's reason. Marking a path again
// replaces its reason.
func (l *Learner) Mark(route, path, reason string) error {
	pat, err := parsePath(path, true)
	if err != nil {
		return fmt.Errorf("cannot mark %q: %w", path, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rn := l.route(route)
	for i := range rn.marks {
		if rn.marks[i].path == path {
			rn.marks[i].reason = reason
			return nil
		}
	}
	rn.marks = append(rn.marks, mark{path: path, pat: pat, reason: reason})
	return nil
}

// Apply sets Noise on every difference of r that is noise for route. A
// mismatch whose every difference is noise becomes OutcomeNoise. Results
// with OutcomeError are left alone.
func (l *Learner) Apply(route string, r *Result) {
	if len(r.Diffs) == 0 || r.Outcome == OutcomeError {
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	rn := l.routes[route]
	if rn == nil {
		return
	}
	all := true
	for i := range r.Diffs {
		d := &r.Diffs[i]
		if rn.noise(d.Kind, d.Path) {
			d.Noise = true
		} else {
			all = false
		}
	}
	if all && r.Outcome == OutcomeMismatch {
		r.Outcome = OutcomeNoise
	}
}

// markFor returns the first mark covering path.
func (rn *routeNoise) markFor(path string) (mark, bool) {
	if len(rn.marks) == 0 {
		return mark{}, false
	}
	// Wildcards are accepted so that a shape path ("$.items[*].id", see
	// Signature.Shape) is covered by a mark on "$.items[*]" or "$.items";
	// a mark naming one index ("$.items[3]") does not cover the shape.
	segs, err := parsePath(path, true)
	if err != nil {
		return mark{}, false
	}
	for _, m := range rn.marks {
		if m.pat.matchesSegs(segs) {
			return m, true
		}
	}
	return mark{}, false
}

// learned applies the rule at the top of this file.
func (rn *routeNoise) learned(k noiseKey) bool {
	c := rn.paths[k]
	if c == nil || c.secondary < 1 || rn.primaryTotal < 1 || rn.secondaryTotal < int64(rn.settings.NoiseMinSamples) {
		return false
	}
	rs := float64(c.secondary) / float64(rn.secondaryTotal)
	rp := float64(c.primary) / float64(rn.primaryTotal)
	return rp-rs <= rn.settings.NoiseAbsTolerance || rp <= rs*(1+rn.settings.NoiseRelTolerance)
}

// Paths returns what the Learner knows about route: every counted (kind,
// path) and every mark that covers none of them, sorted by kind and path.
func (l *Learner) Paths(route string) []NoiseStat {
	l.mu.RLock()
	defer l.mu.RUnlock()
	rn := l.routes[route]
	if rn == nil {
		return nil
	}
	out := make([]NoiseStat, 0, len(rn.paths)+len(rn.marks))
	used := make([]bool, len(rn.marks))
	for k, c := range rn.paths {
		st := NoiseStat{
			Kind: k.kind, Path: k.path,
			SecondaryDiffs: c.secondary, SecondaryTotal: rn.secondaryTotal, SecondaryRate: rate(c.secondary, rn.secondaryTotal),
			PrimaryDiffs: c.primary, PrimaryTotal: rn.primaryTotal, PrimaryRate: rate(c.primary, rn.primaryTotal),
			Learned: rn.learned(k),
		}
		if m, ok := rn.markFor(k.path); ok {
			st.Marked, st.Reason = true, m.reason
			for i := range rn.marks {
				if rn.marks[i].path == m.path {
					used[i] = true
				}
			}
		}
		out = append(out, st)
	}
	for i, m := range rn.marks {
		if !used[i] {
			out = append(out, NoiseStat{Path: m.path, Marked: true, Reason: m.reason,
				SecondaryTotal: rn.secondaryTotal, PrimaryTotal: rn.primaryTotal})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Path < out[j].Path
	})
	return out
}

func rate(n, total int64) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

// snapshotVersion is the version of the Snapshot format.
const snapshotVersion = 1

type snapshot struct {
	Version int                      `json:"version"`
	Routes  map[string]routeSnapshot `json:"routes"`
}

type routeSnapshot struct {
	SecondaryTotal int64          `json:"secondary_total"`
	PrimaryTotal   int64          `json:"primary_total"`
	Paths          []pathSnapshot `json:"paths,omitempty"`
	Marks          []markSnapshot `json:"marks,omitempty"`
}

type pathSnapshot struct {
	Kind           Kind   `json:"kind"`
	Path           string `json:"path"`
	SecondaryDiffs int64  `json:"secondary_diffs"`
	PrimaryDiffs   int64  `json:"primary_diffs"`
}

type markSnapshot struct {
	Path   string `json:"path"`
	Reason string `json:"reason,omitempty"`
}

// Snapshot returns the counts and marks of every route as JSON. Thresholds
// are not included: they come from the routes' settings (Configure).
func (l *Learner) Snapshot() ([]byte, error) {
	l.mu.RLock()
	snap := l.snapshotLocked()
	l.mu.RUnlock()
	return json.Marshal(snap)
}

// SnapshotWithMark returns the Snapshot the Learner would have after
// Mark(route, path, reason), without changing it: a caller persists that
// first and calls Mark only once it is stored, so that a mark that cannot be
// persisted never takes effect.
func (l *Learner) SnapshotWithMark(route, path, reason string) ([]byte, error) {
	if _, err := parsePath(path, true); err != nil {
		return nil, fmt.Errorf("cannot mark %q: %w", path, err)
	}
	l.mu.RLock()
	snap := l.snapshotLocked()
	l.mu.RUnlock()
	rs := snap.Routes[route]
	replaced := false
	for i := range rs.Marks {
		if rs.Marks[i].Path == path {
			rs.Marks[i].Reason, replaced = reason, true
		}
	}
	if !replaced {
		rs.Marks = append(rs.Marks, markSnapshot{Path: path, Reason: reason})
	}
	snap.Routes[route] = rs
	return json.Marshal(snap)
}

// snapshotLocked builds the snapshot; l.mu must be held.
func (l *Learner) snapshotLocked() snapshot {
	snap := snapshot{Version: snapshotVersion, Routes: make(map[string]routeSnapshot, len(l.routes))}
	for name, rn := range l.routes {
		rs := routeSnapshot{SecondaryTotal: rn.secondaryTotal, PrimaryTotal: rn.primaryTotal}
		for k, c := range rn.paths {
			rs.Paths = append(rs.Paths, pathSnapshot{Kind: k.kind, Path: k.path, SecondaryDiffs: c.secondary, PrimaryDiffs: c.primary})
		}
		sort.Slice(rs.Paths, func(i, j int) bool {
			if rs.Paths[i].Kind != rs.Paths[j].Kind {
				return rs.Paths[i].Kind < rs.Paths[j].Kind
			}
			return rs.Paths[i].Path < rs.Paths[j].Path
		})
		for _, m := range rn.marks {
			rs.Marks = append(rs.Marks, markSnapshot{Path: m.path, Reason: m.reason})
		}
		snap.Routes[name] = rs
	}
	return snap
}

// Restore replaces the counts and marks of every route with those of a
// Snapshot. Routes keep the thresholds Configure gave them. Data that is not
// a valid snapshot gives an error and changes nothing.
func (l *Learner) Restore(data []byte) error {
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("cannot restore noise state: %w", err)
	}
	if snap.Version != snapshotVersion {
		return fmt.Errorf("cannot restore noise state: version %d, want %d", snap.Version, snapshotVersion)
	}
	routes := make(map[string]*routeNoise, len(snap.Routes))
	for name, rs := range snap.Routes {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("cannot restore noise state: route %q: %s", name, fmt.Sprintf(format, args...))
		}
		if rs.SecondaryTotal < 0 || rs.PrimaryTotal < 0 {
			return bad("negative total")
		}
		if len(rs.Paths) > maxNoisePaths {
			return bad("%d paths, at most %d", len(rs.Paths), maxNoisePaths)
		}
		rn := &routeNoise{settings: Settings{}.withDefaults(), secondaryTotal: rs.SecondaryTotal,
			primaryTotal: rs.PrimaryTotal, paths: make(map[noiseKey]*noiseCounts, len(rs.Paths))}
		for _, p := range rs.Paths {
			if !validKind(p.Kind) {
				return bad("path %q: unknown kind %q", p.Path, p.Kind)
			}
			if _, err := parsePath(p.Path, true); err != nil {
				return bad("bad path %q: %v", p.Path, err)
			}
			if p.SecondaryDiffs < 0 || p.SecondaryDiffs > rs.SecondaryTotal || p.PrimaryDiffs < 0 || p.PrimaryDiffs > rs.PrimaryTotal {
				return bad("path %q: counts out of range", p.Path)
			}
			k := noiseKey{p.Kind, p.Path}
			if rn.paths[k] != nil {
				return bad("path %q of kind %s twice", p.Path, p.Kind)
			}
			rn.paths[k] = &noiseCounts{secondary: p.SecondaryDiffs, primary: p.PrimaryDiffs}
		}
		for _, m := range rs.Marks {
			pat, err := parsePath(m.Path, true)
			if err != nil {
				return bad("bad mark %q: %v", m.Path, err)
			}
			rn.marks = append(rn.marks, mark{path: m.Path, pat: pat, reason: m.Reason})
		}
		routes[name] = rn
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, rn := range routes {
		if old := l.routes[name]; old != nil {
			rn.settings = old.settings
		}
	}
	for name, old := range l.routes {
		if routes[name] == nil {
			// Configured but absent from the snapshot: keep its thresholds.
			routes[name] = &routeNoise{settings: old.settings, paths: map[noiseKey]*noiseCounts{}}
		}
	}
	l.routes = routes
	return nil
}

func validKind(k Kind) bool {
	switch k {
	case KindStatus, KindHeader, KindJSON, KindImage, KindBody:
		return true
	}
	return false
}

// RouteCounts are a route's noise counts: the comparisons of each sort and,
// per (kind, shape path), how many of them differed there. TakeDelta and
// SetCounts exchange them with a store shared by several Learners (a
// fleet's), which adds up the deltas.
type RouteCounts struct {
	SecondaryTotal, PrimaryTotal int64
	Paths                        []PathCounts
}

// PathCounts are the counts of one (kind, shape path) of a route.
type PathCounts struct {
	Kind                         Kind
	Path                         string
	SecondaryDiffs, PrimaryDiffs int64
}

// TakeDelta returns, per route, the counts observed since the last
// TakeDelta (or since NewLearner or Restore), and starts a new delta; routes
// with nothing new are left out, and so are paths with nothing new. The
// counts themselves are unchanged: the Learner goes on classifying with
// them. A caller that cannot store a delta keeps it and stores it later;
// TakeDelta does not give it again.
func (l *Learner) TakeDelta() map[string]RouteCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]RouteCounts{}
	for name, rn := range l.routes {
		if rn.dSecondaryTotal == 0 && rn.dPrimaryTotal == 0 {
			continue
		}
		rc := RouteCounts{SecondaryTotal: rn.dSecondaryTotal, PrimaryTotal: rn.dPrimaryTotal}
		for k, c := range rn.paths {
			if c.dSecondary != 0 || c.dPrimary != 0 {
				rc.Paths = append(rc.Paths, PathCounts{Kind: k.kind, Path: k.path, SecondaryDiffs: c.dSecondary, PrimaryDiffs: c.dPrimary})
				c.dSecondary, c.dPrimary = 0, 0
			}
		}
		sort.Slice(rc.Paths, func(i, j int) bool {
			if rc.Paths[i].Kind != rc.Paths[j].Kind {
				return rc.Paths[i].Kind < rc.Paths[j].Kind
			}
			return rc.Paths[i].Path < rc.Paths[j].Path
		})
		rn.dSecondaryTotal, rn.dPrimaryTotal = 0, 0
		out[name] = rc
	}
	return out
}

// SetCounts replaces every route's counts with base's (a shared store's
// totals, which hold every delta taken so far) plus what was observed
// since the last TakeDelta, which base cannot hold yet. Marks and
// thresholds are kept; a route absent from base keeps only its untaken
// delta. A route keeps at most 4096 paths: those with an untaken delta,
// then base's in the order given (give the most frequent first). Counts
// out of range (negative, or diffs above their total) are clamped.
func (l *Learner) SetCounts(base map[string]RouteCounts) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name := range base {
		l.route(name)
	}
	for name, rn := range l.routes {
		b := base[name]
		paths := make(map[noiseKey]*noiseCounts, len(b.Paths))
		for k, c := range rn.paths {
			if c.dSecondary != 0 || c.dPrimary != 0 {
				paths[k] = &noiseCounts{secondary: c.dSecondary, primary: c.dPrimary, dSecondary: c.dSecondary, dPrimary: c.dPrimary}
			}
		}
		rn.secondaryTotal = max(b.SecondaryTotal, 0) + rn.dSecondaryTotal
		rn.primaryTotal = max(b.PrimaryTotal, 0) + rn.dPrimaryTotal
		for _, p := range b.Paths {
			k := noiseKey{p.Kind, p.Path}
			c := paths[k]
			if c == nil {
				if len(paths) >= maxNoisePaths {
					continue
				}
				c = &noiseCounts{}
				paths[k] = c
			}
			c.secondary = min(c.secondary+max(p.SecondaryDiffs, 0), rn.secondaryTotal)
			c.primary = min(c.primary+max(p.PrimaryDiffs, 0), rn.primaryTotal)
		}
		rn.paths = paths
	}
}
