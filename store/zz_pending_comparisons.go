package store

// TEMPORARY (branch noise-api): the comparisons lookup's types as
// shared-api.md fixes them, so that admin, app and cmd/tandem compile
// before branch noise-store (which owns them) is merged. Deleted at that
// merge; nothing else may be added here.

import (
	"time"

	"github.com/tandem-proxy/tandem/compare"
)

// Comparison is one comparison made for a request.
type Comparison struct {
	At        time.Time       `json:"at"`
	Route     string          `json:"route"`
	RequestID string          `json:"request_id"`
	Instance  string          `json:"instance"`
	Against   string          `json:"against"` // "new" or "secondary"
	Outcome   compare.Outcome `json:"outcome"` // as the noise model reads it now
	Diffs     []ComparedDiff  `json:"diffs"`
	SampleID  string          `json:"sample_id,omitempty"`
}

// ComparedDiff is one differing (kind, path) pair of a Comparison.
type ComparedDiff struct {
	Kind  compare.Kind `json:"kind"`
	Path  string       `json:"path"`
	Noise bool         `json:"noise"`
}

// Comparisons is a placeholder until noise-store's lands: none.
func (s *Store) Comparisons(requestID string) ([]Comparison, error) { return nil, nil }
