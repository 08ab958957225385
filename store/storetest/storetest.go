// Package storetest checks that a diff store keeps the guarantees package
// store's doc lists under "A second implementation": the same behaviour
// checks, run against the SQLite store.Store in its own tests and against
// any other implementation (the fleet's PostgreSQL store) in its.
//
// The checks are black-box: they use only the methods of Store and the
// store package's types and defaults (DefaultSampleLimit, MaxSampleLimit,
// SkipReasons, ErrNotFound, ErrClosed, Redacted). They use real times
// within the last hour, so an implementation needs no injectable clock,
// and they assume its Retention is at least that hour; the comparisons
// retention check also records one comparison eight days ago and assumes
// ComparisonRetention is less than that (the default is 24 h). Each check
// gives the Opener a Setup: the noise model (a *compare.Learner the check
// marks paths on between recording and reading) and the instance name the
// implementation must read with and record. It imports only the store's
// model, never its SQLite code.
package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/store"
)

// Store is the contract under test: what the application uses of a diff
// store (app.DiffStore has the same methods).
type Store interface {
	Record(ex *exchange.Exchange) bool
	AddCounters(route string, at time.Time, delta store.Counters) bool
	Report(route string, since time.Time) ([]store.RouteReport, error)
	Samples(f store.SampleFilter) ([]store.SampleSummary, error)
	Sample(id string) (*store.Sample, error)
	Comparisons(requestID string) ([]store.Comparison, error)
	Series(route string, since time.Time, step time.Duration) ([]store.RouteSeries, error)
	Stats() store.StoreStats
	Flush() error
	Close() error
}

// Opener opens a Store on one backing (a file, a database). Called again
// after the Store it returned was closed, it opens the same data: that is
// how the durability checks reopen.
type Opener func() (Store, error)

// Setup is what an Opener must open its Store with.
type Setup struct {
	// Noise is the model Report and Comparisons classify with
	// (store.Options.Noise).
	Noise compare.NoiseModel
	// Instance is the name recorded on comparisons (store.Options.Instance).
	Instance string
}

// Run runs every check as a subtest. fresh makes a new, empty backing for
// each subtest and returns its Opener, which opens stores with su; it
// registers the backing's removal with t.Cleanup. Stores the checks open are
// closed by them.
func Run(t *testing.T, fresh func(t *testing.T, su Setup) Opener) {
	checks := []struct {
		name string
		run  func(t *testing.T, open Opener)
	}{
		{"Outcomes", testOutcomes},
		{"Counters", testCounters},
		{"Routes", testRoutes},
		{"Minutes", testMinutes},
		{"ZeroTimeIsNow", testZeroTime},
		{"Samples", testSamples},
		{"SampleLimit", testSampleLimit},
		{"Redaction", testRedaction},
		{"FlushIsDurable", testFlushDurable},
		{"CloseCommitsQueue", testCloseCommits},
		{"AfterClose", testAfterClose},
		{"RefusalsAreCounted", testRefusals},
		{"NoiseAtReadTime", testReadTimeNoise},
		{"Comparisons", testComparisons},
		{"ComparisonsRetention", testComparisonsRetention},
		{"Series", testSeries},
		{"SamplesAtReadTime", testSamplesReadTime},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			model := compare.NewLearner()
			models.Store(t.Name(), model)
			c.run(t, fresh(t, Setup{Noise: model, Instance: instance}))
		})
	}
}

// instance is the Setup's instance name.
const instance = "storetest-1"

// models holds each subtest's noise model by test name, for the checks that
// mark paths on it.
var models sync.Map

func modelOf(t *testing.T) *compare.Learner {
	m, ok := models.Load(t.Name())
	if !ok {
		t.Fatal("BUG: no model for " + t.Name())
	}
	return m.(*compare.Learner)
}

// base is the checks' epoch: a minute boundary 30 minutes ago, so every
// time they use is in the past hour and whole minutes from base.
func base() time.Time { return time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute) }

func openT(t *testing.T, open Opener) Store {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatalf("cannot open the store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func flush(t *testing.T, s Store) {
	t.Helper()
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func resp(status int, body string, hdr ...compare.HeaderField) *compare.Response {
	return &compare.Response{Status: status, Header: hdr, Body: []byte(body), Size: int64(len(body)), SHA256: sha256.Sum256([]byte(body))}
}

var seq atomic.Int64

// exch is an exchange of route at at with the given verdict; each has its
// own request id.
func exch(route, path string, at time.Time, outcome compare.Outcome, diffs ...compare.Difference) *exchange.Exchange {
	n := seq.Add(1)
	return &exchange.Exchange{
		Route: route, RequestID: fmt.Sprintf("req-%d", n), Method: "POST", Path: path, ServedBy: "legacy",
		At: at, Legacy: resp(200, `{"w":1}`), New: resp(200, `{"w":2}`),
		LegacyLatency: 10 * time.Millisecond, NewLatency: 20 * time.Millisecond,
		Result: compare.Result{Outcome: outcome, Diffs: diffs},
	}
}

func record(t *testing.T, s Store, ex *exchange.Exchange) {
	t.Helper()
	if !s.Record(ex) {
		t.Fatalf("Record refused %s", ex.RequestID)
	}
}

func reportOf(t *testing.T, s Store, route string, since time.Time) store.RouteReport {
	t.Helper()
	reps, err := s.Report(route, since)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if len(reps) != 1 {
		t.Fatalf("Report(%q) gave %d reports, want 1", route, len(reps))
	}
	return reps[0]
}

func samples(t *testing.T, s Store, f store.SampleFilter) []store.SampleSummary {
	t.Helper()
	l, err := s.Samples(f)
	if err != nil {
		t.Fatalf("Samples(%+v): %v", f, err)
	}
	return l
}

func mismatch(path string) compare.Difference {
	return compare.Difference{Kind: compare.KindBody, Path: path, Legacy: "1", New: "2"}
}

// Each outcome is counted once, the rate is mismatches over comparisons,
// and the differing paths come most frequent first.
func testOutcomes(t *testing.T, open Opener) {
	s := openT(t, open)
	at := base()
	record(t, s, exch("r", "/a", at, compare.OutcomeMatch))
	record(t, s, exch("r", "/a", at, compare.OutcomeMatch))
	record(t, s, exch("r", "/a", at, compare.OutcomeMismatch, mismatch("$.w"), mismatch("$.v")))
	record(t, s, exch("r", "/a", at, compare.OutcomeMismatch, mismatch("$.w")))
	record(t, s, exch("r", "/a", at, compare.OutcomeNoise, compare.Difference{Kind: compare.KindHeader, Path: "$.header.Date", Legacy: "a", New: "b", Noise: true}))
	if err := modelOf(t).Mark("r", "$.header.Date", "a clock"); err != nil {
		t.Fatal(err)
	}
	e := exch("r", "/a", at, compare.OutcomeError)
	e.New = &compare.Response{Err: "connect: refused"}
	record(t, s, e)
	flush(t, s)
	r := reportOf(t, s, "r", time.Time{})
	got := [5]int64{r.Compared, r.Matched, r.Mismatched, r.Noise, r.CompareErrors}
	if want := [5]int64{6, 2, 2, 1, 1}; got != want {
		t.Errorf("compared, matched, mismatched, noise, errors = %v, want %v", got, want)
	}
	if want := 2.0 / 6; r.DiffRate < want-1e-9 || r.DiffRate > want+1e-9 {
		t.Errorf("DiffRate = %v, want %v", r.DiffRate, want)
	}
	if len(r.Diffs) < 2 || r.Diffs[0].Path != "$.w" || r.Diffs[0].Count != 2 {
		t.Fatalf("Diffs = %+v, want $.w (2) first", r.Diffs)
	}
	for i := 1; i < len(r.Diffs); i++ {
		if r.Diffs[i].Count > r.Diffs[i-1].Count {
			t.Errorf("Diffs not most frequent first: %+v", r.Diffs)
		}
	}
	if r.Latency.LegacyP50 <= 0 || r.Latency.NewP50 <= r.Latency.LegacyP50 {
		t.Errorf("Latency = %+v, want legacy ≈ 10 ms < new ≈ 20 ms", r.Latency)
	}
}

// Counter deltas add up; every skip reason is present, zeros included.
func testCounters(t *testing.T, open Opener) {
	s := openT(t, open)
	at := base()
	for i := 0; i < 2; i++ {
		d := store.Counters{Requests: 10, ServedLegacy: 9, ServedTandem: 1, Sent: 4,
			ServedErrors: store.ServedCounts{Tandem: 1},
			Skipped:      map[exchange.Outcome]int64{exchange.Sampling: 6}}
		if !s.AddCounters("r", at.Add(time.Duration(i)*time.Minute), d) {
			t.Fatal("AddCounters refused")
		}
	}
	flush(t, s)
	r := reportOf(t, s, "r", time.Time{})
	got := [5]int64{r.Requests, r.ServedLegacy, r.ServedTandem, r.Mirrored, r.ServedErrors.Tandem}
	if want := [5]int64{20, 18, 2, 8, 2}; got != want {
		t.Errorf("requests, served legacy, served tandem, mirrored, tandem errors = %v, want %v", got, want)
	}
	for _, reason := range store.SkipReasons {
		want := int64(0)
		if reason == exchange.Sampling {
			want = 12
		}
		if n, ok := r.Skipped[reason]; !ok || n != want {
			t.Errorf("Skipped[%s] = %d (present %v), want %d", reason, n, ok, want)
		}
	}
}

// Report("") lists every route with data by name; a named route without
// data gets one report of zeros.
func testRoutes(t *testing.T, open Opener) {
	s := openT(t, open)
	at := base()
	for _, r := range []string{"zeta", "alpha", "mid"} {
		record(t, s, exch(r, "/", at, compare.OutcomeMatch))
	}
	flush(t, s)
	reps, err := s.Report("", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range reps {
		names = append(names, r.Route)
	}
	if got := strings.Join(names, ","); got != "alpha,mid,zeta" {
		t.Errorf("Report(\"\") routes = %s, want alpha,mid,zeta", got)
	}
	r := reportOf(t, s, "none", time.Time{})
	if r.Route != "none" || r.Compared != 0 || r.Requests != 0 || len(r.Skipped) != len(store.SkipReasons) {
		t.Errorf("Report(\"none\") = %+v, want zeros with every skip reason", r)
	}
}

// The window starts at the minute containing since: an exchange 30 s into
// a minute is in a window from 45 s into it, not in one from the next.
func testMinutes(t *testing.T, open Opener) {
	s := openT(t, open)
	m := base()
	record(t, s, exch("r", "/", m.Add(30*time.Second), compare.OutcomeMatch))
	record(t, s, exch("r", "/", m.Add(3*time.Minute), compare.OutcomeMatch))
	flush(t, s)
	r := reportOf(t, s, "r", m.Add(45*time.Second))
	if r.Compared != 2 || !r.Since.Equal(m) {
		t.Errorf("from 45 s into the minute: compared %d since %v, want 2 since %v", r.Compared, r.Since, m)
	}
	if r := reportOf(t, s, "r", m.Add(time.Minute)); r.Compared != 1 {
		t.Errorf("from the next minute: compared %d, want 1", r.Compared)
	}
	if r := reportOf(t, s, "r", time.Time{}); r.Compared != 2 || !r.Since.Equal(m) {
		t.Errorf("over everything: compared %d since %v, want 2 since the first minute with data %v", r.Compared, r.Since, m)
	}
}

// An exchange or a delta with a zero time is charged to now.
func testZeroTime(t *testing.T, open Opener) {
	s := openT(t, open)
	before := time.Now().Add(-time.Minute)
	record(t, s, exch("r", "/", time.Time{}, compare.OutcomeMatch))
	if !s.AddCounters("r", time.Time{}, store.Counters{Requests: 1, ServedLegacy: 1}) {
		t.Fatal("AddCounters refused")
	}
	flush(t, s)
	if r := reportOf(t, s, "r", before); r.Compared != 1 || r.Requests != 1 {
		t.Errorf("since a minute ago: compared %d, requests %d, want 1 and 1", r.Compared, r.Requests)
	}
}

// Mismatch, noise and error exchanges are kept, matches are not; the list
// is newest first and filters by route, difference path and path prefix;
// Sample returns the whole exchange, or ErrNotFound.
func testSamples(t *testing.T, open Opener) {
	s := openT(t, open)
	m := base()
	a := exch("r", "/a", m, compare.OutcomeMismatch, compare.Difference{Kind: compare.KindStatus, Path: "$.status", Legacy: "200", New: "500"})
	a.New = resp(500, "oops")
	record(t, s, a)
	record(t, s, exch("r", "/b/c", m.Add(time.Second), compare.OutcomeMismatch, mismatch("$.x")))
	record(t, s, exch("r", "/m", m.Add(2*time.Second), compare.OutcomeMatch))
	record(t, s, exch("other", "/b/d", m.Add(3*time.Second), compare.OutcomeNoise, compare.Difference{Kind: compare.KindBody, Path: "$.t", Legacy: "1", New: "2", Noise: true}))
	e := exch("other", "/e", m.Add(4*time.Second), compare.OutcomeError)
	e.New = &compare.Response{Err: "timeout"}
	record(t, s, e)
	flush(t, s)

	paths := func(l []store.SampleSummary) string {
		var p []string
		for _, x := range l {
			p = append(p, x.Route+x.Path)
		}
		return strings.Join(p, " ")
	}
	for _, c := range []struct {
		f    store.SampleFilter
		want string
		why  string
	}{
		{store.SampleFilter{}, "other/e other/b/d r/b/c r/a", "every kept sample, newest first; the match is not kept"},
		{store.SampleFilter{Route: "r"}, "r/b/c r/a", "by route"},
		{store.SampleFilter{Path: "$.status"}, "r/a", "by difference path"},
		{store.SampleFilter{Path: "/b"}, "other/b/d r/b/c", "by request path prefix"},
		{store.SampleFilter{Route: "r", Path: "/b"}, "r/b/c", "both"},
		{store.SampleFilter{Limit: 2}, "other/e other/b/d", "the newest Limit"},
		{store.SampleFilter{Route: "none"}, "", "an unknown route has none"},
	} {
		if got := paths(samples(t, s, c.f)); got != c.want {
			t.Errorf("Samples(%+v) = %q, want %q (%s)", c.f, got, c.want, c.why)
		}
	}

	l := samples(t, s, store.SampleFilter{Path: "$.status"})
	if len(l) != 1 {
		t.Fatalf("Samples($.status) = %+v, want one", l)
	}
	x := l[0]
	if x.RequestID != a.RequestID || x.Method != "POST" || x.ServedBy != "legacy" || x.Outcome != compare.OutcomeMismatch ||
		x.LegacyStatus != 200 || x.NewStatus != 500 || !x.At.Equal(m) || x.At.Location() != time.UTC ||
		len(x.DiffPaths) != 1 || x.DiffPaths[0] != "$.status" {
		t.Errorf("summary = %+v, want the exchange's fields (At %v in UTC)", x, m)
	}
	got, err := s.Sample(x.ID)
	if err != nil {
		t.Fatalf("Sample(%s): %v", x.ID, err)
	}
	if got.ID != x.ID || got.Route != "r" || got.Path != "/a" || !got.At.Equal(m) ||
		got.Legacy.Status != 200 || string(got.Legacy.Body) != `{"w":1}` || got.Legacy.Size != 7 ||
		got.New.Status != 500 || string(got.New.Body) != "oops" || got.Legacy.BodyTruncated ||
		len(got.Diffs) != 1 || got.Diffs[0].Path != "$.status" || got.Diffs[0].New != "500" {
		t.Errorf("Sample = %+v, want the whole exchange", got)
	}
	if _, err := s.Sample("no-such-sample"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Sample(unknown) = %v, want ErrNotFound", err)
	}
}

// Limit 0 lists DefaultSampleLimit; no Limit lists more than
// MaxSampleLimit. Each exchange differs at its own path, so every one is
// kept whatever SamplesPerPath is.
func testSampleLimit(t *testing.T, open Opener) {
	s := openT(t, open)
	m := base()
	n := store.DefaultSampleLimit + 5
	for i := 0; i < n; i++ {
		record(t, s, exch("r", "/", m.Add(time.Duration(i)*time.Millisecond), compare.OutcomeMismatch, mismatch(fmt.Sprintf("$.f%d", i))))
	}
	flush(t, s)
	if got := len(samples(t, s, store.SampleFilter{})); got != store.DefaultSampleLimit {
		t.Errorf("Limit 0 listed %d, want DefaultSampleLimit %d", got, store.DefaultSampleLimit)
	}
	if got := len(samples(t, s, store.SampleFilter{Limit: store.MaxSampleLimit + 1})); got != n {
		t.Errorf("Limit past the max listed %d, want all %d", got, n)
	}
}

// Credential headers and the request's secrets never reach the store.
func testRedaction(t *testing.T, open Opener) {
	s := openT(t, open)
	const secret = "s3cr3t-t0ken-value"
	ex := exch("r", "/", base(), compare.OutcomeMismatch,
		compare.Difference{Kind: compare.KindHeader, Path: "$.header.Set-Cookie", Legacy: "sid=" + secret, New: "sid=other"},
		compare.Difference{Kind: compare.KindBody, Path: "$.echo", Legacy: secret, New: "x"})
	ex.Legacy = resp(200, `{"echo":"`+secret+`"}`, compare.HeaderField{Name: "Set-Cookie", Value: "sid=" + secret})
	ex.Secrets = []string{secret}
	record(t, s, ex)
	flush(t, s)
	l := samples(t, s, store.SampleFilter{})
	if len(l) != 1 {
		t.Fatalf("Samples = %+v, want one", l)
	}
	got, err := s.Sample(l[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("%+v %s %s", got, got.Legacy.Body, got.New.Body)
	if strings.Contains(text, secret) {
		t.Errorf("the secret was stored: %s", text)
	}
	if len(got.Legacy.Header) != 1 || got.Legacy.Header[0].Value != store.Redacted {
		t.Errorf("Set-Cookie stored as %+v, want %q", got.Legacy.Header, store.Redacted)
	}
}

// What was enqueued before a Flush that returned nil is there after a
// reopen.
func testFlushDurable(t *testing.T, open Opener) {
	s := openT(t, open)
	record(t, s, exch("r", "/", base(), compare.OutcomeMismatch, mismatch("$.w")))
	if !s.AddCounters("r", base(), store.Counters{Requests: 3, ServedLegacy: 3}) {
		t.Fatal("AddCounters refused")
	}
	flush(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openT(t, open)
	r := reportOf(t, s, "r", time.Time{})
	if r.Compared != 1 || r.Requests != 3 || len(samples(t, s, store.SampleFilter{})) != 1 {
		t.Errorf("after reopen: compared %d, requests %d, want 1 and 3 and the sample", r.Compared, r.Requests)
	}
}

// Close commits what is still queued.
func testCloseCommits(t *testing.T, open Opener) {
	s := openT(t, open)
	const n = 20
	for i := 0; i < n; i++ {
		record(t, s, exch("r", "/", base(), compare.OutcomeMatch))
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openT(t, open)
	if r := reportOf(t, s, "r", time.Time{}); r.Compared != n {
		t.Errorf("after Close and reopen: compared %d, want %d", r.Compared, n)
	}
}

// A closed store refuses without blocking, counts the refusals, and Close
// may be called again.
func testAfterClose(t *testing.T, open Opener) {
	s := openT(t, open)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	before := s.Stats().Dropped
	if s.Record(exch("r", "/", base(), compare.OutcomeMatch)) {
		t.Error("Record after Close returned true")
	}
	if s.AddCounters("r", base(), store.Counters{Requests: 1}) {
		t.Error("AddCounters after Close returned true")
	}
	if got := s.Stats().Dropped - before; got != 2 {
		t.Errorf("Dropped grew by %d after two refusals, want 2", got)
	}
	if err := s.Flush(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close = %v, want the first's (nil)", err)
	}
}

// Record never blocks: a burst far larger than any sane queue returns
// promptly, every refusal counted as a drop, and every acceptance kept.
func testRefusals(t *testing.T, open Opener) {
	s := openT(t, open)
	const n = 20000
	before := s.Stats().Dropped
	start := time.Now()
	refused := int64(0)
	for i := 0; i < n; i++ {
		if !s.Record(exch("r", "/", base(), compare.OutcomeMatch)) {
			refused++
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("%d Records took %v: Record blocks", n, d)
	}
	if got := s.Stats().Dropped - before; got != refused {
		t.Errorf("Dropped grew by %d, want the %d refusals", got, refused)
	}
	flush(t, s)
	if r := reportOf(t, s, "r", time.Time{}); r.Compared != n-refused {
		t.Errorf("compared %d, want the %d accepted", r.Compared, n-refused)
	}
}

// Noise is applied when numbers are read: comparisons recorded before a
// path was noise (flags false, outcome mismatch) read as noise once the
// model says so, a comparison with another difference stays a mismatch,
// record-time flags the model does not share count for nothing, and
// compare errors are never classified.
func testReadTimeNoise(t *testing.T, open Opener) {
	s := openT(t, open)
	model := modelOf(t)
	at := base()
	nonce := func() compare.Difference { return mismatch("$.nonce") }
	var early []string
	for i := 0; i < 5; i++ {
		ex := exch("r", "/", at.Add(time.Duration(i)*time.Second), compare.OutcomeMismatch, nonce())
		early = append(early, ex.RequestID)
		record(t, s, ex)
	}
	real := exch("r", "/", at.Add(10*time.Second), compare.OutcomeMismatch, nonce(), mismatch("$.field"))
	record(t, s, real)
	// Flagged noise when recorded, by a model that has since forgotten it.
	stale := exch("r", "/", at.Add(11*time.Second), compare.OutcomeNoise, compare.Difference{Kind: compare.KindBody, Path: "$.gone", Legacy: "1", New: "2", Noise: true})
	record(t, s, stale)
	record(t, s, exch("r", "/", at.Add(12*time.Second), compare.OutcomeMatch))
	e := exch("r", "/", at.Add(13*time.Second), compare.OutcomeError, compare.Difference{Kind: compare.KindStatus, Path: "$.error", Legacy: "200", New: "timeout"})
	e.New = &compare.Response{Err: "timeout"}
	record(t, s, e)
	flush(t, s)

	counts := func(r store.RouteReport) [5]int64 {
		return [5]int64{r.Compared, r.Matched, r.Mismatched, r.Noise, r.CompareErrors}
	}
	noiseFlag := func(r store.RouteReport, path string) bool {
		for _, p := range r.Diffs {
			if p.Path == path {
				return p.Noise
			}
		}
		t.Fatalf("no PathStat for %s in %+v", path, r.Diffs)
		return false
	}
	r := reportOf(t, s, "r", time.Time{})
	if got, want := counts(r), [5]int64{9, 1, 7, 0, 1}; got != want {
		t.Errorf("before the mark: compared, matched, mismatched, noise, errors = %v, want %v", got, want)
	}
	if noiseFlag(r, "$.nonce") || noiseFlag(r, "$.gone") {
		t.Errorf("before the mark: %+v, want no path flagged noise", r.Diffs)
	}

	for _, p := range []string{"$.nonce", "$.error"} {
		if err := model.Mark("r", p, "random"); err != nil {
			t.Fatal(err)
		}
	}
	r = reportOf(t, s, "r", time.Time{})
	if got, want := counts(r), [5]int64{9, 1, 2, 5, 1}; got != want {
		t.Errorf("after the mark: compared, matched, mismatched, noise, errors = %v, want %v (the errors are never classified)", got, want)
	}
	if want := 2.0 / 9; r.DiffRate < want-1e-9 || r.DiffRate > want+1e-9 {
		t.Errorf("after the mark: DiffRate = %v, want %v", r.DiffRate, want)
	}
	if !noiseFlag(r, "$.nonce") || noiseFlag(r, "$.field") || noiseFlag(r, "$.gone") {
		t.Errorf("after the mark: %+v, want only $.nonce flagged noise", r.Diffs)
	}
	for _, c := range []struct {
		id   string
		want compare.Outcome
		why  string
	}{
		{early[0], compare.OutcomeNoise, "recorded as a mismatch before the mark"},
		{real.RequestID, compare.OutcomeMismatch, "$.field is real"},
		{stale.RequestID, compare.OutcomeMismatch, "recorded noise, unknown to the model now"},
		{e.RequestID, compare.OutcomeError, "errors are never classified"},
	} {
		l, err := s.Comparisons(c.id)
		if err != nil {
			t.Fatalf("Comparisons(%s): %v", c.id, err)
		}
		if len(l) != 1 || l[0].Outcome != c.want {
			t.Errorf("Comparisons(%s) = %+v, want one %s (%s)", c.id, l, c.want, c.why)
		}
	}
}

// Comparisons lists a request's comparisons oldest first, legacy→new
// before legacy→secondary at the same time, with the differing pairs as
// the model reads them, the instance and a stored sample's id; an unknown
// id gives an empty list.
func testComparisons(t *testing.T, open Opener) {
	s := openT(t, open)
	model := modelOf(t)
	at := base()
	const id = "upload-42"
	// A retry of the same request, recorded first but made later.
	later := exch("r", "/up", at.Add(5*time.Second), compare.OutcomeMatch)
	later.RequestID = id
	first := exch("r", "/up", at, compare.OutcomeMismatch, mismatch("$.nonce"), mismatch("$.field"))
	first.RequestID = id
	first.Secondary = resp(200, `{"w":3}`)
	first.SecondaryResult = &compare.Result{Outcome: compare.OutcomeMismatch, Diffs: []compare.Difference{mismatch("$.nonce")}}
	record(t, s, later)
	record(t, s, first)
	record(t, s, exch("r", "/other", at, compare.OutcomeMismatch, mismatch("$.x")))
	flush(t, s)
	if err := model.Mark("r", "$.nonce", "random"); err != nil {
		t.Fatal(err)
	}

	l, err := s.Comparisons(id)
	if err != nil {
		t.Fatalf("Comparisons: %v", err)
	}
	type row struct {
		against string
		at      time.Time
		outcome compare.Outcome
		diffs   string
	}
	var got []row
	for _, c := range l {
		var d []string
		for _, x := range c.Diffs {
			d = append(d, fmt.Sprintf("%s %s noise=%v", x.Kind, x.Path, x.Noise))
		}
		got = append(got, row{c.Against, c.At, c.Outcome, strings.Join(d, "; ")})
		if c.RequestID != id || c.Route != "r" || c.Instance != instance || c.At.Location() != time.UTC {
			t.Errorf("comparison %+v: want request %s, route r, instance %s, At in UTC", c, id, instance)
		}
	}
	want := []row{
		{store.AgainstNew, at, compare.OutcomeMismatch, "body $.field noise=false; body $.nonce noise=true"},
		{store.AgainstSecondary, at, compare.OutcomeNoise, "body $.nonce noise=true"},
		{store.AgainstNew, at.Add(5 * time.Second), compare.OutcomeMatch, ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Comparisons(%s) =\n%v\nwant\n%v", id, got, want)
	}
	if len(l) == 3 {
		if l[0].SampleID == "" {
			t.Error("the mismatch's comparison has no sample id")
		} else if smp, err := s.Sample(l[0].SampleID); err != nil || smp.RequestID != id {
			t.Errorf("Sample(%s) = %+v, %v; want the sample of %s", l[0].SampleID, smp, err, id)
		}
		if l[1].SampleID != "" || l[2].SampleID != "" {
			t.Errorf("sample ids %q %q, want none for the secondary and the match", l[1].SampleID, l[2].SampleID)
		}
	}
	// The secondary comparison is not one of the report's.
	if r := reportOf(t, s, "r", time.Time{}); r.Compared != 3 {
		t.Errorf("report compared %d, want 3 (legacy→new only)", r.Compared)
	}
	for _, unknown := range []string{"no-such-request", ""} {
		l, err := s.Comparisons(unknown)
		if err != nil || len(l) != 0 {
			t.Errorf("Comparisons(%q) = %+v, %v; want empty, no error", unknown, l, err)
		}
	}
}

// A comparison older than the comparisons retention is not listed.
func testComparisonsRetention(t *testing.T, open Opener) {
	s := openT(t, open)
	old := exch("old", "/", time.Now().Add(-8*24*time.Hour), compare.OutcomeMismatch, mismatch("$.x"))
	recent := exch("old", "/", base(), compare.OutcomeMatch)
	recent.RequestID = old.RequestID
	record(t, s, old)
	record(t, s, recent)
	flush(t, s)
	l, err := s.Comparisons(old.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 1 || !l[0].At.Equal(recent.At) {
		t.Errorf("Comparisons = %+v, want only the recent one at %v", l, recent.At)
	}
}

// Series sums the stored minutes per bucket of the step, aligned to
// multiples of it, oldest first, buckets without data left out; the
// verdicts are the noise model's when read; since cuts whole minutes like
// Report; a named route without data gets one empty series; a step that is
// not one of store.SeriesSteps is refused.
func testSeries(t *testing.T, open Opener) {
	s := openT(t, open)
	model := modelOf(t)
	m := base() // a minute boundary 30 minutes ago
	// Minute 0: two matches and a mismatch at $.nonce; minute 1: one
	// mismatch at $.field; minute 7: a match and a compare error. Traffic
	// counters at minutes 0 and 7.
	record(t, s, exch("r", "/", m.Add(5*time.Second), compare.OutcomeMatch))
	record(t, s, exch("r", "/", m.Add(6*time.Second), compare.OutcomeMatch))
	record(t, s, exch("r", "/", m.Add(7*time.Second), compare.OutcomeMismatch, mismatch("$.nonce")))
	slow := exch("r", "/", m.Add(time.Minute+time.Second), compare.OutcomeMismatch, mismatch("$.field"))
	slow.NewLatency = 900 * time.Millisecond
	record(t, s, slow)
	record(t, s, exch("r", "/", m.Add(7*time.Minute), compare.OutcomeMatch))
	e := exch("r", "/", m.Add(7*time.Minute+time.Second), compare.OutcomeError)
	e.New = &compare.Response{Err: "timeout"}
	record(t, s, e)
	record(t, s, exch("other", "/", m, compare.OutcomeMatch))
	for _, c := range []struct {
		at time.Time
		n  int64
	}{{m, 4}, {m.Add(7 * time.Minute), 3}} {
		if !s.AddCounters("r", c.at, store.Counters{Requests: c.n, ServedLegacy: c.n, ServedErrors: store.ServedCounts{Legacy: 1}}) {
			t.Fatal("AddCounters refused")
		}
	}
	flush(t, s)

	series := func(route string, since time.Time, step time.Duration) []store.RouteSeries {
		t.Helper()
		l, err := s.Series(route, since, step)
		if err != nil {
			t.Fatalf("Series(%q, %v, %v): %v", route, since, step, err)
		}
		return l
	}
	type pt struct {
		at                                                time.Duration // from m
		requests, compared, mismatched, noise, errs, srvd int64
	}
	points := func(rs store.RouteSeries) []pt {
		var out []pt
		for _, p := range rs.Points {
			out = append(out, pt{p.At.Sub(m), p.Requests, p.Compared, p.Mismatched, p.Noise, p.CompareErrors, p.ServedErrors.Total()})
		}
		return out
	}
	eq := func(what string, got, want []pt) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: points (at, requests, compared, mismatched, noise, compare errors, served errors)\n got %v\nwant %v", what, got, want)
		}
	}
	l := series("r", time.Time{}, time.Minute)
	if len(l) != 1 || l[0].Route != "r" {
		t.Fatalf("Series(r) = %+v, want one series of r", l)
	}
	eq("per minute", points(l[0]), []pt{
		{0, 4, 3, 1, 0, 0, 1},
		{time.Minute, 0, 1, 1, 0, 0, 0},
		{7 * time.Minute, 3, 2, 0, 0, 1, 1},
	})
	p0 := l[0].Points[0]
	if want := 1.0 / 3; p0.DiffRate < want-1e-9 || p0.DiffRate > want+1e-9 {
		t.Errorf("minute 0: DiffRate %v, want %v", p0.DiffRate, want)
	}
	if p1 := l[0].Points[1]; p1.NewP99MS < 800 || p1.LegacyP99MS <= 0 || p1.LegacyP99MS > 50 {
		t.Errorf("minute 1: p99 legacy %v ms, new %v ms; want about 10 and 900", p1.LegacyP99MS, p1.NewP99MS)
	}
	// Buckets of 5 minutes are aligned to multiples of 5 minutes since the
	// epoch, not to the first minute with data.
	b0 := m.Truncate(5 * time.Minute)
	var want5 []pt
	add := func(at time.Time, p pt) {
		p.at = at.Sub(m)
		if n := len(want5); n > 0 && want5[n-1].at == p.at {
			w := &want5[n-1]
			w.requests, w.compared, w.mismatched, w.errs, w.srvd = w.requests+p.requests, w.compared+p.compared, w.mismatched+p.mismatched, w.errs+p.errs, w.srvd+p.srvd
			return
		}
		want5 = append(want5, p)
	}
	add(b0, pt{0, 4, 3, 1, 0, 0, 1})
	add(m.Add(time.Minute).Truncate(5*time.Minute), pt{0, 0, 1, 1, 0, 0, 0})
	add(m.Add(7*time.Minute).Truncate(5*time.Minute), pt{0, 3, 2, 0, 0, 1, 1})
	l = series("r", time.Time{}, 5*time.Minute)
	eq("per 5 minutes", points(l[0]), want5)

	// since: from the minute containing it.
	eq("since 30 s into minute 1", points(series("r", m.Add(time.Minute+30*time.Second), time.Minute)[0]), []pt{
		{time.Minute, 0, 1, 1, 0, 0, 0},
		{7 * time.Minute, 3, 2, 0, 0, 1, 1},
	})
	// Noise at read time: $.nonce marked after recording.
	if err := model.Mark("r", "$.nonce", "random"); err != nil {
		t.Fatal(err)
	}
	eq("after marking $.nonce", points(series("r", time.Time{}, time.Minute)[0]), []pt{
		{0, 4, 3, 0, 1, 0, 1},
		{time.Minute, 0, 1, 1, 0, 0, 0},
		{7 * time.Minute, 3, 2, 0, 0, 1, 1},
	})
	// Every route by name; a named route without data: one empty series.
	all := series("", time.Time{}, time.Hour)
	if len(all) != 2 || all[0].Route != "other" || all[1].Route != "r" {
		t.Errorf("Series(\"\") = %+v, want other then r", all)
	}
	if none := series("none", time.Time{}, time.Minute); len(none) != 1 || none[0].Route != "none" || len(none[0].Points) != 0 {
		t.Errorf("Series(none) = %+v, want one empty series", none)
	}
	if _, err := s.Series("r", time.Time{}, 7*time.Minute); err == nil {
		t.Error("Series with a 7-minute step: no error")
	}
}

// A sample's outcome, and each of its differences' noise flags, are the
// noise model's when read; a compare error stays one; Samples lists the
// outcome read now, and Since keeps the samples at or after it.
func testSamplesReadTime(t *testing.T, open Opener) {
	s := openT(t, open)
	model := modelOf(t)
	m := base()
	hdr := compare.Difference{Kind: compare.KindHeader, Path: "$.header.Date", Legacy: "a", New: "b"}
	onlyNoise := exch("r", "/a", m, compare.OutcomeMismatch, hdr)
	mixed := exch("r", "/b", m.Add(2*time.Minute), compare.OutcomeMismatch, hdr, mismatch("$.w"))
	stale := exch("r", "/c", m.Add(3*time.Minute), compare.OutcomeNoise, compare.Difference{Kind: compare.KindBody, Path: "$.gone", Legacy: "1", New: "2", Noise: true})
	e := exch("r", "/d", m.Add(4*time.Minute), compare.OutcomeError, compare.Difference{Kind: compare.KindStatus, Path: "$.error", Legacy: "200", New: "timeout"})
	e.New = &compare.Response{Err: "timeout"}
	for _, ex := range []*exchange.Exchange{onlyNoise, mixed, stale, e} {
		record(t, s, ex)
	}
	flush(t, s)
	if err := model.Mark("r", "$.header.Date", "a clock"); err != nil {
		t.Fatal(err)
	}
	if err := model.Mark("r", "$.error", "flaky"); err != nil {
		t.Fatal(err)
	}
	list := samples(t, s, store.SampleFilter{Route: "r"})
	byPath := map[string]store.SampleSummary{}
	for _, x := range list {
		byPath[x.Path] = x
	}
	for _, c := range []struct {
		path  string
		want  compare.Outcome
		noise map[string]bool
		why   string
	}{
		{"/a", compare.OutcomeNoise, map[string]bool{"$.header.Date": true}, "its one difference was marked noise after recording"},
		{"/b", compare.OutcomeMismatch, map[string]bool{"$.header.Date": true, "$.w": false}, "$.w is real"},
		{"/c", compare.OutcomeMismatch, map[string]bool{"$.gone": false}, "flagged noise when recorded, unknown to the model now"},
		{"/d", compare.OutcomeError, map[string]bool{"$.error": true}, "a compare error is never classified"},
	} {
		sum, ok := byPath[c.path]
		if !ok {
			t.Fatalf("no sample of %s in %+v", c.path, list)
		}
		if sum.Outcome != c.want {
			t.Errorf("Samples: %s reads %s, want %s (%s)", c.path, sum.Outcome, c.want, c.why)
		}
		x, err := s.Sample(sum.ID)
		if err != nil {
			t.Fatal(err)
		}
		if x.Outcome != c.want {
			t.Errorf("Sample(%s) of %s reads %s, want %s (%s)", sum.ID, c.path, x.Outcome, c.want, c.why)
		}
		got := map[string]bool{}
		for _, d := range x.Diffs {
			got[d.Path] = d.Noise
		}
		if fmt.Sprint(got) != fmt.Sprint(c.noise) {
			t.Errorf("Sample of %s: noise flags %v, want %v", c.path, got, c.noise)
		}
	}
	recent := samples(t, s, store.SampleFilter{Route: "r", Since: m.Add(2 * time.Minute)})
	var paths []string
	for _, x := range recent {
		paths = append(paths, x.Path)
	}
	if got := strings.Join(paths, ","); got != "/d,/c,/b" {
		t.Errorf("Samples since minute 2: %s, want /d,/c,/b (newest first, /a is older)", got)
	}
}
