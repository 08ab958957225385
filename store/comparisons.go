package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tandem-proxy/tandem/compare"
)

// Comparison is one comparison made for a request: legacy against new, or
// legacy against the secondary, as the noise model reads it now.
type Comparison struct {
	At        time.Time `json:"at"`
	Route     string    `json:"route"`
	RequestID string    `json:"request_id"`
	// Instance is the tandem that made it (Options.Instance).
	Instance string `json:"instance"`
	// Against is AgainstNew ("new") or AgainstSecondary ("secondary").
	Against string `json:"against"`
	// Outcome is the recorded signature classified by the store's noise
	// model when read; a compare error stays OutcomeError, and a signature
	// past the route's bound (see the package doc) reads as a mismatch.
	Outcome compare.Outcome `json:"outcome"`
	// Diffs are the differing (kind, path) pairs, each flagged by the noise
	// model now; empty for a match and for an overflowed signature. Past a
	// route's bound of full signatures the paths are shapes ([*] for array
	// indexes).
	Diffs []ComparedDiff `json:"diffs"`
	// SampleID is the id of a stored sample of this comparison, if one is
	// still retained; "" otherwise.
	SampleID string `json:"sample_id,omitempty"`
}

// ComparedDiff is one differing (kind, path) of a Comparison.
type ComparedDiff struct {
	Kind  compare.Kind `json:"kind"`
	Path  string       `json:"path"`
	Noise bool         `json:"noise"`
}

// Comparisons returns every retained comparison of requestID, oldest first
// (by At; ties in recording order, legacy→new before legacy→secondary).
// An unknown, empty or expired id gives an empty list, not an error.
func (s *Store) Comparisons(requestID string) ([]Comparison, error) {
	out, err := s.comparisons(requestID)
	if err != nil {
		return nil, fmt.Errorf("cannot read the comparisons of request %q from %s: %w", requestID, s.path, err)
	}
	return out, nil
}

func (s *Store) comparisons(requestID string) ([]Comparison, error) {
	out := []Comparison{}
	if requestID == "" {
		return out, nil
	}
	ctx := context.Background()
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	cutoff := s.o.Now().Add(-s.o.ComparisonRetention).UnixNano()
	rows, err := tx.QueryContext(ctx, `SELECT c.at, c.route, c.role, c.instance, c.sig, c.outcome,
			CASE WHEN s.id IS NULL THEN '' ELSE s.id END
		FROM comparisons c LEFT JOIN samples s ON s.id = c.sample_id AND c.sample_id != ''
		WHERE c.request_id = ? AND c.at >= ?
		ORDER BY c.at, c.seq`, requestID, cutoff)
	if err != nil {
		return nil, err
	}
	type row struct {
		c   Comparison
		sig int64
	}
	var got []row
	refs := map[sigRef]bool{}
	for rows.Next() {
		var r row
		var at int64
		var role int
		var outcome string
		if err := rows.Scan(&at, &r.c.Route, &role, &r.c.Instance, &r.sig, &outcome, &r.c.SampleID); err != nil {
			rows.Close()
			return nil, err
		}
		r.c.At = time.Unix(0, at).UTC()
		r.c.RequestID = requestID
		r.c.Against = roleName(role)
		r.c.Outcome = compare.Outcome(outcome)
		got = append(got, r)
		refs[sigRef{r.c.Route, r.sig}] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sigs, err := s.signatures(ctx, tx, refs)
	if err != nil {
		return nil, err
	}
	for _, r := range got {
		out = append(out, ReadNow(r.c, sigs[sigRef{r.c.Route, r.sig}], s.o.Noise,
			func() compare.Outcome { return s.classify(r.c.Route, r.sig, sigs) }))
	}
	return out, nil
}

// ReadNow is a stored comparison as the noise model reads it now, the one
// rule both stores' Comparisons follow: a verdict (IsVerdict) is classified
// again by classify (the store's reading of its signature id), any other
// outcome is an error, never classified; Diffs are sig's (kind, path)
// pairs, each with the model's noise flag now.
func ReadNow(c Comparison, sig compare.Signature, noise compare.NoiseModel, classify func() compare.Outcome) Comparison {
	if IsVerdict(c.Outcome) {
		c.Outcome = classify()
	} else {
		c.Outcome = compare.OutcomeError
	}
	c.Diffs = make([]ComparedDiff, 0, len(sig))
	for _, k := range sig {
		c.Diffs = append(c.Diffs, ComparedDiff{Kind: k.Kind, Path: k.Path, Noise: noise.Noise(c.Route, k.Kind, k.Path)})
	}
	return c
}
