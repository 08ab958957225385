package ramp

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/tandem-proxy/tandem/compare"
)

// Two instances' windows, stored as JSON and merged, give the Stats of
// one window fed both instances' samples; the noise model classifies the
// merged signatures when they are read.
func TestMergeSnapshotsIsOneWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	key := StepKey{Route: "r", Threshold: 2500, Since: 7}
	model := &fakeNoise{paths: map[string]bool{}}
	a, b, both := NewRouteWindow(t0, "r", model), NewRouteWindow(t0, "r", model), NewRouteWindow(t0, "r", model)
	ts := compare.Signature{{Kind: "value", Path: "$.ts"}}
	id := compare.Signature{{Kind: "value", Path: "$.id"}}
	feed := func(w *Window, i int) {
		at := t0.Add(time.Second)
		switch i % 4 {
		case 0:
			w.AddCompare(at, ts, true)
		case 1:
			w.AddCompare(at, id, true)
		default:
			w.AddCompare(at, nil, false)
		}
		w.AddNew(at, time.Duration(1+i%50)*time.Millisecond, i%10 == 0)
		w.AddLegacy(at, time.Duration(1+i%40)*time.Millisecond)
	}
	for i := range 300 {
		feed(a, i)
		feed(both, i)
	}
	for i := 300; i < 1000; i++ {
		feed(b, i)
		feed(both, i)
	}
	b.SetServed(10, 1)
	b.SetServed(50, 3) // 40 served by new, 2 failed, since the base
	both.SetServed(10, 1)
	both.SetServed(50, 3)
	b.MarkBreakerOpen(t0.Add(2 * time.Second))
	both.MarkBreakerOpen(t0.Add(2 * time.Second))

	var snaps []Snapshot
	for _, w := range []*Window{a, b} {
		s, err := w.Snapshot(key)
		if err != nil {
			t.Fatal(err)
		}
		j, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Snapshot
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, back)
	}
	for _, learned := range []bool{false, true} {
		if learned {
			model.learn("$.ts")
		}
		got, err := MergeSnapshots("r", model, t0, snaps)
		if err != nil {
			t.Fatal(err)
		}
		want := both.Stats()
		if got != want {
			t.Fatalf("learned %v: merged %+v, want %+v", learned, got, want)
		}
		if want.Compared != 1000 || want.NewRequests != 1040 || want.NewErrors != 102 || !want.BreakerOpen {
			t.Fatalf("the reference window is off: %+v", want)
		}
		if learned && (want.Noise != 250 || want.Mismatched != 250) {
			t.Fatalf("noise read at merge time: %+v", got)
		}
	}
}

// A histogram of another geometry is refused, not merged into a p99 that
// would mean something else.
func TestMergeSnapshotsRefusesForeignHistograms(t *testing.T) {
	h := hdrhistogram.New(1, 1000, 3)
	h.RecordValue(5)
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MergeSnapshots("r", nil, time.Time{}, []Snapshot{{Instance: "x", NewLatency: b}}); err == nil {
		t.Fatal("a foreign histogram was merged")
	}
	if _, err := MergeSnapshots("r", nil, time.Time{}, []Snapshot{{Instance: "x", LegacyLatency: []byte("not base64!")}}); err == nil {
		t.Fatal("garbage was merged")
	}
}
