package pgstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"
)

// janitorLock is the transaction-scoped advisory lock key the janitor
// holds (pg_try_advisory_xact_lock), so one instance at a time enforces
// retention and the size bound.
var janitorLock = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("tandem-pgstore:janitor"))
	return int64(h.Sum64())
}()

// JanitorLockKey is the janitor's advisory lock key, for operators (and
// tests) that want to hold the janitors off.
func JanitorLockKey() int64 { return janitorLock }

// janitorChunk is how many of the oldest rows one size-bound step deletes.
const janitorChunk = 500

func (s *Store) runJanitor() {
	defer close(s.janitorDone)
	t := time.NewTicker(janitorEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stopJanitor:
			return
		case <-t.C:
			if _, err := s.Janitor(s.o.Now()); err != nil {
				s.o.Logger.Warn("pgstore: janitor", "err", err)
			}
		}
	}
}

// Janitor deletes the samples older than Retention and the comparison rows
// older than ComparisonRetention, then the oldest of either while their
// total size exceeds MaxBytes, in one transaction under an advisory lock:
// when another instance's janitor holds it, Janitor returns ran false and
// does nothing.
func (s *Store) Janitor(now time.Time) (ran bool, err error) {
	ctx, cancel := context.WithTimeout(bg(), 5*time.Minute)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("pgstore: janitor cannot clean up: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", janitorLock).Scan(&ran); err != nil {
		return false, fmt.Errorf("pgstore: janitor cannot clean up: %w", err)
	}
	if !ran {
		return false, nil
	}
	if _, err := tx.Exec(ctx, "DELETE FROM store_samples WHERE at < $1", now.Add(-s.o.Retention).UnixNano()); err != nil {
		return true, fmt.Errorf("pgstore: janitor cannot clean up: %w", err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM store_comparisons WHERE at < $1", now.Add(-s.o.ComparisonRetention).UnixNano()); err != nil {
		return true, fmt.Errorf("pgstore: janitor cannot clean up: %w", err)
	}
	// A writer's batch number is only read back by its own retry: a week
	// covers any outage a buffer outlives.
	if _, err := tx.Exec(ctx, "DELETE FROM store_batches WHERE updated_at < now() - interval '7 days'"); err != nil {
		return true, fmt.Errorf("pgstore: janitor cannot clean up: %w", err)
	}
	var total int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT SUM(bytes) FROM store_samples), 0)::BIGINT +
		COALESCE((SELECT SUM(bytes) FROM store_comparisons), 0)::BIGINT`).Scan(&total); err != nil {
		return true, fmt.Errorf("pgstore: janitor cannot clean up: %w", err)
	}
	for total > s.o.MaxBytes {
		var sampleAt, compAt *int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT MIN(at) FROM store_samples), (SELECT MIN(at) FROM store_comparisons)`).Scan(&sampleAt, &compAt); err != nil {
			return true, fmt.Errorf("pgstore: janitor cannot clean up: %w", err)
		}
		table := ""
		switch {
		case sampleAt != nil && (compAt == nil || *sampleAt <= *compAt):
			table = "store_samples"
		case compAt != nil:
			table = "store_comparisons"
		default:
			total = 0
			continue
		}
		key := "id"
		if table == "store_comparisons" {
			key = "seq"
		}
		// The oldest rows of that table, but only as many as take the
		// total under the bound (and at least one).
		var freed int64
		if err := tx.QueryRow(ctx, fmt.Sprintf(`WITH old AS (
				SELECT %[2]s, bytes, SUM(bytes) OVER (ORDER BY at, %[2]s) AS run FROM %[1]s ORDER BY at, %[2]s LIMIT %[3]d),
			victims AS (SELECT %[2]s FROM old WHERE run - bytes < $1),
			gone AS (DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM victims) RETURNING bytes)
			SELECT COALESCE(SUM(bytes), 0)::BIGINT FROM gone`, table, key, janitorChunk), total-s.o.MaxBytes).Scan(&freed); err != nil {
			return true, fmt.Errorf("pgstore: janitor cannot clean up: %w", err)
		}
		if freed == 0 {
			break
		}
		total -= freed
	}
	if err := tx.Commit(ctx); err != nil {
		return true, fmt.Errorf("pgstore: janitor cannot clean up: %w", err)
	}
	return true, nil
}
