package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every answer clients got reaches the report: the served counts by side,
// tandem's own answers, and the error answers by who served them, summed
// over the window like the other counters.
func TestReportServedCounts(t *testing.T) {
	s := openTest(t, Options{Now: newClock(t0).Now})
	s.AddCounters("images", sec(1), Counters{Requests: 20, ServedLegacy: 15, ServedNew: 3, ServedTandem: 2, Sent: 12,
		ServedErrors: ServedCounts{Legacy: 4, New: 1, Tandem: 2}})
	s.AddCounters("images", sec(61), Counters{Requests: 5, ServedLegacy: 5, Sent: 5, ServedErrors: ServedCounts{Legacy: 5}})
	flush(t, s)
	all := reportOf(t, s, "images", time.Time{})
	if all.Requests != 25 || all.ServedLegacy != 20 || all.ServedNew != 3 || all.ServedTandem != 2 || all.Mirrored != 17 ||
		all.ServedErrors != (ServedCounts{Legacy: 9, New: 1, Tandem: 2}) {
		t.Errorf("whole report %+v", all)
	}
	late := reportOf(t, s, "images", sec(60))
	if late.Requests != 5 || late.ServedLegacy != 5 || late.ServedTandem != 0 || late.ServedErrors != (ServedCounts{Legacy: 5}) {
		t.Errorf("report since the second minute %+v", late)
	}
	if all.ServedErrors.Total() != 12 {
		t.Errorf("Total = %d, want 12", all.ServedErrors.Total())
	}
}

// A version 1 file (before the served_tandem and served_errors_* columns)
// opens: its rows keep their numbers and read 0 in the new columns, new
// deltas add to them, and the file is version 2 afterwards.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	v1 := []string{"requests", "served_legacy", "served_new", "fallback", "sent",
		"skip_sampling", "skip_queue_full", "skip_breaker_open", "skip_too_large", "skip_spool_full", "skip_error",
		"matched", "mismatched", "noise", "compare_errors", "legacy_errors", "new_errors"}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range v1 {
		cols = append(cols, c+" INTEGER NOT NULL DEFAULT 0")
	}
	for _, q := range []string{
		"CREATE TABLE minutes (route TEXT NOT NULL, minute INTEGER NOT NULL, " + strings.Join(cols, ", ") +
			", hist_legacy BLOB, hist_new BLOB, PRIMARY KEY (route, minute)) WITHOUT ROWID",
		"INSERT INTO minutes (route, minute, requests, served_legacy, sent) VALUES ('images', " +
			strconv.FormatInt(minuteOf(t0), 10) + ", 7, 7, 3)",
		"PRAGMA user_version = 1",
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s := openAt(t, path, Options{Now: newClock(t0).Now})
	got := reportOf(t, s, "images", time.Time{})
	if got.Requests != 7 || got.ServedLegacy != 7 || got.Mirrored != 3 || got.ServedTandem != 0 || got.ServedErrors != (ServedCounts{}) {
		t.Errorf("migrated report %+v", got)
	}
	s.AddCounters("images", t0, Counters{Requests: 2, ServedTandem: 1, ServedLegacy: 1, ServedErrors: ServedCounts{Tandem: 1}})
	flush(t, s)
	got = reportOf(t, s, "images", time.Time{})
	if got.Requests != 9 || got.ServedTandem != 1 || got.ServedErrors.Tandem != 1 {
		t.Errorf("after a delta %+v", got)
	}
	s.Close()
	db, err = sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion {
		t.Errorf("user_version %d (%v), want %d", v, err, schemaVersion)
	}
}
