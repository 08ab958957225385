package store

import (
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
)

// SampleKey is a (route, kind, path) of the per-path sample cap: a sample
// is stored under every key its exchange differs at, and charged to those
// that had room (at most SamplesPerPath samples each).
type SampleKey struct {
	Route string
	Kind  compare.Kind
	Path  string
}

// errorPath is the cap key of an error exchange without differences.
const errorPath = "$.error"

// SampleQuota is the sample-keep rule of one batch (one transaction), the
// same for every store: which outcomes keep a sample, under which keys,
// and which keys it is charged to. The store passes in how to read a key's
// committed count, so the rule lives here and the query in the store.
type SampleQuota struct {
	perPath int
	count   func(SampleKey) (int, error)
	// pending counts the samples charged to a key in this batch, not yet
	// committed.
	pending map[SampleKey]int
}

// NewSampleQuota is the rule for one batch: at most perPath samples
// charged per key, counting the committed ones, which count returns (the
// samples charged to the key, read within the batch's transaction; the
// store may cache them), and those this batch charged before.
func NewSampleQuota(perPath int, count func(SampleKey) (int, error)) *SampleQuota {
	return &SampleQuota{perPath: perPath, count: count, pending: map[SampleKey]int{}}
}

// Keep decides whether a sample of ex is kept. keys are ex's distinct
// difference keys. A match keeps none; a mismatch or noise without
// differences keeps none; an error exchange without differences is keyed
// (ex.Route, status, "$.error"). The sample is kept when at least one key
// has fewer than perPath committed and pending samples; it is then
// charged to (counted pending for) each key that had room. Keep returns
// the keys to store the sample under (nil: no sample) and which of them
// it is charged to, or count's error.
func (q *SampleQuota) Keep(ex *exchange.Exchange, keys []SampleKey) (stored []SampleKey, charged []bool, err error) {
	switch ex.Result.Outcome {
	case compare.OutcomeMatch:
		return nil, nil, nil
	case compare.OutcomeMismatch, compare.OutcomeNoise:
		if len(keys) == 0 {
			return nil, nil, nil
		}
	default:
		if len(keys) == 0 {
			keys = append(keys, SampleKey{ex.Route, compare.KindStatus, errorPath})
		}
	}
	charged = make([]bool, len(keys))
	room := false
	for i, k := range keys {
		base, err := q.count(k)
		if err != nil {
			return nil, nil, err
		}
		if base+q.pending[k] < q.perPath {
			charged[i], room = true, true
		}
	}
	if !room {
		return nil, nil, nil
	}
	for i, k := range keys {
		if charged[i] {
			q.pending[k]++
		}
	}
	return keys, charged, nil
}
