package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
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

// Janitor deletes the samples taken before now-Retention and the
// comparison rows made before now-ComparisonRetention, then, while samples
// and comparison rows together exceed MaxBytes, the oldest of either (by
// time), in one transaction, and returns freed pages to the file system.
// Paths whose samples were deleted take new samples again. The janitor
// goroutine calls it; tests call it with their own now.
func (s *Store) Janitor(now time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.janitor(now); err != nil {
		return fmt.Errorf("cannot clean samples and comparisons in %s: %w", s.path, err)
	}
	return nil
}

// janitorPage is how many of the oldest rows of a table the size walk reads
// at a time.
const janitorPage = 512

// oldest walks a table's rows by (at, key), oldest first, a page at a time.
type oldest struct {
	tx    *sql.Tx
	query string // selects key, at, bytes after (at, key), ordered, LIMIT janitorPage
	page  []oldRow
	done  bool
	last  oldRow
}

type oldRow struct {
	key   any // samples.id (string) or comparisons.seq (int64)
	at    int64
	bytes int64
}

// peek returns the next row, or false when the table has no more.
func (o *oldest) peek(ctx context.Context) (oldRow, bool, error) {
	if len(o.page) == 0 && !o.done {
		rows, err := o.tx.QueryContext(ctx, o.query, o.last.at, o.last.at, o.last.key)
		if err != nil {
			return oldRow{}, false, err
		}
		for rows.Next() {
			var r oldRow
			if err := rows.Scan(&r.key, &r.at, &r.bytes); err != nil {
				rows.Close()
				return oldRow{}, false, err
			}
			o.page = append(o.page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return oldRow{}, false, err
		}
		o.done = len(o.page) < janitorPage
	}
	if len(o.page) == 0 {
		return oldRow{}, false, nil
	}
	return o.page[0], true, nil
}

func (o *oldest) pop() oldRow {
	r := o.page[0]
	o.page = o.page[1:]
	o.last = r
	return r
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

	// Comparison rows past their retention: their bytes first (a range of
	// the at index), then the rows.
	ccut := now.Add(-s.o.ComparisonRetention).UnixNano()
	var expired int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(bytes), 0) FROM comparisons WHERE at < ?", ccut).Scan(&expired); err != nil {
		return err
	}
	res, err = tx.ExecContext(ctx, "DELETE FROM comparisons WHERE at < ?", ccut)
	if err != nil {
		return err
	}
	deletedComp, _ := res.RowsAffected()
	compTotal := s.compBytes.Load() - expired

	var total int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(bytes), 0) FROM samples").Scan(&total); err != nil {
		return err
	}
	if total+compTotal > s.o.MaxBytes {
		// Walk both tables from the oldest, collecting until the rest fits.
		// The janitor runs every minute (and at once when the writer sees
		// the bound passed), so the walk covers about a minute of rows.
		smp := &oldest{tx: tx, query: "SELECT id, at, bytes FROM samples WHERE at > ? OR (at = ? AND id > ?) ORDER BY at, id LIMIT " + fmt.Sprint(janitorPage),
			last: oldRow{key: "", at: math.MinInt64}}
		cmp := &oldest{tx: tx, query: "SELECT seq, at, bytes FROM comparisons WHERE at > ? OR (at = ? AND seq > ?) ORDER BY at, seq LIMIT " + fmt.Sprint(janitorPage),
			last: oldRow{key: int64(math.MinInt64), at: math.MinInt64}}
		var ids []string
		var lastComp *oldRow
		for total+compTotal > s.o.MaxBytes {
			a, okA, err := smp.peek(ctx)
			if err != nil {
				return err
			}
			b, okB, err := cmp.peek(ctx)
			if err != nil {
				return err
			}
			switch {
			case okA && (!okB || a.at <= b.at):
				r := smp.pop()
				ids = append(ids, r.key.(string))
				total -= r.bytes
			case okB:
				r := cmp.pop()
				lastComp = &r
				compTotal -= r.bytes
			default:
				// Both empty: the totals were estimates; nothing is left.
				total, compTotal = 0, 0
			}
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
		if lastComp != nil {
			res, err := tx.ExecContext(ctx, "DELETE FROM comparisons WHERE at < ? OR (at = ? AND seq <= ?)", lastComp.at, lastComp.at, lastComp.key)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			deletedComp += n
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.sampleBytes.Store(total)
	// The writer adds to compBytes only while holding wmu, as the janitor
	// does, so nothing was added since it was read.
	s.compBytes.Store(max(compTotal, 0))
	if deleted > 0 {
		clear(s.pathCounts)
	}
	if deleted > 0 || deletedComp > 0 {
		// Give freed pages back to the file system (auto_vacuum=INCREMENTAL;
		// a no-op on a file created without it).
		if _, err := s.wdb.ExecContext(ctx, "PRAGMA incremental_vacuum"); err != nil {
			return err
		}
	}
	return nil
}
