package pgstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/pgtest"
	"github.com/tandem-proxy/tandem/pgstore"
	"github.com/tandem-proxy/tandem/store"
)

var seq atomic.Int64

func resp(status int, body string) *compare.Response {
	return &compare.Response{Status: status, Body: []byte(body), Size: int64(len(body)), SHA256: sha256.Sum256([]byte(body))}
}

// exch is the i-th exchange of a generator that mixes routes, minutes,
// outcomes, differing paths, latencies and secondaries.
func exch(inst string, i int, base time.Time) *exchange.Exchange {
	n := seq.Add(1)
	route := []string{"images", "api"}[i%2]
	ex := &exchange.Exchange{
		Route: route, RequestID: fmt.Sprintf("%s-req-%d", inst, n), Method: "GET", Path: fmt.Sprintf("/p/%d", i%3),
		ServedBy: "legacy", At: base.Add(time.Duration(i%4) * time.Minute).Add(time.Duration(i) * time.Millisecond),
		Legacy: resp(200, `{"w":1}`), New: resp(200, `{"w":2}`),
		LegacyLatency: time.Duration(1+i%7) * time.Millisecond, NewLatency: time.Duration(2+i%11) * time.Millisecond,
	}
	switch i % 5 {
	case 0, 1:
		ex.Result = compare.Result{Outcome: compare.OutcomeMatch}
	case 2:
		ex.Result = compare.Result{Outcome: compare.OutcomeMismatch, Diffs: []compare.Difference{{Kind: compare.KindBody, Path: fmt.Sprintf("$.f%d", i%3), Legacy: "1", New: "2"}}}
	case 3:
		ex.Result = compare.Result{Outcome: compare.OutcomeMismatch, Diffs: []compare.Difference{{Kind: compare.KindHeader, Path: "$.header.Date", Legacy: "a", New: "b"}}}
	case 4:
		ex.Result = compare.Result{Outcome: compare.OutcomeError}
		ex.New = &compare.Response{Err: "connect: refused"}
	}
	if i%3 == 0 {
		ex.SecondaryResult = &compare.Result{Outcome: compare.OutcomeMismatch, Diffs: []compare.Difference{{Kind: compare.KindBody, Path: "$.s", Legacy: "1", New: "2"}}}
	}
	return ex
}

func counters(i int) store.Counters {
	return store.Counters{Requests: int64(10 + i), ServedLegacy: int64(7 + i), ServedNew: 3, Sent: int64(5 + i),
		ServedErrors: store.ServedCounts{Legacy: 1}, Skipped: map[exchange.Outcome]int64{exchange.Sampling: int64(i)}}
}

func openPG(t testing.TB, url, inst string, noise compare.NoiseModel) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{Instance: inst, Noise: noise})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openSQLite(t testing.TB, noise compare.NoiseModel) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "store.db"), store.Options{Noise: noise})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reports are the reports compared: sample ids differ between stores.
func reports(t *testing.T, r interface {
	Report(string, time.Time) ([]store.RouteReport, error)
}, since time.Time) []store.RouteReport {
	t.Helper()
	reps, err := r.Report("", since)
	if err != nil {
		t.Fatal(err)
	}
	for i := range reps {
		for j := range reps[i].Diffs {
			reps[i].Diffs[j].ExampleID = ""
		}
	}
	return reps
}

func series(t *testing.T, r interface {
	Series(string, time.Time, time.Duration) ([]store.RouteSeries, error)
}) []store.RouteSeries {
	t.Helper()
	out, err := r.Series("", time.Time{}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Three instances on one database: each records its own exchanges and
// counters; a report read through any of them is the report of everything
// (the SQLite store fed every instance's data is the reference, noise
// applied at read time included), and Instance("b") is what b recorded.
func TestFleetReportIsTheSum(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase()
	model := compare.NewLearner()
	names := []string{"a", "b", "c"}
	fleet := map[string]*pgstore.Store{}
	for _, n := range names {
		fleet[n] = openPG(t, url, n, model)
	}
	all, onlyB := openSQLite(t, model), openSQLite(t, model)
	base := time.Now().UTC().Truncate(time.Minute).Add(-20 * time.Minute)
	var bIDs []string
	for k, n := range names {
		for i := 0; i < 40+10*k; i++ {
			ex := exch(n, i+k, base)
			cp := *ex // each store gets its own copy (Record may set At)
			cp2 := *ex
			if !fleet[n].Record(ex) || !all.Record(&cp) {
				t.Fatal("Record refused")
			}
			if n == "b" {
				onlyB.Record(&cp2)
				bIDs = append(bIDs, ex.RequestID)
			}
		}
		for i := 0; i < 5; i++ {
			at := base.Add(time.Duration(i+k) * time.Minute)
			fleet[n].AddCounters("images", at, counters(i+k))
			all.AddCounters("images", at, counters(i+k))
			if n == "b" {
				onlyB.AddCounters("images", at, counters(i+k))
			}
		}
	}
	for _, s := range []interface{ Flush() error }{fleet["a"], fleet["b"], fleet["c"], all, onlyB} {
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Noise learned after recording applies to what was recorded.
	if err := model.Mark("images", "$.header.Date", "a clock"); err != nil {
		t.Fatal(err)
	}
	want := reports(t, all, time.Time{})
	if len(want) != 2 || want[0].Compared == 0 || want[1].Noise == 0 {
		t.Fatalf("reference report has no data: %+v", want)
	}
	for _, n := range names {
		if d := cmp.Diff(want, reports(t, fleet[n], time.Time{})); d != "" {
			t.Errorf("report through %s differs from the sum (-want +got):\n%s", n, d)
		}
		if d := cmp.Diff(series(t, all), series(t, fleet[n])); d != "" {
			t.Errorf("series through %s differs from the sum (-want +got):\n%s", n, d)
		}
	}
	since := base.Add(2 * time.Minute)
	if d := cmp.Diff(reports(t, all, since), reports(t, fleet["c"], since)); d != "" {
		t.Errorf("report since %v differs (-want +got):\n%s", since, d)
	}
	b := fleet["a"].Instance("b")
	if d := cmp.Diff(reports(t, onlyB, time.Time{}), reports(t, b, time.Time{})); d != "" {
		t.Errorf("Instance(b) differs from what b recorded (-want +got):\n%s", d)
	}
	if d := cmp.Diff(series(t, onlyB), series(t, b)); d != "" {
		t.Errorf("Instance(b)'s series differs (-want +got):\n%s", d)
	}

	got, err := fleet["c"].Instances()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, names) {
		t.Errorf("Instances() = %v, want %v", got, names)
	}
	// Samples and comparisons: the fleet's view holds every instance's,
	// the instance view only b's.
	sAll, err := fleet["a"].Samples(store.SampleFilter{Limit: store.MaxSampleLimit})
	if err != nil {
		t.Fatal(err)
	}
	sB, err := b.Samples(store.SampleFilter{Limit: store.MaxSampleLimit})
	if err != nil {
		t.Fatal(err)
	}
	seenInst := map[string]bool{}
	for _, x := range sAll {
		seenInst[x.RequestID[:1]] = true
	}
	if len(seenInst) != 3 || len(sB) == 0 || len(sB) >= len(sAll) {
		t.Errorf("samples: fleet has %d from instances %v, b has %d", len(sAll), seenInst, len(sB))
	}
	for _, x := range sB {
		if x.RequestID[:1] != "b" {
			t.Errorf("Instance(b) lists sample %s of request %s", x.ID, x.RequestID)
		}
		if _, err := fleet["c"].Instance("a").Sample(x.ID); err == nil {
			t.Errorf("Instance(a).Sample(%s) found b's sample", x.ID)
		}
		if sm, err := fleet["c"].Sample(x.ID); err != nil || sm.RequestID != x.RequestID {
			t.Errorf("Sample(%s) through c = %v, %v", x.ID, sm, err)
		}
	}
	for _, id := range bIDs[:5] {
		cs, err := fleet["a"].Comparisons(id)
		if err != nil || len(cs) == 0 || cs[0].Instance != "b" {
			t.Errorf("Comparisons(%s) through a = %+v, %v", id, cs, err)
		}
		if cs, err := fleet["a"].Instance("c").Comparisons(id); err != nil || len(cs) != 0 {
			t.Errorf("Instance(c).Comparisons(%s) = %+v, %v; want none", id, cs, err)
		}
	}
}
