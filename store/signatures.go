package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tandem-proxy/tandem/compare"
)

// Signature ids. Each route numbers its distinct signatures from 1 in the
// signatures table; a few ids are reserved and never stored there.
const (
	sigMatch    int64 = 0  // the empty signature: the responses agreed
	sigOverflow int64 = -1 // past the route's bound: always read as a mismatch
	sigError    int64 = -2 // a compare error (minute_sigs role secondary only): never classified
)

// Bounds of the signatures table per route: full signatures are kept until
// a route has maxFullSignatures, then only their Shape (array indexes as
// [*]) until it has maxSignatures; past that a comparison is recorded as
// sigOverflow.
const (
	maxFullSignatures = 3072
	maxSignatures     = 4096
)

// Roles of a recorded comparison: legacy against new, or legacy against
// the secondary (a second legacy instance).
const (
	rolePrimary   = 0
	roleSecondary = 1
)

// Against values of Comparison, by role.
const (
	AgainstNew       = "new"
	AgainstSecondary = "secondary"
)

func roleName(role int) string {
	if role == roleSecondary {
		return AgainstSecondary
	}
	return AgainstNew
}

// noNoise is the model of a Store without Options.Noise: nothing is noise.
type noNoise struct{}

func (noNoise) Noise(string, compare.Kind, string) bool { return false }

func (noNoise) Classify(_ string, sig compare.Signature) compare.Outcome {
	if len(sig) == 0 {
		return compare.OutcomeMatch
	}
	return compare.OutcomeMismatch
}

// routeSigs is the writer's copy of one route's rows of the signatures
// table: key → id.
type routeSigs struct {
	ids  map[string]int64
	next int64 // the next free id
}

// sigRef names one stored signature.
type sigRef struct {
	route string
	id    int64
}

// routeSigsLocked returns the writer's cache of route's signatures, loading
// it (one SELECT per route, once) inside tx; s.wmu must be held.
func (s *Store) routeSigsLocked(ctx context.Context, ts *writeStmts, route string) (*routeSigs, error) {
	rs := s.sigs[route]
	if rs != nil {
		return rs, nil
	}
	rows, err := ts.selectSigs.QueryContext(ctx, route)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	rs = &routeSigs{ids: map[string]int64{}, next: 1}
	for rows.Next() {
		var id int64
		var key string
		if err := rows.Scan(&id, &key); err != nil {
			return nil, err
		}
		rs.ids[key] = id
		rs.next = max(rs.next, id+1)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.sigs[route] = rs
	return rs, nil
}

// sigID returns the id of sig for route, inserting it (or, past the
// bound, its shape) into the signatures table inside the batch's
// transaction when it is new. s.wmu must be held.
func (s *Store) sigID(ctx context.Context, ts *writeStmts, route string, sig compare.Signature) (int64, error) {
	if len(sig) == 0 {
		return sigMatch, nil
	}
	rs, err := s.routeSigsLocked(ctx, ts, route)
	if err != nil {
		return 0, err
	}
	key := sig.Key()
	if id, ok := rs.ids[key]; ok {
		return id, nil
	}
	shape := false
	if len(rs.ids) >= maxFullSignatures {
		key, shape = sig.Shape().Key(), true
		if id, ok := rs.ids[key]; ok {
			return id, nil
		}
		if len(rs.ids) >= maxSignatures {
			return sigOverflow, nil
		}
	}
	id := rs.next
	if _, err := ts.insertSig.ExecContext(ctx, route, id, key, boolInt(shape)); err != nil {
		return 0, err
	}
	rs.ids[key] = id
	rs.next++
	return id, nil
}

// signatures returns the stored signatures of refs (ids > 0), read through
// q and cached. An id whose row is missing or cannot be parsed is left out:
// the callers read it as a mismatch.
func (s *Store) signatures(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, refs map[sigRef]bool) (map[sigRef]compare.Signature, error) {
	out := make(map[sigRef]compare.Signature, len(refs))
	missing := map[string]bool{}
	s.parsedMu.Lock()
	for r := range refs {
		if sig, ok := s.parsed[r]; ok {
			out[r] = sig
		} else if r.id > 0 {
			missing[r.route] = true
		}
	}
	s.parsedMu.Unlock()
	for route := range missing {
		rows, err := q.QueryContext(ctx, "SELECT id, sig FROM signatures WHERE route = ?", route)
		if err != nil {
			return nil, err
		}
		loaded := map[sigRef]compare.Signature{}
		for rows.Next() {
			var id int64
			var key string
			if err := rows.Scan(&id, &key); err != nil {
				rows.Close()
				return nil, err
			}
			sig, err := compare.ParseSignature(key)
			if err != nil {
				s.o.Logger.Warn("a stored signature cannot be read; its comparisons read as mismatches",
					"path", s.path, "route", route, "id", id, "err", err)
				continue
			}
			loaded[sigRef{route, id}] = sig
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("cannot read the signatures of route %q: %w", route, err)
		}
		s.parsedMu.Lock()
		for r, sig := range loaded {
			s.parsed[r] = sig
		}
		s.parsedMu.Unlock()
		for r := range refs {
			if r.route == route {
				if sig, ok := loaded[r]; ok {
					out[r] = sig
				}
			}
		}
	}
	return out, nil
}

// classify is the outcome of a comparison recorded with signature id for
// route under the store's noise model: sigMatch a match, sigOverflow (and
// an unreadable signature) a mismatch.
func (s *Store) classify(route string, id int64, sigs map[sigRef]compare.Signature) compare.Outcome {
	switch id {
	case sigMatch:
		return compare.OutcomeMatch
	case sigError:
		return compare.OutcomeError
	}
	sig, ok := sigs[sigRef{route, id}]
	if !ok {
		return compare.OutcomeMismatch
	}
	return s.o.Noise.Classify(route, sig)
}
