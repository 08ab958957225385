package pgmigrate

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tandem-proxy/tandem/internal/pgtest"
)

func TestApplyOnceConcurrentlyAndRefuseNewer(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase()
	ctx := context.Background()
	migs := []Migration{
		{1, "CREATE TABLE t (id INTEGER PRIMARY KEY)"},
		{2, "ALTER TABLE t ADD COLUMN n INTEGER NOT NULL DEFAULT 0; INSERT INTO t (id) VALUES (1)"},
	}
	// Five instances starting together: each migration runs once (a second
	// run of 2 would fail on the duplicate key, of 1 on the existing table).
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			v, err := Apply(ctx, pool, "test", migs)
			if err == nil && v != 2 {
				err = fmt.Errorf("at version %d, want 2", v)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var rows int
	pool.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&rows)
	if rows != 1 {
		t.Fatalf("%d rows, want 1: migration 2 ran more than once", rows)
	}
	if v, err := Version(ctx, pool, "test"); err != nil || v != 2 {
		t.Fatalf("Version = %d, %v", v, err)
	}
	if v, err := Version(ctx, pool, "other"); err != nil || v != 0 {
		t.Fatalf("Version of an unknown component = %d, %v", v, err)
	}
	// An older binary (one migration) meets the newer schema.
	if _, err := Apply(ctx, pool, "test", migs[:1]); err == nil || !strings.Contains(err.Error(), "upgrade tandem") {
		t.Fatalf("older binary: %v, want an error saying to upgrade", err)
	}
	// A failing migration leaves the version where it was.
	bad := append(migs, Migration{3, "ALTER TABLE t ADD COLUMN m INTEGER; SELECT no_such_function()"})
	if _, err := Apply(ctx, pool, "test", bad); err == nil {
		t.Fatal("a failing migration applied")
	}
	if v, _ := Version(ctx, pool, "test"); v != 2 {
		t.Fatalf("after a failed migration the version is %d, want 2", v)
	}
}
