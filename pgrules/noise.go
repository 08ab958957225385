package pgrules

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/rules"
)

// ErrBadMark is wrapped by MarkNoise's error for a path that is not a
// pattern (the admin API answers 400).
var ErrBadMark = errors.New("not a noise path")

// noiseState is the Store's side of the shared noise model.
type noiseState struct {
	mu      sync.Mutex // one count sync at a time
	seq     int64      // last batch sequence number handed out
	pending *noiseBatch
	marksMu sync.Mutex           // guards marks (never held across a database call)
	marks   map[[2]string]string // (route, path) → reason, in force in the Learner
}

// noiseBatch is a delta taken from the Learner and not yet known stored.
type noiseBatch struct {
	seq    int64
	counts map[string]compare.RouteCounts
}

// noiseLoop adds the Learner's deltas to the database every NoiseInterval
// and loads the fleet's totals back.
func (s *Store) noiseLoop() {
	defer s.wg.Done()
	s.syncNoise() // the fleet's totals at once
	t := time.NewTicker(s.o.NoiseInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.syncNoise()
		}
	}
}

// syncNoise adds the pending batch (or a new one) to the fleet's counts
// and loads the totals into the Learner, in one transaction. A batch whose
// commit failed is retried with its sequence number, so the database adds
// it once even if that commit did happen; the counts observed meanwhile go
// in the next batch.
func (s *Store) syncNoise() error {
	s.noise.mu.Lock()
	defer s.noise.mu.Unlock()
	n := &s.noise
	if n.pending == nil {
		if d := s.o.Learner.TakeDelta(); len(d) > 0 {
			n.seq++
			n.pending = &noiseBatch{seq: n.seq, counts: d}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.noiseFailed(err)
	}
	defer tx.Rollback(context.Background())
	if b := n.pending; b != nil {
		tag, err := tx.Exec(ctx, `INSERT INTO rules_noise_batches (incarnation, seq) VALUES ($1, $2)
			ON CONFLICT (incarnation) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now() WHERE rules_noise_batches.seq < EXCLUDED.seq`,
			s.incarnation, b.seq)
		if err != nil {
			return s.noiseFailed(err)
		}
		if tag.RowsAffected() == 1 { // else this batch was added by a commit that looked failed
			if err := addCounts(ctx, tx, b.counts); err != nil {
				return s.noiseFailed(err)
			}
		}
	}
	base, err := readCounts(ctx, tx)
	if err != nil {
		return s.noiseFailed(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.noiseFailed(err)
	}
	n.pending = nil
	s.o.Learner.SetCounts(base)
	return nil
}

func (s *Store) noiseFailed(err error) error {
	s.setUp(false, err)
	return unavailable("share the noise counts", err)
}

// addCounts adds a delta, in a fixed order of rows (so that instances
// adding together do not deadlock).
func addCounts(ctx context.Context, tx pgx.Tx, d map[string]compare.RouteCounts) error {
	names := make([]string, 0, len(d))
	for name := range d {
		names = append(names, name)
	}
	sort.Strings(names)
	b := &pgx.Batch{}
	const upsert = `INSERT INTO rules_noise_counts AS c (route, kind, path, secondary_diffs, primary_diffs) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (route, kind, path) DO UPDATE SET secondary_diffs = c.secondary_diffs + EXCLUDED.secondary_diffs,
		primary_diffs = c.primary_diffs + EXCLUDED.primary_diffs`
	for _, name := range names {
		rc := d[name]
		b.Queue(upsert, name, "", "", rc.SecondaryTotal, rc.PrimaryTotal) // the totals
		for _, p := range rc.Paths {                                      // sorted by TakeDelta
			b.Queue(upsert, name, string(p.Kind), p.Path, p.SecondaryDiffs, p.PrimaryDiffs)
		}
	}
	return tx.SendBatch(ctx, b).Close()
}

// readCounts reads the fleet's counts, per route the most frequent paths
// first.
func readCounts(ctx context.Context, tx pgx.Tx) (map[string]compare.RouteCounts, error) {
	rows, err := tx.Query(ctx, `SELECT route, kind, path, secondary_diffs, primary_diffs FROM rules_noise_counts
		ORDER BY route, kind = '' DESC, secondary_diffs + primary_diffs DESC, kind, path`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]compare.RouteCounts{}
	for rows.Next() {
		var route, kind, path string
		var sec, pri int64
		if err := rows.Scan(&route, &kind, &path, &sec, &pri); err != nil {
			return nil, err
		}
		rc := out[route]
		if kind == "" && path == "" {
			rc.SecondaryTotal, rc.PrimaryTotal = sec, pri
		} else {
			rc.Paths = append(rc.Paths, compare.PathCounts{Kind: compare.Kind(kind), Path: path, SecondaryDiffs: sec, PrimaryDiffs: pri})
		}
		out[route] = rc
	}
	return out, rows.Err()
}

// NoiseCounts reads the fleet's noise counts from the database.
func (s *Store) NoiseCounts() (map[string]compare.RouteCounts, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, unavailable("read the noise counts", err)
	}
	defer tx.Rollback(context.Background())
	c, err := readCounts(ctx, tx)
	if err != nil {
		return nil, unavailable("read the noise counts", err)
	}
	return c, nil
}

// MarkNoise marks path as noise for route on every instance: the mark and
// its audit event (kind "noise") are stored in one transaction before it
// takes effect here (at once) and on the other instances (within
// PollInterval). A path that is not a pattern gives an error wrapping
// ErrBadMark; a database that cannot be reached one wrapping
// ErrUnavailable, and nothing changes. Without Options.Learner it is an
// error.
func (s *Store) MarkNoise(route, path, reason, actor string) error {
	if s.o.Learner == nil {
		return errors.New("pgrules: MarkNoise without Options.Learner")
	}
	if err := compare.CheckMark(path); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMark, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.noiseFailed(err)
	}
	defer tx.Rollback(context.Background())
	ev := rules.Event{Time: s.o.Now(), Instance: s.o.Instance, Actor: actor, Kind: "noise", Route: route, Reason: reason, New: "noise " + path}
	id, err := s.insertAudit(ctx, tx, ev)
	if err != nil {
		s.up.Store(false)
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO rules_noise_marks (route, path, reason, audit_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (route, path) DO UPDATE SET reason = EXCLUDED.reason, audit_id = EXCLUDED.audit_id`, route, path, reason, id); err != nil {
		return s.noiseFailed(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.noiseFailed(err)
	}
	s.noise.marksMu.Lock()
	s.applyMark(route, path, reason)
	s.noise.marksMu.Unlock()
	return nil
}

// applyMark puts a stored mark in force in the Learner; s.noise.marksMu held.
func (s *Store) applyMark(route, path, reason string) {
	if err := s.o.Learner.Mark(route, path, reason); err != nil {
		s.log.Error("a stored noise mark is not a pattern", "route", route, "path", path, "err", err)
	}
	s.noise.marks[[2]string{route, path}] = reason
}

// loadMarks puts in force the marks other instances stored.
func (s *Store) loadMarks() {
	ctx, cancel := context.WithTimeout(s.ctx, s.o.Timeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, "SELECT route, path, reason FROM rules_noise_marks")
	if err != nil {
		s.setUp(false, err)
		return
	}
	type m struct{ route, path, reason string }
	var ms []m
	for rows.Next() {
		var x m
		if err := rows.Scan(&x.route, &x.path, &x.reason); err != nil {
			break
		}
		ms = append(ms, x)
	}
	rows.Close()
	if rows.Err() != nil {
		s.setUp(false, rows.Err())
		return
	}
	s.noise.marksMu.Lock()
	defer s.noise.marksMu.Unlock()
	for _, x := range ms {
		if r, ok := s.noise.marks[[2]string{x.route, x.path}]; !ok || r != x.reason {
			s.applyMark(x.route, x.path, x.reason)
		}
	}
}
