package ramp

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/rules"
)

// The Wilson bounds against references computed apart from this package:
// Python's statistics.NormalDist().inv_cdf(0.95) for z and, for each
// bound, bisection on the score statistic (p̂−p)/√(p(1−p)/n) = ∓z, not the
// closed form used here.
func TestWilsonKnownValues(t *testing.T) {
	if want := math.Sqrt2 * math.Erfinv(2*Confidence-1); math.Abs(Z-want) > 1e-12 {
		t.Fatalf("Z = %v, Φ⁻¹(%v) = %v", Z, Confidence, want)
	}
	cases := []struct {
		k, n      int64
		lo, hi    float64
		reference string
	}{
		{0, 600, 0, 0.0044889971, "no mismatch in 600"},
		{6, 1000, 0.0031057545, 0.0115601098, "rate just above 0.005"},
		{20, 200, 0.0702711023, 0.1404066262, "10%"},
		{3, 3, 0.5258044258, 1, "all of three"},
		{50, 1000, 0.0398282155, 0.0626002034, "5%"},
		{1, 1000, 0.0002231238, 0.0044697229, "one in a thousand"},
		{0, 539, 0, 0.0049944910, "the first n at which 0 mismatches pass max_diff_rate 0.005"},
		{0, 538, 0, 0.0050037280, "one comparison short of it"},
		{12, 60, 0.1288545876, 0.2970334916, "20% of 60"},
	}
	for _, tc := range cases {
		lo, hi := Wilson(tc.k, tc.n, Z)
		if math.Abs(lo-tc.lo) > 1e-9 || math.Abs(hi-tc.hi) > 1e-9 {
			t.Errorf("%s: Wilson(%d, %d) = [%.10f, %.10f], want [%.10f, %.10f]", tc.reference, tc.k, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
	// The often-quoted 0.0064 for 0 of 600 is the two-sided 95% interval
	// (z = 1.96, one-sided 97.5%): 1.96²/(600+1.96²).
	if _, hi := Wilson(0, 600, 1.959963984540054); math.Abs(hi-0.0063617010) > 1e-9 {
		t.Errorf("two-sided 95%% upper bound of 0/600 = %.10f, want 0.0063617010", hi)
	}
	if lo, hi := Wilson(0, 0, Z); lo != 0 || hi != 1 {
		t.Errorf("no samples: [%v, %v], want [0, 1]", lo, hi)
	}
}

// fakeNoise is a noise model whose noise paths can be learned while a test
// runs: a signature is noise when every path in it is.
type fakeNoise struct {
	mu    sync.Mutex
	paths map[string]bool
	asked []string // routes asked about
}

func (f *fakeNoise) learn(p string) { f.mu.Lock(); f.paths[p] = true; f.mu.Unlock() }

func (f *fakeNoise) Noise(route string, _ compare.Kind, p string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paths[p]
}

func (f *fakeNoise) Classify(route string, sig compare.Signature) compare.Outcome {
	f.mu.Lock()
	f.asked = append(f.asked, route)
	f.mu.Unlock()
	if len(sig) == 0 {
		return compare.OutcomeMatch
	}
	for _, k := range sig {
		if !f.Noise(route, k.Kind, k.Path) {
			return compare.OutcomeMismatch
		}
	}
	return compare.OutcomeNoise
}

func jsonSig(paths ...string) compare.Signature {
	var s compare.Signature
	for _, p := range paths {
		s = append(s, compare.SigKey{Kind: compare.KindJSON, Path: p})
	}
	return s
}

// Read-time noise: the first comparisons differ in $.processed_at before it
// is learned as noise; once it is, they stop counting as mismatches, and a
// ramp at 0% that would have failed on them advances. The old behaviour
// (mismatches as classified when compared) is what MismatchedWhenCompared
// still says, and it would have failed the gate.
func TestRampReadTimeNoise(t *testing.T) {
	model := &fakeNoise{paths: map[string]bool{}}
	r := &rules.Ramp{Steps: []float64{5, 100}, Hold: rules.Duration(time.Minute), MinCompared: 60,
		MaxDiffRate: 0.07, MaxErrorRate: 0.05, MaxLatencyRatio: 2}
	tr := NewTracker(NewProgress(t0, r, 0), "upload", model)
	w := tr.Window()
	add := func(n int, sig compare.Signature, whenCompared bool) {
		for i := 0; i < n; i++ {
			w.AddCompare(t0, sig, whenCompared)
			w.AddNew(t0, 10*time.Millisecond, false)
			w.AddLegacy(t0, 10*time.Millisecond)
		}
	}
	// 15 comparisons before processed_at is learned: mismatches then.
	add(15, jsonSig("$.processed_at"), true)
	// Learned: later comparisons are noise when made.
	model.learn("$.processed_at")
	add(50, jsonSig("$.processed_at"), false)
	add(10, nil, false)
	// One real mismatch, noise and real together: real.
	add(1, jsonSig("$.processed_at", "$.width"), true)

	s := w.Stats()
	if s.Compared != 76 || s.Mismatched != 1 || s.Noise != 65 || s.MismatchedWhenCompared != 16 || s.Signatures != 2 {
		t.Fatalf("stats %+v; want 76 compared, 1 real mismatch, 65 noise, 16 mismatched when compared, 2 signatures", s)
	}
	for _, route := range model.asked {
		if route != "upload" {
			t.Fatalf("the model was asked about route %q", route)
		}
	}
	d := tr.Decide(t0.Add(time.Minute), r, 0, false)
	if d.Action != ActionAdvance || d.ToPercent != 5 {
		t.Fatalf("got %s → %v (%s); want advance to 5", d.Action, d.ToPercent, d.Reason)
	}
	if d.Values["mismatched_when_compared"] != 16 || d.Values["noise"] != 65 {
		t.Errorf("values %v", d.Values)
	}
	// With the old classification, the same comparisons fail the gate: its
	// lower bound is above max_diff_rate (and at 5% that is a rollback).
	old := s
	old.Mismatched = s.MismatchedWhenCompared
	if g := Gates(r, old)[0]; g.State != GateFail {
		t.Fatalf("old classification: gate %+v, want fail", g)
	}
	if d := Step(t0.Add(time.Minute), r, 5, Progress{StepIndex: 0, StepSince: t0, Percent: 5}, old); d.Action != ActionRollback {
		t.Fatalf("old classification at 5%%: %s (%s), want rollback", d.Action, d.Reason)
	}
	// And at 0% the same failing gate holds: the ramp never rolls back
	// before its first step.
	if d := Step(t0.Add(time.Minute), r, 0, Progress{StepIndex: -1, StepSince: t0}, old); d.Action != ActionWait || d.Gate != GateDiffRate ||
		!strings.Contains(d.Reason, "before the first step") {
		t.Fatalf("old classification at 0%%: %s gate %q (%s), want wait on diff_rate", d.Action, d.Gate, d.Reason)
	}
}

// Past MaxSignatures distinct signatures, new ones are counted by shape;
// past MaxShapes distinct shapes too, as real mismatches whatever the model
// says. Reset empties them.
func TestRampWindowSignatureBound(t *testing.T) {
	model := &fakeNoise{paths: map[string]bool{}}
	w := NewRouteWindow(t0, "r", model)
	for i := 0; i < MaxSignatures; i++ {
		w.AddCompare(t0, jsonSig(fmt.Sprintf("$.f%d", i)), true)
	}
	// Beyond the bound: distinct array indexes share one shape.
	for i := 0; i < 100; i++ {
		w.AddCompare(t0, jsonSig(fmt.Sprintf("$.items[%d].id", i)), true)
	}
	s := w.Stats()
	if s.Signatures != MaxSignatures+1 || s.Compared != MaxSignatures+100 || s.Overflow != 0 {
		t.Fatalf("stats %+v", s)
	}
	// The shape is classified like the paths it stands for.
	model.learn("$.items[*].id")
	model.learn("$.f7")
	if s := w.Stats(); s.Noise != 101 || s.Mismatched != MaxSignatures-1 {
		t.Fatalf("after learning: noise %d mismatched %d", s.Noise, s.Mismatched)
	}
	for i := 0; i < MaxShapes-1; i++ { // one shape is taken
		w.AddCompare(t0, jsonSig(fmt.Sprintf("$.g%d", i)), false)
	}
	// The shapes are full now: another new one overflows, and counts as
	// real even though the model calls it noise.
	model.learn("$.overflowing")
	w.AddCompare(t0, jsonSig("$.overflowing"), false)
	s = w.Stats()
	if s.Overflow != 1 || s.Signatures != MaxSignatures+MaxShapes {
		t.Fatalf("overflow %d signatures %d", s.Overflow, s.Signatures)
	}
	if want := int64(MaxSignatures-1) + int64(MaxShapes-1) + 1; s.Mismatched != want {
		t.Fatalf("mismatched %d, want %d", s.Mismatched, want)
	}
	w.Reset(t0.Add(time.Minute))
	if s := w.Stats(); s.Compared != 0 || s.Signatures != 0 || s.Overflow != 0 || s.MismatchedWhenCompared != 0 {
		t.Fatalf("after reset %+v", s)
	}
}

// The error gate counts every request served by new through SetServed
// (the data plane's cumulative counters), from the window's last Reset on.
func TestRampWindowServed(t *testing.T) {
	w := NewWindow(t0)
	w.SetServed(1000, 10) // the base: served before the window
	w.AddNew(t0, time.Millisecond, true)
	w.SetServed(1500, 12)
	if s := w.Stats(); s.NewRequests != 501 || s.NewErrors != 3 {
		t.Fatalf("stats %+v; want 500 served + 1 shadow, 2 + 1 errors", s)
	}
	w.Reset(t0.Add(time.Minute))
	w.SetServed(1600, 12)
	if s := w.Stats(); s.NewRequests != 100 || s.NewErrors != 0 {
		t.Fatalf("after reset %+v", s)
	}
	w.SetServed(5, 0) // the counters restarted (a new rules table)
	w.SetServed(25, 1)
	if s := w.Stats(); s.NewRequests != 20 || s.NewErrors != 1 {
		t.Fatalf("after a counter restart %+v", s)
	}
}

// The cost of reading a full window (MaxSignatures distinct signatures,
// classified by the real Learner), which the ramp does once a second per
// ramped route, against adding one comparison, which the data plane does.
func BenchmarkRampWindowStatsFull(b *testing.B) {
	w := NewRouteWindow(t0, "r", compare.NewLearner())
	for i := 0; i < MaxSignatures; i++ {
		w.AddCompare(t0, jsonSig(fmt.Sprintf("$.f%d", i), "$.processed_at"), true)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s := w.Stats(); s.Compared != MaxSignatures {
			b.Fatal(s)
		}
	}
}

func BenchmarkRampWindowAddCompare(b *testing.B) {
	w := NewRouteWindow(t0, "r", compare.NewLearner())
	sig := jsonSig("$.id", "$.processed_at")
	b.ReportAllocs()
	for b.Loop() {
		w.AddCompare(t0, sig, true)
	}
}
