package compare

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
)

func mismatch(diffs ...Difference) Result { return Result{Outcome: OutcomeMismatch, Diffs: diffs} }

var (
	dTime  = Difference{Kind: KindJSON, Path: "$.processed_at", Legacy: "10:00", New: "10:01"}
	dWidth = Difference{Kind: KindJSON, Path: "$.items[1].width", Legacy: "800", New: "801"}
	dHdr   = Difference{Kind: KindHeader, Path: "$.header.X-Trace", Legacy: "a", New: "b"}
)

// feed observes n comparisons of each sort; the first k of them differ with
// diffs, the others match.
func feed(l *Learner, route string, secondary bool, n, k int, diffs ...Difference) {
	for i := 0; i < n; i++ {
		r := Result{Outcome: OutcomeMatch}
		if i < k {
			r = mismatch(diffs...)
		}
		if secondary {
			l.ObserveSecondary(route, r)
		} else {
			l.ObservePrimary(route, r)
		}
	}
}

func TestLearnerLearns(t *testing.T) {
	tests := []struct {
		name, why    string
		secN, secK   int // secondary comparisons, of which differ at the path
		primN, primK int
		settings     Settings
		want         bool
	}{
		{"same rate", "timestamp differs between any two instances", 100, 50, 100, 50, Settings{}, true},
		{"always differs", "like a Date header", 100, 100, 40, 40, Settings{}, true},
		{"primary a bit higher, relative", "55% vs 50%: within 20%", 100, 50, 100, 55, Settings{}, true},
		{"primary lower", "new differs less than legacy from itself", 100, 30, 100, 5, Settings{}, true},
		{"primary a bit higher, absolute", "1.0% vs 1.1%: within 0.001 abs", 1000, 10, 1000, 11, Settings{NoiseMinSamples: 1000}, true},
		{"only new differs", "secondary never differs there: a real regression", 100, 0, 100, 100, Settings{}, false},
		{"primary much higher", "5% noise, 60% differ vs new: a regression hides in noise", 100, 5, 100, 60, Settings{}, false},
		{"too few samples", "99 < noise_min_samples", 99, 99, 100, 100, Settings{}, false},
		{"min samples setting", "the route asks for fewer samples", 10, 10, 10, 10, Settings{NoiseMinSamples: 10}, true},
		{"rel tolerance setting", "60% vs 50% within a 25% tolerance", 100, 50, 100, 60, Settings{NoiseRelTolerance: 0.25}, true},
		{"rel tolerance exceeded", "60% vs 50% beyond the default 20%", 100, 50, 100, 61, Settings{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLearner()
			l.Configure("r", tc.settings)
			feed(l, "r", true, tc.secN, tc.secK, dTime)
			feed(l, "r", false, tc.primN, tc.primK, dTime)
			r := mismatch(dTime)
			l.Apply("r", &r)
			if r.Diffs[0].Noise != tc.want {
				t.Errorf("%s (%s): noise = %v, want %v; stats %+v", tc.name, tc.why, r.Diffs[0].Noise, tc.want, l.Paths("r"))
			}
			wantOutcome := OutcomeMismatch
			if tc.want {
				wantOutcome = OutcomeNoise
			}
			if r.Outcome != wantOutcome {
				t.Errorf("%s: outcome %s, want %s", tc.name, r.Outcome, wantOutcome)
			}
		})
	}
}

func TestLearnerMixedAndIndexes(t *testing.T) {
	l := NewLearner()
	// Every item's id is random: legacy differs from itself at $.items[i].id.
	id := func(i int) Difference {
		return Difference{Kind: KindJSON, Path: fmt.Sprintf("$.items[%d].id", i), Legacy: "a", New: "b"}
	}
	feed(l, "r", true, 100, 100, id(0), id(1), id(2))
	feed(l, "r", false, 10, 10, id(0), id(1))
	r := mismatch(id(7), dWidth) // an index never seen, and a real change
	l.Apply("r", &r)
	if !r.Diffs[0].Noise || r.Diffs[1].Noise || r.Outcome != OutcomeMismatch {
		t.Errorf("got %+v", r)
	}
	st := l.Paths("r")
	if len(st) != 1 || st[0].Path != "$.items[*].id" || st[0].SecondaryDiffs != 100 || st[0].PrimaryDiffs != 10 {
		t.Errorf("paths counted once per comparison by shape: %+v", st)
	}
	// Other routes learn nothing from this one.
	r = mismatch(id(0))
	l.Apply("other", &r)
	if r.Diffs[0].Noise || r.Outcome != OutcomeMismatch {
		t.Errorf("other route: %+v", r)
	}
}

func TestLearnerIgnoresErrors(t *testing.T) {
	l := NewLearner()
	for range 200 {
		l.ObserveSecondary("r", Result{Outcome: OutcomeError, Diffs: []Difference{{Kind: KindStatus, Path: "$.error"}}})
	}
	if st := l.Paths("r"); len(st) != 0 {
		t.Errorf("errors counted: %+v", st)
	}
	r := Result{Outcome: OutcomeError, Diffs: []Difference{{Kind: KindStatus, Path: "$.error"}}}
	l.Mark("r", "$", "everything")
	l.Apply("r", &r)
	if r.Outcome != OutcomeError || r.Diffs[0].Noise {
		t.Errorf("error result changed: %+v", r)
	}
}

func TestLearnerMark(t *testing.T) {
	l := NewLearner()
	if err := l.Mark("r", "$.header.X-Trace", "tracing id"); err != nil {
		t.Fatal(err)
	}
	if err := l.Mark("r", "$.items[*].width", "rounding, accepted"); err != nil {
		t.Fatal(err)
	}
	if err := l.Mark("r", "$.[", "bad"); err == nil {
		t.Error("bad mark accepted")
	}
	r := mismatch(dHdr, dWidth)
	l.Apply("r", &r)
	if r.Outcome != OutcomeNoise || !r.Diffs[0].Noise || !r.Diffs[1].Noise {
		t.Errorf("marked: %+v", r)
	}
	l.Mark("r", "$.header.X-Trace", "new reason")
	feed(l, "r", false, 5, 5, dHdr)
	want := []NoiseStat{
		{Path: "$.items[*].width", Marked: true, Reason: "rounding, accepted", PrimaryTotal: 5},
		{Kind: KindHeader, Path: "$.header.X-Trace", PrimaryDiffs: 5, PrimaryTotal: 5, PrimaryRate: 1, Marked: true, Reason: "new reason"},
	}
	if got := l.Paths("r"); !reflect.DeepEqual(got, want) {
		t.Errorf("Paths:\ngot  %+v\nwant %+v", got, want)
	}
}

func TestLearnerSnapshot(t *testing.T) {
	l := NewLearner()
	l.Configure("r", Settings{NoiseMinSamples: 10})
	feed(l, "r", true, 20, 10, dTime)
	feed(l, "r", false, 20, 10, dTime, dWidth)
	l.Mark("r", "$.header.X-Trace", "tracing")
	l.Mark("s", "$.body", "random bytes")
	snap, err := l.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]NoiseStat{"r": l.Paths("r"), "s": l.Paths("s")}
	if !before["r"][2].Learned {
		t.Fatalf("setup: $.processed_at should be learned: %+v", before["r"])
	}

	m := NewLearner()
	m.Configure("r", Settings{NoiseMinSamples: 10}) // thresholds come from config, not the snapshot
	if err := m.Restore(snap); err != nil {
		t.Fatal(err)
	}
	for route, want := range before {
		if got := m.Paths(route); !reflect.DeepEqual(got, want) {
			t.Errorf("route %s after restore:\ngot  %+v\nwant %+v", route, got, want)
		}
	}
	r := mismatch(dTime, dHdr)
	m.Apply("r", &r)
	if r.Outcome != OutcomeNoise {
		t.Errorf("restored learner: %+v", r)
	}
	again, _ := m.Snapshot()
	if string(again) != string(snap) {
		t.Errorf("snapshot not stable:\n%s\n%s", snap, again)
	}

	corrupt := []string{
		``,
		`{`,
		`[]`,
		`{"version":2,"routes":{}}`,
		`{"version":1,"routes":{"r":{"secondary_total":-1}}}`,
		`{"version":1,"routes":{"r":{"secondary_total":1,"paths":[{"kind":"json","path":"$.a","secondary_diffs":2}]}}}`,
		`{"version":1,"routes":{"r":{"paths":[{"kind":"weird","path":"$.a"}]}}}`,
		`{"version":1,"routes":{"r":{"paths":[{"kind":"json","path":"nope"}]}}}`,
		`{"version":1,"routes":{"r":{"paths":[{"kind":"json","path":"$.a"},{"kind":"json","path":"$.a"}]}}}`,
		`{"version":1,"routes":{"r":{"marks":[{"path":"$..x"}]}}}`,
	}
	for _, c := range corrupt {
		if err := m.Restore([]byte(c)); err == nil {
			t.Errorf("Restore(%q) succeeded", c)
		}
		if got := m.Paths("r"); !reflect.DeepEqual(got, before["r"]) {
			t.Fatalf("Restore(%q) changed state: %+v", c, got)
		}
	}
}

func TestLearnerConcurrent(t *testing.T) {
	l := NewLearner()
	l.Configure("r", Settings{NoiseMinSamples: 10})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				switch (g + i) % 5 {
				case 0:
					l.ObserveSecondary("r", mismatch(dTime))
				case 1:
					l.ObservePrimary("r", mismatch(dTime, dWidth))
				case 2:
					r := mismatch(dTime)
					l.Apply("r", &r)
				case 3:
					l.Paths("r")
					l.Mark("r", "$.x", "x")
				case 4:
					if b, err := l.Snapshot(); err == nil && i%50 == 4 {
						l.Restore(b)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// Two Learners that exchange deltas through a shared sum (as a fleet's
// database does) count what both observed, and learn a path that neither
// learns from its own comparisons; counts observed between TakeDelta and
// SetCounts are not lost, and a delta is given once.
func TestLearnerDeltasAddUp(t *testing.T) {
	shared := map[string]RouteCounts{}
	add := func(d map[string]RouteCounts) {
		for name, rc := range d {
			s := shared[name]
			s.SecondaryTotal += rc.SecondaryTotal
			s.PrimaryTotal += rc.PrimaryTotal
			for _, p := range rc.Paths {
				found := false
				for i := range s.Paths {
					if s.Paths[i].Kind == p.Kind && s.Paths[i].Path == p.Path {
						s.Paths[i].SecondaryDiffs += p.SecondaryDiffs
						s.Paths[i].PrimaryDiffs += p.PrimaryDiffs
						found = true
					}
				}
				if !found {
					s.Paths = append(s.Paths, p)
				}
			}
			shared[name] = s
		}
	}
	a, b := NewLearner(), NewLearner()
	for _, l := range []*Learner{a, b} {
		l.Configure("r", Settings{NoiseMinSamples: 10})
	}
	feed(a, "r", true, 6, 6, dTime)
	feed(a, "r", false, 3, 3, dTime)
	feed(b, "r", true, 6, 6, dTime)
	feed(b, "r", false, 3, 3, dTime)
	res := mismatch(dTime)
	if a.Apply("r", &res); res.Outcome != OutcomeMismatch {
		t.Fatalf("6 secondary comparisons of 10 needed: outcome %s", res.Outcome)
	}
	add(a.TakeDelta())
	add(b.TakeDelta())
	if d := a.TakeDelta(); len(d) != 0 {
		t.Fatalf("second TakeDelta with nothing new: %+v", d)
	}
	feed(a, "r", true, 1, 0) // between TakeDelta and SetCounts
	a.SetCounts(shared)
	b.SetCounts(shared)
	res = mismatch(dTime)
	if a.Apply("r", &res); res.Outcome != OutcomeNoise {
		t.Fatalf("12 secondary comparisons together: outcome %s", res.Outcome)
	}
	st := a.Paths("r")
	if len(st) != 1 || st[0].SecondaryTotal != 13 || st[0].SecondaryDiffs != 12 || st[0].PrimaryTotal != 6 || !st[0].Learned {
		t.Fatalf("a after SetCounts: %+v", st)
	}
	if st := b.Paths("r"); len(st) != 1 || st[0].SecondaryTotal != 12 {
		t.Fatalf("b after SetCounts: %+v", st)
	}
	d := a.TakeDelta()
	if rc := d["r"]; rc.SecondaryTotal != 1 || len(rc.Paths) != 0 {
		t.Fatalf("the comparison observed before SetCounts is the next delta: %+v", d)
	}
	if err := CheckMark("$.items[*]"); err != nil {
		t.Fatal(err)
	}
	if err := CheckMark("$["); err == nil {
		t.Fatal("CheckMark took a broken path")
	}
}
