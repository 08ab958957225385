package pgrules

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
)

func observe(l *compare.Learner, secondary bool, n int, diffs ...compare.Difference) {
	for range n {
		r := compare.Result{Outcome: compare.OutcomeMismatch, Diffs: diffs}
		if secondary {
			l.ObserveSecondary("images", r)
		} else {
			l.ObservePrimary("images", r)
		}
	}
}

func stat(l *compare.Learner, path string) compare.NoiseStat {
	for _, st := range l.Paths("images") {
		if st.Path == path {
			return st
		}
	}
	return compare.NoiseStat{}
}

// Comparisons observed on A and B add up in the database, exactly; a path
// is learned from their combined secondary counts, which neither has
// enough of alone; a mark made on B is stored with its audit row and
// applies on A within 2 s.
func TestNoiseSharedAcrossInstances(t *testing.T) {
	_, url := database(t)
	la, lb := compare.NewLearner(), compare.NewLearner()
	for _, l := range []*compare.Learner{la, lb} {
		l.Configure("images", compare.Settings{NoiseMinSamples: 10})
	}
	ts := compare.Difference{Kind: compare.KindJSON, Path: "$.processed_at"}
	a := open(t, url, "a", Options{Learner: la, NoiseInterval: 100 * time.Millisecond})
	b := open(t, url, "b", Options{Learner: lb, NoiseInterval: 100 * time.Millisecond})
	observe(la, true, 6, ts)
	observe(la, false, 3, ts)
	observe(lb, true, 6, ts)
	observe(lb, false, 3, ts)
	if stat(la, "$.processed_at").Learned {
		t.Fatal("learned from 6 secondary comparisons with noise_min_samples 10")
	}
	for _, l := range []*compare.Learner{la, lb} {
		within(t, 2*time.Second, "the fleet's counts", func() bool {
			st := stat(l, "$.processed_at")
			return st.SecondaryTotal == 12 && st.SecondaryDiffs == 12 && st.PrimaryTotal == 6 && st.Learned
		})
	}
	r := compare.Result{Outcome: compare.OutcomeMismatch, Diffs: []compare.Difference{ts}}
	if la.Apply("images", &r); r.Outcome != compare.OutcomeNoise {
		t.Fatalf("outcome %s on A, want noise", r.Outcome)
	}
	// More syncs add nothing twice.
	observe(la, true, 1)
	within(t, 2*time.Second, "one more comparison", func() bool { return stat(lb, "$.processed_at").SecondaryTotal == 13 })
	for range 2 { // more rounds on each, besides their loops'
		for _, in := range []*instance{a, b} {
			if err := in.syncNoise(); err != nil {
				t.Fatal(err)
			}
		}
	}
	counts, err := a.NoiseCounts()
	if err != nil {
		t.Fatal(err)
	}
	rc := counts["images"]
	if rc.SecondaryTotal != 13 || rc.PrimaryTotal != 6 || len(rc.Paths) != 1 || rc.Paths[0].SecondaryDiffs != 12 || rc.Paths[0].PrimaryDiffs != 6 {
		t.Fatalf("database counts %+v, want 13/6 and $.processed_at 12/6", rc)
	}

	if err := b.MarkNoise("images", "$.id", "random id", "api"); err != nil {
		t.Fatal(err)
	}
	if !stat(lb, "$.id").Marked {
		t.Fatal("the mark is not in force on B when MarkNoise returns")
	}
	within(t, 2*time.Second, "the mark on A", func() bool { return stat(la, "$.id").Marked && stat(la, "$.id").Reason == "random id" })
	evs, _ := a.Events(time.Time{}, 0)
	n := 0
	for _, e := range evs {
		if e.Kind == "noise" && e.New == "noise $.id" && e.Instance == "b" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d audit rows for the mark, want 1: %+v", n, evs)
	}
	if err := b.MarkNoise("images", "$[", "", "api"); !errors.Is(err, ErrBadMark) {
		t.Fatalf("bad mark: %v", err)
	}
	var marks int
	conn(t, url).QueryRow(context.Background(), "SELECT count(*) FROM rules_noise_marks").Scan(&marks)
	if marks != 1 {
		t.Fatalf("%d marks stored, want 1", marks)
	}
}

// A count batch whose commit looked failed but happened is added once:
// the retry carries the same sequence number.
func TestNoiseBatchAddedOnce(t *testing.T) {
	_, url := database(t)
	l := compare.NewLearner()
	a := open(t, url, "a", Options{Learner: l, NoiseInterval: time.Hour})
	observe(l, true, 4, compare.Difference{Kind: compare.KindJSON, Path: "$.x"})
	if err := a.syncNoise(); err != nil {
		t.Fatal(err)
	}
	// As if that commit's answer had been lost: the batch is pending again.
	a.noise.mu.Lock()
	a.noise.pending = &noiseBatch{seq: a.noise.seq, counts: map[string]compare.RouteCounts{"images": {SecondaryTotal: 4}}}
	a.noise.mu.Unlock()
	if err := a.syncNoise(); err != nil {
		t.Fatal(err)
	}
	counts, _ := a.NoiseCounts()
	if got := counts["images"].SecondaryTotal; got != 4 {
		t.Fatalf("secondary total %d after a retried batch, want 4", got)
	}
}
