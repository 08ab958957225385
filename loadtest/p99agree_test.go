package loadtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/store"
)

// agreeSamples are latencies from 200 µs to about 2 s, spread over four
// orders of magnitude (log-uniform, fixed seed), where histogram
// precision shows in the percentiles.
func agreeSamples() []time.Duration {
	r := rand.New(rand.NewPCG(19, 99))
	out := make([]time.Duration, 2000)
	for i := range out {
		out[i] = time.Duration(200e3 * math.Pow(10, 4*r.Float64()))
	}
	return out
}

// The same latencies give the same p99 to the ramp's latency gate
// (ramp.Window), to the report (the diff store's per-minute
// histograms) and to the load generator's results: all three use
// internal/latency. Before it, loadtest kept three significant digits and
// the others two: the ramp and the report agreed (1744.895 ms), the load
// test said 1742.847 ms for the same samples.
func TestP99AgreesAcrossRampReportAndLoadtest(t *testing.T) {
	samples := agreeSamples()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	// The ramp: the new side's p99 over its window.
	w := ramp.NewWindow(t0)
	for _, d := range samples {
		w.AddNew(t0, d, false)
		w.AddLegacy(t0, d)
	}
	rs := w.Stats()

	// The report: exchanges recorded in the diff store, read back.
	st, err := store.Open(filepath.Join(t.TempDir(), "store.db"), store.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	resp := &compare.Response{Status: 200}
	for i, d := range samples {
		ok := st.Record(&exchange.Exchange{
			Route: "images", RequestID: fmt.Sprint(i), Method: "POST", Path: "/upload", ServedBy: "legacy",
			At: t0.Add(time.Duration(i) * time.Millisecond), Legacy: resp, New: resp,
			LegacyLatency: d, NewLatency: d, Result: compare.Result{Outcome: compare.OutcomeMatch},
		})
		if !ok {
			t.Fatalf("the store refused exchange %d", i)
		}
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	reps, err := st.Report("images", time.Time{})
	if err != nil || len(reps) != 1 {
		t.Fatalf("report: %v %v", reps, err)
	}
	rep := reps[0].Latency

	// The load generator: the same latencies as hits.
	c := newCollector()
	for _, d := range samples {
		c.record(&hit{intended: t0, sent: t0, done: t0.Add(d), status: 200})
	}
	lt := c.results().Latency

	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if ms(rs.NewP99) != rep.NewP99 || ms(rs.LegacyP99) != rep.LegacyP99 {
		t.Errorf("p99: ramp new %v legacy %v, report new %v ms legacy %v ms", rs.NewP99, rs.LegacyP99, rep.NewP99, rep.LegacyP99)
	}
	if lt.P99 != rs.NewP99 {
		t.Errorf("p99: loadtest %v, ramp %v (report %v ms)", lt.P99, rs.NewP99, rep.NewP99)
	}
	// And the value is the samples' p99 within the documented 1%.
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	exact := sorted[len(sorted)*99/100-1]
	if got := rs.NewP99; got < exact || float64(got-exact) > 0.01*float64(exact) {
		t.Errorf("p99 %v, the samples' p99 is %v: more than 1%% off", got, exact)
	}
}
