package store

import (
	"context"
	"fmt"
	"time"
)

// runJanitor is the store's janitor goroutine: it calls Janitor every
// janitorEvery, and at once when the writer reports that samples passed
// MaxBytes. It returns when the store closes.
func (s *Store) runJanitor() {
	defer close(s.janitorDone)
	t := time.NewTicker(janitorEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.janitorKick:
		}
		// Errors are transient (busy, disk full) and retried on the next
		// tick; the writer's Stats show a failing disk.
		_ = s.Janitor(s.o.Now())
	}
}

// Janitor deletes the samples taken before now-Retention, then the oldest
// samples while their total size exceeds MaxBytes, in one transaction, and
// returns freed pages to the file system. Paths whose samples were deleted
// take new samples again. The janitor goroutine calls it; tests call it
// with their own now.
func (s *Store) Janitor(now time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.janitor(now); err != nil {
		return fmt.Errorf("cannot clean samples in %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) janitor(now time.Time) (err error) {
	ctx := context.Background()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	cutoff := now.Add(-s.o.Retention).UnixNano()
	if _, err := tx.ExecContext(ctx, "DELETE FROM sample_paths WHERE at < ?", cutoff); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM samples WHERE at < ?", cutoff)
	if err != nil {
		return err
	}
	deleted, _ := res.RowsAffected()

	var total int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(bytes), 0) FROM samples").Scan(&total); err != nil {
		return err
	}
	if total > s.o.MaxBytes {
		// Walk from the oldest, collecting until the rest fits.
		rows, err := tx.QueryContext(ctx, "SELECT id, bytes FROM samples ORDER BY at, id")
		if err != nil {
			return err
		}
		var ids []string
		for total > s.o.MaxBytes && rows.Next() {
			var id string
			var b int64
			if err := rows.Scan(&id, &b); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
			total -= b
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, "DELETE FROM sample_paths WHERE sample_id = ?", id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM samples WHERE id = ?", id); err != nil {
				return err
			}
		}
		deleted += int64(len(ids))
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.sampleBytes.Store(total)
	if deleted > 0 {
		clear(s.pathCounts)
		// Give freed pages back to the file system (auto_vacuum=INCREMENTAL;
		// a no-op on a file created without it).
		if _, err := s.wdb.ExecContext(ctx, "PRAGMA incremental_vacuum"); err != nil {
			return err
		}
	}
	return nil
}
