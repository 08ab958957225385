package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/pgtest"
	"github.com/tandem-proxy/tandem/pgstore"
	"github.com/tandem-proxy/tandem/store"
)

func mismatchAt(at time.Time, path string) *exchange.Exchange {
	ex := mk(at)
	ex.Result = compare.Result{Outcome: compare.OutcomeMismatch, Diffs: []compare.Difference{{Kind: compare.KindBody, Path: path, Legacy: "1", New: "2"}}}
	return ex
}

// Retention, the size bound, and one janitor at a time: while another
// session holds the janitor's advisory lock, Janitor does nothing.
func TestJanitor(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase()
	ctx := context.Background()
	s, err := pgstore.Open(ctx, url, pgstore.Options{Instance: "a", NoJanitor: true, MaxBytes: 4000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	old := mismatchAt(now.Add(-8*24*time.Hour), "$.old")
	s.Record(old)
	var recent []string
	for i := 0; i < 10; i++ {
		ex := mismatchAt(now.Add(-time.Duration(10-i)*time.Minute), fmt.Sprintf("$.p%d", i))
		s.Record(ex)
		recent = append(recent, ex.RequestID)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	list, err := s.Samples(store.SampleFilter{})
	if err != nil || len(list) != 11 {
		t.Fatalf("Samples: %d, %v; want 11", len(list), err)
	}
	oldID := list[len(list)-1].ID

	// Another janitor holds the lock.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgstore.JanitorLockKey()); err != nil {
		t.Fatal(err)
	}
	if ran, err := s.Janitor(now); err != nil || ran {
		t.Fatalf("Janitor with the lock held elsewhere: ran %v, %v; want it to step aside", ran, err)
	}
	if _, err := s.Sample(oldID); err != nil {
		t.Fatalf("a janitor that stepped aside deleted: %v", err)
	}
	tx.Rollback(ctx)

	if ran, err := s.Janitor(now); err != nil || !ran {
		t.Fatalf("Janitor: ran %v, %v", ran, err)
	}
	if _, err := s.Sample(oldID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a sample past retention: %v, want ErrNotFound", err)
	}
	var samples, comps int64
	if err := conn.QueryRow(ctx, `SELECT COALESCE((SELECT SUM(bytes) FROM store_samples), 0)::BIGINT,
		COALESCE((SELECT SUM(bytes) FROM store_comparisons), 0)::BIGINT`).Scan(&samples, &comps); err != nil {
		t.Fatal(err)
	}
	if samples+comps > 4000 || samples == 0 {
		t.Errorf("after the janitor: %d sample bytes + %d comparison bytes; want some, at most MaxBytes 4000", samples, comps)
	}
	left, err := s.Samples(store.SampleFilter{})
	if err != nil || len(left) == 0 || len(left) >= 10 {
		t.Fatalf("samples left: %d, %v; want some of the 10, not all", len(left), err)
	}
	if left[0].RequestID != recent[9] {
		t.Errorf("the newest sample is gone: newest left is %s, want %s", left[0].RequestID, recent[9])
	}
	// The aggregates are kept.
	if r := reportOf(t, s); r.Compared != 11 {
		t.Errorf("compared %d after the janitor, want 11", r.Compared)
	}
}
