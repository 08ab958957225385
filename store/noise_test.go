package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
)

// nonceExchange is one request of the nonce scenario at i: legacy,
// secondary and new each add their own nonce; new also changes $.field
// when real is set. The learner sees it as the proxy's compare worker does
// (observe, then apply the flags of the moment), and it is recorded so.
func nonceExchange(l *compare.Learner, route string, i int, real bool) *exchange.Exchange {
	ex := exch(route, t0.Add(time.Duration(i)*time.Second), compare.OutcomeMismatch, diff(compare.KindJSON, "$.nonce", false))
	ex.RequestID = fmt.Sprintf("req-%03d", i)
	if real {
		ex.Result.Diffs = append(ex.Result.Diffs, diff(compare.KindJSON, "$.field", false))
	}
	sec := compare.Result{Outcome: compare.OutcomeMismatch, Diffs: []compare.Difference{diff(compare.KindJSON, "$.nonce", false)}}
	l.ObserveSecondary(route, sec)
	l.Apply(route, &sec)
	l.ObservePrimary(route, ex.Result)
	l.Apply(route, &ex.Result)
	ex.Secondary, ex.SecondaryResult = resp(200, `{"w":3}`), &sec
	return ex
}

// Comparisons recorded before a path was learned as noise read as noise
// once it is: the report counts only the real mismatches, the path table
// flags the nonce, and the lookup of the first request says noise although
// it was recorded as a mismatch.
func TestLearnedNoiseAppliesToEarlierComparisons(t *testing.T) {
	l := compare.NewLearner()
	l.Configure("r", compare.Settings{NoiseMinSamples: 20})
	s := openTest(t, Options{Now: newClock(t0).Now, Noise: l})
	recorded := map[compare.Outcome]int{}
	for i := range 100 {
		ex := nonceExchange(l, "r", i, i%10 == 3)
		recorded[ex.Result.Outcome]++
		record(t, s, ex)
	}
	flush(t, s)
	// The first 19 comparisons came before the nonce was learned.
	if recorded[compare.OutcomeMismatch] < 10+19-2 || !l.Noise("r", compare.KindJSON, "$.nonce") {
		t.Fatalf("recorded outcomes %v, nonce noise %v: the scenario must learn the nonce part-way", recorded, l.Noise("r", compare.KindJSON, "$.nonce"))
	}

	r := reportOf(t, s, "r", time.Time{})
	if r.Compared != 100 || r.Mismatched != 10 || r.Noise != 90 || r.Matched != 0 || r.DiffRate != 0.1 {
		t.Errorf("compared %d, mismatched %d, noise %d, matched %d, diff rate %v; want 100, 10, 90, 0, 0.1",
			r.Compared, r.Mismatched, r.Noise, r.Matched, r.DiffRate)
	}
	flags := map[string]bool{}
	for _, p := range r.Diffs {
		flags[p.Path] = p.Noise
	}
	if !flags["$.nonce"] || flags["$.field"] {
		t.Errorf("path table %+v: want $.nonce noise, $.field not", r.Diffs)
	}

	for _, c := range []struct {
		id      string
		primary compare.Outcome
	}{{"req-000", compare.OutcomeNoise}, {"req-003", compare.OutcomeMismatch}, {"req-050", compare.OutcomeNoise}} {
		got, err := s.Comparisons(c.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Against != AgainstNew || got[0].Outcome != c.primary ||
			got[1].Against != AgainstSecondary || got[1].Outcome != compare.OutcomeNoise {
			t.Errorf("Comparisons(%s) = %+v; want new: %s, then secondary: noise", c.id, got, c.primary)
		}
	}
}

// A version 2 file with data opens as version 3: its minutes keep the
// outcomes they recorded, new comparisons in the same minute add to them,
// classified now.
func TestMigrateFromVersion2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	m := strconv.FormatInt(minuteOf(t0), 10)
	for _, q := range []string{
		schema(),
		"DROP TABLE signatures", "DROP TABLE minute_sigs", "DROP TABLE comparisons",
		"INSERT INTO minutes (route, minute, requests, served_legacy, sent, matched, mismatched, noise, compare_errors) VALUES ('r', " + m + ", 9, 9, 7, 3, 2, 1, 1)",
		"INSERT INTO minute_diffs (route, minute, kind, path, count, last_at, last_noise) VALUES ('r', " + m + ", 'json', '$.nonce', 3, 0, 1)",
		"PRAGMA user_version = 2",
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	db.Close()

	s := openAt(t, path, Options{Now: newClock(t0).Now})
	got := reportOf(t, s, "r", time.Time{})
	if got.Compared != 7 || got.Matched != 3 || got.Mismatched != 2 || got.Noise != 1 || got.CompareErrors != 1 || got.Requests != 9 {
		t.Errorf("migrated report %+v; want the recorded 3 matched, 2 mismatched, 1 noise, 1 error of 9 requests", got)
	}
	if len(got.Diffs) != 1 || got.Diffs[0].Noise {
		t.Errorf("migrated path table %+v: want $.nonce, flagged by the model (none here), not by its stored flag", got.Diffs)
	}
	record(t, s, exch("r", t0.Add(time.Second), compare.OutcomeNoise, diff(compare.KindJSON, "$.nonce", true)))
	record(t, s, exch("r", t0.Add(2*time.Second), compare.OutcomeMatch))
	flush(t, s)
	got = reportOf(t, s, "r", time.Time{})
	if got.Compared != 9 || got.Matched != 4 || got.Mismatched != 3 || got.Noise != 1 {
		t.Errorf("after new comparisons %+v; want 9 compared: 4 matched, 3 mismatched (no model), 1 noise", got)
	}
	// The series of the migrated minute adds up as the report does.
	ser, err := s.Series("r", time.Time{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(ser) != 1 || len(ser[0].Points) != 1 {
		t.Fatalf("Series of the migrated file: %+v, want one point", ser)
	}
	if p := ser[0].Points[0]; p.Compared != 9 || p.Matched != 4 || p.Mismatched != 3 || p.Noise != 1 || p.CompareErrors != 1 || p.Requests != 9 ||
		!p.At.Equal(t0.Truncate(time.Minute)) {
		t.Errorf("migrated minute's point %+v; want the report's counts at %v", p, t0.Truncate(time.Minute))
	}
	s.Close()
	db, err = sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != 3 {
		t.Errorf("user_version %d (%v), want 3", v, err)
	}
}

// A route keeps maxFullSignatures full signatures, then shapes up to
// maxSignatures, then records an overflow that reads as a mismatch.
func TestSignatureBound(t *testing.T) {
	// $.items[*].x is learned noise (legacy differs from itself there as
	// often as from new), $.g marked.
	l := compare.NewLearner()
	l.Configure("r", compare.Settings{NoiseMinSamples: 1})
	items := compare.Result{Outcome: compare.OutcomeMismatch, Diffs: []compare.Difference{diff(compare.KindJSON, "$.items[0].x", false)}}
	l.ObserveSecondary("r", items)
	l.ObservePrimary("r", items)
	if err := l.Mark("r", "$.g", "test"); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, Options{Now: newClock(t0).Now, Noise: l, noJanitor: true})
	n := 0
	rec := func(path string) string {
		ex := exch("r", t0.Add(time.Duration(n)*time.Millisecond), compare.OutcomeMismatch, diff(compare.KindJSON, path, false))
		ex.RequestID = fmt.Sprintf("q%d", n)
		n++
		for !s.Record(ex) { // past the queue's size: wait for the writer
			flush(t, s)
		}
		return ex.RequestID
	}
	for i := range maxFullSignatures + 28 {
		rec(fmt.Sprintf("$.items[%d].x", i))
	}
	shaped := fmt.Sprintf("q%d", maxFullSignatures+5)
	const more = 1100 // 1023 fit as shapes (4096 - 3072 full - 1 $.items[*].x)
	var last string
	for i := range more {
		last = rec(fmt.Sprintf("$.g.k%d", i))
	}
	flush(t, s)
	overflow := int64(more - (maxSignatures - maxFullSignatures - 1))
	r := reportOf(t, s, "r", time.Time{})
	if r.Compared != int64(n) || r.Mismatched != overflow || r.Noise != int64(n)-overflow {
		t.Errorf("compared %d, mismatched %d, noise %d; want %d, %d (the overflow), %d", r.Compared, r.Mismatched, r.Noise, n, overflow, int64(n)-overflow)
	}
	if c, err := s.Comparisons(shaped); err != nil || len(c) != 1 || c[0].Outcome != compare.OutcomeNoise ||
		len(c[0].Diffs) != 1 || c[0].Diffs[0].Path != "$.items[*].x" {
		t.Errorf("Comparisons(%s) = %+v, %v; want noise at the shape $.items[*].x", shaped, c, err)
	}
	if c, err := s.Comparisons(last); err != nil || len(c) != 1 || c[0].Outcome != compare.OutcomeMismatch || len(c[0].Diffs) != 0 {
		t.Errorf("Comparisons(%s) = %+v, %v; want an overflowed mismatch without pairs", last, c, err)
	}
	// The table holds the bound, no more.
	var stored int
	if err := s.rdb.QueryRow("SELECT COUNT(*) FROM signatures WHERE route = 'r'").Scan(&stored); err != nil || stored != maxSignatures {
		t.Errorf("%d signatures stored (%v), want %d", stored, err, maxSignatures)
	}
}

// Comparison rows expire after ComparisonRetention, and past MaxBytes the
// janitor deletes the oldest rows (and samples) first.
func TestJanitorComparisons(t *testing.T) {
	clk := newClock(t0)
	s := openTest(t, Options{Now: clk.Now, ComparisonRetention: time.Hour, MaxBytes: 20_000, noJanitor: true})
	for i := range 400 {
		ex := exch("r", t0.Add(time.Duration(i)*time.Second), compare.OutcomeMatch)
		ex.RequestID = fmt.Sprintf("m%03d", i)
		record(t, s, ex)
	}
	flush(t, s)
	rows := func() (n, oldest int64) {
		t.Helper()
		if err := s.rdb.QueryRow("SELECT COUNT(*), COALESCE(MIN(at), 0) FROM comparisons").Scan(&n, &oldest); err != nil {
			t.Fatal(err)
		}
		return n, oldest
	}
	if n, _ := rows(); n != 400 {
		t.Fatalf("%d rows, want 400", n)
	}
	if err := s.Janitor(t0.Add(400 * time.Second)); err != nil {
		t.Fatal(err)
	}
	per := comparisonBytes("m000", "r", "", string(compare.OutcomeMatch), "")
	n, oldest := rows()
	if want := int64(20_000) / per; n != want || oldest != t0.Add(time.Duration(400-want)*time.Second).UnixNano() {
		t.Errorf("after the size bound: %d rows from %v, want the newest %d", n, time.Unix(0, oldest).UTC(), want)
	}
	if got := s.compBytes.Load(); got != n*per {
		t.Errorf("compBytes %d, want %d", got, n*per)
	}
	if c, _ := s.Comparisons("m399"); len(c) != 1 {
		t.Errorf("the newest comparison: %+v, want it kept", c)
	}
	if c, _ := s.Comparisons("m000"); len(c) != 0 {
		t.Errorf("the oldest comparison: %+v, want it deleted", c)
	}

	clk.Set(t0.Add(time.Hour + 300*time.Second))
	if c, _ := s.Comparisons("m250"); len(c) != 0 {
		t.Errorf("past retention, before the janitor: %+v, want it not listed", c)
	}
	if err := s.Janitor(clk.Now()); err != nil {
		t.Fatal(err)
	}
	if n, oldest := rows(); n != 100 || oldest != t0.Add(300*time.Second).UnixNano() {
		t.Errorf("after retention: %d rows from %v, want 100 from %v", n, time.Unix(0, oldest).UTC(), t0.Add(300*time.Second))
	}
	// Aggregates are kept.
	if r := reportOf(t, s, "r", time.Time{}); r.Compared != 400 || r.Matched != 400 {
		t.Errorf("report after the janitor: compared %d matched %d, want 400", r.Compared, r.Matched)
	}
}

// The size estimate of a comparison row is close to what the rows take in
// the file.
func TestComparisonBytes(t *testing.T) {
	s := openTest(t, Options{Now: newClock(t0).Now, Instance: "127.0.0.1:8080", noJanitor: true})
	used := func() int64 {
		var pages, free, size int64
		for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
			if err := s.wdb.QueryRow(q).Scan(v); err != nil {
				t.Fatal(err)
			}
		}
		return (pages - free) * size
	}
	record(t, s, exch("images", t0, compare.OutcomeMatch))
	flush(t, s)
	before := used()
	const n = 20_000
	for i := range n {
		ex := exch("images", t0.Add(time.Duration(i)*time.Millisecond), compare.OutcomeMatch)
		// Request ids arrive in random order, as UUIDs do: the index
		// pages fill as they do in production.
		ex.RequestID = fmt.Sprintf("%x", sha256.Sum256([]byte(strconv.Itoa(i))))[:16]
		for !s.Record(ex) {
			flush(t, s)
		}
	}
	flush(t, s)
	per := float64(used()-before) / n
	est := float64(comparisonBytes("0123456789abcdef", "images", "127.0.0.1:8080", "match", ""))
	t.Logf("a comparison row takes %.1f bytes in the file; estimated %.0f", per, est)
	if est < per*0.8 || est > per*1.5 {
		t.Errorf("estimate %.0f bytes per row, measured %.1f: off by more than -20%%/+50%%", est, per)
	}
}
