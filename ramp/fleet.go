package ramp

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/internal/latency"
	"github.com/tandem-proxy/tandem/rules"
)

// Fleet is what a Controller needs to drive its ramps as one instance of
// several that share one rules history (pgramp implements it on
// PostgreSQL). With a Fleet:
//   - every instance keeps feeding its own windows from its own traffic and,
//     at each Tick, publishes a Snapshot of each for the route's current
//     StepKey (Publish);
//   - the StepKey is derived from the shared rules history (StepKey), so
//     that every instance names the step alike without talking to the
//     others, and snapshots of an old step never count for a new one;
//   - every instance merges the live instances' snapshots of the key
//     (Snapshots, MergeSnapshots) into one Stats and evaluates Step on it,
//     so that the gates are the fleet's on every instance (Status);
//   - only the instance holding the route's lease (Lead) applies decisions,
//     through Apply and Record, which refuse the write of a term that is no
//     longer the one in force (fencing, ErrFenced);
//   - an advance waits until every live instance has applied the rules
//     version it is computed from (AllApplied).
//
// Lead is called from Status (the admin API) and must answer from memory;
// the other methods are called from Tick only, off the request path, and
// may go to the database (bounded in time). A method that fails makes the
// ramp wait, with the error in the decision's reason.
type Fleet interface {
	// Lead returns the route's lease term as this instance knows it: the
	// driver's name ("" when none is known) and whether it is this
	// instance, holding a term it still trusts. Memory only.
	Lead(route string) (t Term, mine bool)
	// StepKey returns the key of the step route is at in cur (this
	// instance's rules in force) and how long ago that step began, by the
	// shared history's clock: the same key on every instance that has
	// applied the version that began the step.
	StepKey(route string, cur rules.Rules) (StepKey, time.Duration, error)
	// Publish stores this instance's snapshot of route's window, replacing
	// the one it published before.
	Publish(route string, s Snapshot) error
	// Snapshots returns the snapshots of route for key published by the
	// live instances (this one's included, as last published).
	Snapshots(route string, key StepKey) ([]Snapshot, error)
	// AllApplied reports whether every live instance has applied version
	// (or a later one).
	AllApplied(version int64) (bool, error)
	// Apply is RulesStore.Apply, in a transaction that first checks that
	// t is still the term in force of route's lease (an error wrapping
	// ErrFenced otherwise, and nothing is written).
	Apply(t Term, ifMatch int64, ev rules.Event, mutate func(*rules.Rules) error) (rules.Rules, bool, error)
	// Record is RulesStore.Record, fenced as Apply.
	Record(t Term, ev rules.Event) error
}

// ErrFenced is what a Fleet's Apply and Record return, wrapped, when the
// term they were given is no longer the one in force: a stale driver's
// write is refused.
var ErrFenced = errors.New("ramp: fenced: this instance no longer drives the ramp")

// Term is one term of a route's ramp lease: the instance that drives it
// and the lease's epoch (it grows with every new term).
type Term struct {
	Route  string `json:"route"`
	Driver string `json:"driver"`
	Epoch  int64  `json:"epoch"`
}

// StepKey names one step of a route's ramp fleet-wide: the route, its
// serve_new (as a bucket count, rules.Threshold) and the rules version
// from which it has had that serve_new without a break. Every instance
// derives it from the shared rules history, so it is the same everywhere
// without coordination, and a step that is left and come back to (25, 0,
// 25) is a new key.
type StepKey struct {
	Route     string `json:"route"`
	Threshold uint32 `json:"threshold"`
	Since     int64  `json:"since"`
}

func (k StepKey) String() string { return fmt.Sprintf("%s@%d#%d", k.Route, k.Threshold, k.Since) }

// SigCountSnap is one signature (or shape) of a snapshot and its count.
type SigCountSnap struct {
	Sig compare.Signature `json:"sig"`
	N   int64             `json:"n"`
}

// Snapshot is one instance's window for one step, in a form that can be
// stored and merged: the signature counts (unclassified, so that the
// reader classifies them with the noise model as it stands), the counts,
// and both latency histograms (HdrHistogram V2 compressed encoding, in the
// geometry of internal/latency).
type Snapshot struct {
	Instance string  `json:"instance"` // filled by the Fleet
	Key      StepKey `json:"key"`
	// Since is when this instance's window for the step started (its own
	// clock; informative only).
	Since          time.Time      `json:"since"`
	Matched        int64          `json:"matched"`
	Sigs           []SigCountSnap `json:"sigs,omitempty"`
	Shapes         []SigCountSnap `json:"shapes,omitempty"`
	Overflow       int64          `json:"overflow"`
	WhenCompared   int64          `json:"when_compared"`
	NewRequests    int64          `json:"new_requests"` // incl. the served-by-new delta
	NewErrors      int64          `json:"new_errors"`
	LegacyRequests int64          `json:"legacy_requests"`
	BreakerSeen    bool           `json:"breaker_seen"`
	NewLatency     []byte         `json:"new_latency,omitempty"`
	LegacyLatency  []byte         `json:"legacy_latency,omitempty"`
}

// Snapshot returns the window's contents for key.
func (w *Window) Snapshot(key StepKey) (Snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := Snapshot{
		Key:            key,
		Since:          w.since,
		Matched:        w.matched,
		Overflow:       w.overflow,
		WhenCompared:   w.whenCmp,
		NewRequests:    w.newReqs + w.served[0] - w.servedBase[0],
		NewErrors:      w.newErrs + w.served[1] - w.servedBase[1],
		LegacyRequests: w.legacyReqs,
		BreakerSeen:    w.breakerSeen,
	}
	for _, c := range w.sigs {
		s.Sigs = append(s.Sigs, SigCountSnap{Sig: c.sig, N: c.n})
	}
	for _, c := range w.shapes {
		s.Shapes = append(s.Shapes, SigCountSnap{Sig: c.sig, N: c.n})
	}
	var err error
	if s.NewLatency, err = encodeHist(w.newLat); err != nil {
		return Snapshot{}, err
	}
	if s.LegacyLatency, err = encodeHist(w.legacyLat); err != nil {
		return Snapshot{}, err
	}
	return s, nil
}

func encodeHist(h *hdrhistogram.Histogram) ([]byte, error) {
	if h.TotalCount() == 0 {
		return nil, nil
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("ramp: cannot encode a latency histogram: %w", err)
	}
	return b, nil
}

// mergeHist adds the encoded histogram b to into.
func mergeHist(into *hdrhistogram.Histogram, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	h, err := hdrhistogram.Decode(b)
	if err != nil {
		return fmt.Errorf("ramp: cannot decode a latency histogram: %w", err)
	}
	if h.LowestTrackableValue() != latency.Lowest || h.HighestTrackableValue() != latency.Highest || h.SignificantFigures() != latency.Digits {
		return fmt.Errorf("ramp: a latency histogram has geometry [%d, %d] %d digits, not internal/latency's",
			h.LowestTrackableValue(), h.HighestTrackableValue(), h.SignificantFigures())
	}
	if dropped := into.Merge(h); dropped != 0 {
		return fmt.Errorf("ramp: %d latency samples out of range", dropped)
	}
	return nil
}

// MergeSnapshots sums snapshots of one step (from different instances)
// into one Stats, as Window.Stats does for one window: signatures are
// summed by key and classified with model (nil: every difference is
// real) now, latencies read from the merged histograms, and BreakerOpen
// is set when any instance saw the breaker open. since is the Stats' Since
// (the step's start). A snapshot that cannot be decoded is an error: the
// ramp waits rather than judge on part of the data.
func MergeSnapshots(route string, model compare.NoiseModel, since time.Time, snaps []Snapshot) (Stats, error) {
	s := Stats{Since: since}
	newLat, legacyLat := latency.New(), latency.New()
	counts := map[string]*sigCount{}
	for _, sn := range snaps {
		s.Compared += sn.Matched + sn.Overflow
		s.Mismatched += sn.Overflow
		s.Overflow += sn.Overflow
		s.MismatchedWhenCompared += sn.WhenCompared
		s.NewRequests += sn.NewRequests
		s.NewErrors += sn.NewErrors
		s.LegacyRequests += sn.LegacyRequests
		s.BreakerOpen = s.BreakerOpen || sn.BreakerSeen
		for _, list := range [][]SigCountSnap{sn.Sigs, sn.Shapes} {
			for _, c := range list {
				k := c.Sig.Key()
				if m := counts[k]; m != nil {
					m.n += c.N
				} else {
					counts[k] = &sigCount{sig: c.Sig, n: c.N}
				}
			}
		}
		if err := mergeHist(newLat, sn.NewLatency); err != nil {
			return Stats{}, fmt.Errorf("instance %s: %w", sn.Instance, err)
		}
		if err := mergeHist(legacyLat, sn.LegacyLatency); err != nil {
			return Stats{}, fmt.Errorf("instance %s: %w", sn.Instance, err)
		}
	}
	s.Signatures = len(counts)
	for _, c := range counts {
		s.Compared += c.n
		if model != nil && model.Classify(route, c.sig) != compare.OutcomeMismatch {
			s.Noise += c.n
		} else {
			s.Mismatched += c.n
		}
	}
	s.NewP99, s.LegacyP99 = p99(newLat), p99(legacyLat)
	return s, nil
}

// fencedStore is the RulesStore a driver applies its decisions through:
// reads from the instance's store, writes through the Fleet, fenced by the
// driver's term and compare-and-set on the version the decision was
// computed from.
type fencedStore struct {
	RulesStore
	fleet   Fleet
	term    Term
	version int64
	key     StepKey
}

func (f fencedStore) Apply(_ int64, ev rules.Event, mutate func(*rules.Rules) error) (rules.Rules, bool, error) {
	return f.fleet.Apply(f.term, f.version, detailsWithKey(ev, f.key), mutate)
}

func (f fencedStore) Record(ev rules.Event) error {
	return f.fleet.Record(f.term, detailsWithKey(ev, f.key))
}

// doneAt reports whether the audit log has a ramp_done of route for the
// step key (its details carry the key's Since as "step_since_version").
func doneAt(events []rules.Event, key StepKey) bool {
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if e.Route != key.Route || e.Kind != "ramp_done" {
			continue
		}
		if v, ok := e.Details["step_since_version"].(float64); ok && int64(v) == key.Since {
			return true
		}
		if v, ok := e.Details["step_since_version"].(int64); ok && v == key.Since {
			return true
		}
	}
	return false
}

// sortSnapshots orders snapshots by instance (deterministic merges).
func sortSnapshots(s []Snapshot) {
	sort.Slice(s, func(i, j int) bool { return s[i].Instance < s[j].Instance })
}
