// Package pgmigrate creates and migrates the fleet's PostgreSQL schema at
// start-up. Each component (the diff store, the rules store, the ramp
// leases) owns its tables and gives its own numbered migrations; Apply runs
// those a database has not seen yet, each in its own transaction with the
// row that records it, under a transaction-scoped advisory lock, so that
// instances starting together apply each migration exactly once and a
// crash mid-migration leaves the previous version in place. A database
// that is ahead of the binary (a newer tandem migrated it) is an error
// naming both versions: an older binary must not write a schema it does
// not know.
package pgmigrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migration is one step of a component's schema: Version counts from 1 in
// order, SQL may hold several statements.
type Migration struct {
	Version int
	SQL     string
}

const ledger = `CREATE TABLE IF NOT EXISTS tandem_migrations (
	component TEXT NOT NULL,
	version INTEGER NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (component, version)
)`

// lockKey is the advisory lock of a component's migrations.
func lockKey(component string) int64 {
	h := fnv.New64a()
	h.Write([]byte("tandem-migrate:" + component))
	return int64(h.Sum64())
}

// Apply brings component's schema to the last of migs and returns the
// version the database is at. migs must be numbered 1, 2, … in order.
func Apply(ctx context.Context, pool *pgxpool.Pool, component string, migs []Migration) (int, error) {
	for i, m := range migs {
		if m.Version != i+1 {
			return 0, fmt.Errorf("pgmigrate: %s: migration %d has version %d, want %d", component, i, m.Version, i+1)
		}
	}
	current := 0
	for {
		done, v, err := applyNext(ctx, pool, component, migs)
		if err != nil {
			return v, err
		}
		current = v
		if done {
			return current, nil
		}
	}
}

// applyNext applies the first migration the database lacks, in one
// transaction; done when there was none.
func applyNext(ctx context.Context, pool *pgxpool.Pool, component string, migs []Migration) (done bool, version int, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, 0, fmt.Errorf("pgmigrate: %s: %w", component, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("ledger")); err != nil {
		return false, 0, fmt.Errorf("pgmigrate: %s: lock: %w", component, err)
	}
	if _, err := tx.Exec(ctx, ledger); err != nil {
		return false, 0, fmt.Errorf("pgmigrate: %s: ledger: %w", component, err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(component)); err != nil {
		return false, 0, fmt.Errorf("pgmigrate: %s: lock: %w", component, err)
	}
	var have int
	if err := tx.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM tandem_migrations WHERE component = $1", component).Scan(&have); err != nil {
		return false, 0, fmt.Errorf("pgmigrate: %s: %w", component, err)
	}
	if have > len(migs) {
		return false, have, fmt.Errorf("pgmigrate: %s: the database is at schema version %d, this tandem knows only %d: upgrade tandem", component, have, len(migs))
	}
	if have == len(migs) {
		return true, have, tx.Commit(ctx)
	}
	m := migs[have]
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return false, have, fmt.Errorf("pgmigrate: %s: migration %d: %w", component, m.Version, err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO tandem_migrations (component, version) VALUES ($1, $2)", component, m.Version); err != nil {
		return false, have, fmt.Errorf("pgmigrate: %s: recording migration %d: %w", component, m.Version, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, have, fmt.Errorf("pgmigrate: %s: migration %d: %w", component, m.Version, err)
	}
	return false, m.Version, nil
}

// Version returns the version component's schema is at (0: none).
func Version(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, component string) (int, error) {
	var v int
	err := q.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM tandem_migrations WHERE component = $1", component).Scan(&v)
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) && pgErr.SQLState() == "42P01" { // undefined_table: nothing migrated yet
		return 0, nil
	}
	return v, err
}
