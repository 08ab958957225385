package store

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
)

func sec(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// N exchanges with known outcomes plus counter deltas give exact report
// numbers, diff rate, grouping and example ids that resolve.
func TestReportCountsReconcile(t *testing.T) {
	// The model as it stands when the report is read: $.processed_at is
	// noise. The comparison that also differs at $.width is a mismatch,
	// whatever its recorded flags say.
	model := compare.NewLearner()
	if err := model.Mark("images", "$.processed_at", "a timestamp"); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, Options{Now: newClock(t0).Now, Noise: model})

	for i := range 10 {
		record(t, s, exch("images", sec(i), compare.OutcomeMatch))
	}
	for i := range 4 {
		ex := exch("images", sec(20+i), compare.OutcomeMismatch,
			diff(compare.KindStatus, "$.status", false), diff(compare.KindJSON, "$.width", false))
		if i == 0 {
			ex.Legacy.Status = 503 // a legacy error among compared exchanges
		}
		record(t, s, ex)
	}
	// Recorded as noise (the flags of the time), read as a mismatch.
	record(t, s, exch("images", sec(15), compare.OutcomeNoise,
		diff(compare.KindJSON, "$.width", true), diff(compare.KindJSON, "$.processed_at", true)))
	for i := range 2 {
		record(t, s, exch("images", sec(31+i), compare.OutcomeNoise, diff(compare.KindJSON, "$.processed_at", true)))
	}
	for i := range 2 {
		ex := exch("images", sec(40+i), compare.OutcomeError, compare.Difference{Kind: compare.KindStatus, Path: "$.error", Legacy: "200", New: "connection refused"})
		ex.New = &compare.Response{Err: "connection refused"}
		ex.NewLatency = time.Second
		record(t, s, ex)
	}
	record(t, s, exch("thumbs", sec(1), compare.OutcomeMatch))

	if !s.AddCounters("images", sec(5), Counters{Requests: 30, ServedLegacy: 28, ServedNew: 1, Fallback: 1, Sent: 19,
		Skipped: map[exchange.Outcome]int64{exchange.Sampling: 5, exchange.QueueFull: 2, "bogus": 99}}) {
		t.Fatal("AddCounters refused")
	}
	if !s.AddCounters("images", sec(65), Counters{Requests: 10, ServedLegacy: 10, Skipped: map[exchange.Outcome]int64{exchange.TooLarge: 1}}) {
		t.Fatal("AddCounters refused")
	}
	s.AddCounters("thumbs", sec(2), Counters{Requests: 3, ServedLegacy: 3, Sent: 1})
	flush(t, s)

	reps, err := s.Report("", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 || reps[0].Route != "images" || reps[1].Route != "thumbs" {
		t.Fatalf("routes: %+v", reps)
	}
	got := reps[0]
	// Example ids are checked below; latency within the histogram's precision.
	examples := map[string]string{}
	for i := range got.Diffs {
		examples[got.Diffs[i].Path] = got.Diffs[i].ExampleID
		got.Diffs[i].ExampleID = ""
	}
	lat := got.Latency
	got.Latency = LatencyMS{}
	want := RouteReport{
		Route: "images", Since: t0,
		Requests: 40, ServedLegacy: 38, ServedNew: 1, Fallback: 1, Mirrored: 19,
		Compared: 19, Matched: 10, Mismatched: 5, Noise: 2, CompareErrors: 2,
		LegacyErrors: 1, NewErrors: 2,
		Skipped:  map[exchange.Outcome]int64{exchange.Sampling: 5, exchange.QueueFull: 2, exchange.BreakerOpen: 0, exchange.TooLarge: 1, exchange.SpoolFull: 0, exchange.Error: 0},
		DiffRate: 5.0 / 19,
		Diffs: []PathStat{
			{Kind: compare.KindJSON, Path: "$.width", Count: 5, Rate: 5.0 / 19, Noise: false},
			{Kind: compare.KindStatus, Path: "$.status", Count: 4, Rate: 4.0 / 19},
			{Kind: compare.KindJSON, Path: "$.processed_at", Count: 3, Rate: 3.0 / 19, Noise: true},
			{Kind: compare.KindStatus, Path: "$.error", Count: 2, Rate: 2.0 / 19},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("report (-want +got):\n%s", d)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > want*0.01 {
			t.Errorf("%s = %v ms, want %v ± 1%%", name, got, want)
		}
	}
	near("legacy p50", lat.LegacyP50, 10)
	near("legacy p99", lat.LegacyP99, 10)
	near("new p50", lat.NewP50, 20)
	near("new p99", lat.NewP99, 1000)

	for path, id := range examples {
		if id == "" {
			t.Errorf("%s: no example id", path)
			continue
		}
		smp, err := s.Sample(id)
		if err != nil {
			t.Fatalf("Sample(%s) for %s: %v", id, path, err)
		}
		found := false
		for _, d := range smp.Diffs {
			found = found || d.Path == path
		}
		if !found || smp.Route != "images" {
			t.Errorf("example %s for %s is %+v", id, path, smp)
		}
	}
	// The example is the newest sample with the path.
	if smp, _ := s.Sample(examples["$.width"]); smp == nil || !smp.At.Equal(sec(23)) {
		t.Errorf("$.width example at %v, want %v", smp.At, sec(23))
	}
	if n := sampleCount(t, s, SampleFilter{}); n != 9 {
		t.Errorf("%d samples, want 9 (4 mismatch + 3 noise + 2 error, no match)", n)
	}

	th := reps[1]
	if th.Requests != 3 || th.Compared != 1 || th.Matched != 1 || th.Mirrored != 1 || th.DiffRate != 0 || len(th.Diffs) != 0 {
		t.Errorf("thumbs: %+v", th)
	}

	b, err := json.Marshal(reps[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"served_legacy":38`, `"diff_rate":`, `"example_id":"`, `"compare_errors":2`, `"skipped":{`, `"legacy_p99_ms":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
}

// A named route without data gets one zero report with every skip reason.
func TestReportUnknownRoute(t *testing.T) {
	s := openTest(t, Options{})
	got := reportOf(t, s, "nope", time.Time{})
	want := newRouteReport("nope", time.Time{})
	if d := cmp.Diff(*want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if len(got.Skipped) != len(SkipReasons) {
		t.Errorf("skipped has %d reasons, want %d", len(got.Skipped), len(SkipReasons))
	}
	if reps, err := s.Report("", time.Time{}); err != nil || len(reps) != 0 {
		t.Errorf("all routes of an empty store: %v, %v", reps, err)
	}
}

// Report(since) sums whole minutes from the minute containing since; an
// exchange or delta without a time takes the injected clock's.
func TestReportSince(t *testing.T) {
	clk := newClock(t0)
	s := openTest(t, Options{Now: clk.Now})
	min := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

	s.AddCounters("r", time.Time{}, Counters{Requests: 1}) // minute 0 by the clock
	ex := exch("r", time.Time{}, compare.OutcomeMismatch, diff(compare.KindJSON, "$.a", false))
	record(t, s, ex)
	flush(t, s)
	clk.Set(min(5).Add(10 * time.Second))
	s.AddCounters("r", time.Time{}, Counters{Requests: 10})
	record(t, s, exch("r", time.Time{}, compare.OutcomeMatch))
	flush(t, s)
	s.AddCounters("r", min(10).Add(59*time.Second), Counters{Requests: 100})
	record(t, s, exch("r", min(10), compare.OutcomeMismatch, diff(compare.KindJSON, "$.b", false)))
	flush(t, s)

	for _, c := range []struct {
		why       string
		since     time.Time
		wantSince time.Time
		requests  int64
		compared  int64
		paths     int
	}{
		{"zero since: everything, window starts at the first minute", time.Time{}, min(0), 111, 3, 2},
		{"since inside minute 5: includes all of minute 5", min(5).Add(30 * time.Second), min(5), 110, 2, 1},
		{"since on a minute boundary", min(10), min(10), 100, 1, 1},
		{"since after the last minute: zeros", min(11), min(11), 0, 0, 0},
		{"since before the data", min(-60), min(-60), 111, 3, 2},
	} {
		got := reportOf(t, s, "r", c.since)
		if got.Requests != c.requests || got.Compared != c.compared || len(got.Diffs) != c.paths || !got.Since.Equal(c.wantSince) {
			t.Errorf("%s: requests %d compared %d paths %d since %v; want %d %d %d %v",
				c.why, got.Requests, got.Compared, len(got.Diffs), got.Since, c.requests, c.compared, c.paths, c.wantSince)
		}
	}
	l, err := s.Samples(SampleFilter{Path: "$.a"})
	if err != nil || len(l) != 1 || !l[0].At.Equal(t0) {
		t.Errorf("sample of a zero-time exchange: %+v, %v; want one at %v", l, err, t0)
	}
}

// Latency histograms of one minute written by several batches, and of
// several minutes, merge.
func TestLatencyMergesAcrossBatches(t *testing.T) {
	s := openTest(t, Options{})
	for batch := range 4 {
		for i := range 25 {
			ex := exch("r", sec(batch*20+i%20), compare.OutcomeMatch)         // minutes 0 and 1
			ex.LegacyLatency = time.Duration(batch*25+i+1) * time.Millisecond // 1..100 ms overall
			ex.NewLatency = 0                                                 // not observed
			record(t, s, ex)
		}
		flush(t, s)
	}
	got := reportOf(t, s, "r", time.Time{})
	if got.Compared != 100 {
		t.Fatalf("compared %d", got.Compared)
	}
	if math.Abs(got.Latency.LegacyP50-50) > 0.5 || math.Abs(got.Latency.LegacyP99-99) > 1 {
		t.Errorf("legacy p50 %v p99 %v, want 50, 99", got.Latency.LegacyP50, got.Latency.LegacyP99)
	}
	if got.Latency.NewP50 != 0 || got.Latency.NewP99 != 0 {
		t.Errorf("new latency %+v without observations", got.Latency)
	}
	if got := reportOf(t, s, "r", sec(60)); math.Abs(got.Latency.LegacyP50-88) > 1 {
		t.Errorf("minute 1 only: legacy p50 %v, want ≈ 88 (76..100 ms)", got.Latency.LegacyP50)
	}
}

// The writer keeps the histograms of the minutes it last wrote and merges
// later batches into them; what it writes always equals what is stored plus
// the batch: after a batch for another minute, after a reopen, and after a
// batch that failed (its latencies must not reach the stored histogram).
func TestLatencyHistogramsFollowStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := openAt(t, path, Options{})
	stored := func(s *Store, minute int) int64 {
		t.Helper()
		var b []byte
		err := s.rdb.QueryRow("SELECT hist_legacy FROM minutes WHERE route = 'r' AND minute = ?", minuteOf(sec(60*minute))).Scan(&b)
		if err != nil {
			t.Fatal(err)
		}
		h, err := decodeHist(b)
		if err != nil || h == nil {
			t.Fatalf("stored histogram %x: %v", b, err)
		}
		return h.TotalCount()
	}
	batch := func(s *Store, minute, n int, diffs ...compare.Difference) error {
		for i := range n {
			ex := exch("r", sec(60*minute+i), compare.OutcomeMatch)
			if len(diffs) > 0 {
				ex = exch("r", sec(60*minute+i), compare.OutcomeMismatch, diffs...)
			}
			record(t, s, ex)
		}
		return s.Flush()
	}
	steps := []struct {
		what         string
		minute, n    int
		want0, want1 int64
	}{
		{"first batch", 0, 10, 10, 0},
		{"same minute again", 0, 5, 15, 0},
		{"another minute", 1, 7, 15, 7},
		{"the first minute after the other", 0, 3, 18, 7},
	}
	for _, st := range steps {
		if err := batch(s, st.minute, st.n); err != nil {
			t.Fatal(err)
		}
		if got := stored(s, 0); got != st.want0 {
			t.Fatalf("%s: minute 0 holds %d latencies, want %d", st.what, got, st.want0)
		}
		if st.want1 > 0 {
			if got := stored(s, 1); got != st.want1 {
				t.Fatalf("%s: minute 1 holds %d latencies, want %d", st.what, got, st.want1)
			}
		}
	}

	// A batch that fails after writing its minute rows is rolled back.
	exec := func(q string) {
		t.Helper()
		s.wmu.Lock()
		defer s.wmu.Unlock()
		if _, err := s.wdb.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec("ALTER TABLE minute_diffs RENAME TO minute_diffs_away")
	if err := batch(s, 0, 4, diff(compare.KindJSON, "$.w", false)); err == nil {
		t.Fatal("a batch without its minute_diffs table was committed")
	}
	exec("ALTER TABLE minute_diffs_away RENAME TO minute_diffs")
	if got := stored(s, 0); got != 18 {
		t.Fatalf("minute 0 holds %d latencies after a failed batch, want 18", got)
	}
	if err := batch(s, 0, 2); err != nil {
		t.Fatal(err)
	}
	if got := stored(s, 0); got != 20 {
		t.Fatalf("minute 0 holds %d latencies after the failed batch and 2 more, want 20 (the failed 4 must not count)", got)
	}

	// A reopened store starts from what is on disk.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path, Options{})
	if err := batch(s, 0, 1); err != nil {
		t.Fatal(err)
	}
	if got := stored(s, 0); got != 21 {
		t.Fatalf("minute 0 holds %d latencies after a reopen and 1 more, want 21", got)
	}
}
