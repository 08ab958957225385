package compare

import (
	"testing"
)

func TestSignatureKeyRoundTrip(t *testing.T) {
	r := Result{Outcome: OutcomeMismatch, Diffs: []Difference{
		{Kind: KindJSON, Path: "$.items[3].width"},
		{Kind: KindHeader, Path: "$.header.X-Trace"},
		{Kind: KindJSON, Path: "$.items[3].width"}, // repeated: counted once
		{Kind: KindJSON, Path: `$["odd key"]`},
	}}
	sig := r.Signature()
	if len(sig) != 3 || sig[0].Kind != KindHeader || sig[2].Path != `$["odd key"]` {
		t.Fatalf("Signature = %v, want 3 pairs, header first, sorted", sig)
	}
	back, err := ParseSignature(sig.Key())
	if err != nil {
		t.Fatal(err)
	}
	if back.Key() != sig.Key() || len(back) != len(sig) {
		t.Fatalf("round trip %v -> %v", sig, back)
	}
	if got, _ := ParseSignature(""); len(got) != 0 {
		t.Fatalf("empty key gives %v, want empty", got)
	}
	shape := sig.Shape()
	if shape[1].Path != "$.items[*].width" {
		t.Fatalf("Shape = %v", shape)
	}
	for _, bad := range []string{"json", "nope\x1f$.a", "json\x1f$.b\x1ejson\x1f$.a", "json\x1f$.a\x1ejson\x1f$.a", "json\x1fa.b"} {
		if _, err := ParseSignature(bad); err == nil {
			t.Errorf("ParseSignature(%q): no error", bad)
		}
	}
}

// TestClassifyReadsTheModelAsItIsNow is the contract: what was recorded
// before a path was learned is classified by the model at reading time.
func TestClassifyReadsTheModelAsItIsNow(t *testing.T) {
	l := NewLearner()
	l.Configure("r", Settings{NoiseMinSamples: 10})
	nonce := Result{Outcome: OutcomeMismatch, Diffs: []Difference{{Kind: KindJSON, Path: "$.nonce"}}}
	both := Result{Outcome: OutcomeMismatch, Diffs: []Difference{{Kind: KindJSON, Path: "$.nonce"}, {Kind: KindJSON, Path: "$.field"}}}
	early := nonce.Signature()
	if got := l.Classify("r", early); got != OutcomeMismatch {
		t.Fatalf("before learning: %s, want mismatch", got)
	}
	for i := 0; i < 10; i++ {
		l.ObserveSecondary("r", nonce)
		l.ObservePrimary("r", nonce)
	}
	if got := l.Classify("r", early); got != OutcomeNoise {
		t.Fatalf("after learning, the early comparison: %s, want noise", got)
	}
	if got := l.Classify("r", both.Signature()); got != OutcomeMismatch {
		t.Fatalf("nonce+field: %s, want mismatch", got)
	}
	if got := l.Classify("r", nil); got != OutcomeMatch {
		t.Fatalf("empty: %s, want match", got)
	}
	if !l.Noise("r", KindJSON, "$.nonce") || l.Noise("r", KindJSON, "$.field") || l.Noise("other", KindJSON, "$.nonce") {
		t.Fatal("Noise disagrees with Classify")
	}
	// Apply, Noise and Classify are one rule.
	res := both
	res.Diffs = append([]Difference(nil), both.Diffs...)
	l.Apply("r", &res)
	if !res.Diffs[0].Noise || res.Diffs[1].Noise || res.Outcome != l.Classify("r", both.Signature()) {
		t.Fatalf("Apply = %+v", res)
	}
}

func TestSnapshotWithMarkChangesNothing(t *testing.T) {
	l := NewLearner()
	b, err := l.SnapshotWithMark("r", "$.items[*].id", "random ids")
	if err != nil {
		t.Fatal(err)
	}
	if l.Noise("r", KindJSON, "$.items[2].id") {
		t.Fatal("SnapshotWithMark put the mark in force")
	}
	if _, err := l.SnapshotWithMark("r", "$..x", "bad"); err == nil {
		t.Fatal("bad path accepted")
	}
	other := NewLearner()
	if err := other.Restore(b); err != nil {
		t.Fatal(err)
	}
	if !other.Noise("r", KindJSON, "$.items[2].id") {
		t.Fatal("the snapshot does not hold the mark")
	}
}

func TestMarkCoversShapePaths(t *testing.T) {
	l := NewLearner()
	if err := l.Mark("r", "$.items[*].id", "random ids"); err != nil {
		t.Fatal(err)
	}
	if err := l.Mark("r", "$.thumbs[2]", "one index"); err != nil {
		t.Fatal(err)
	}
	full := Signature{{KindJSON, "$.items[4].id"}}
	if got := l.Classify("r", full.Shape()); got != OutcomeNoise {
		t.Fatalf("shape under a wildcard mark: %s, want noise", got)
	}
	if got := l.Classify("r", Signature{{KindJSON, "$.thumbs[*]"}}); got != OutcomeMismatch {
		t.Fatalf("shape under a one-index mark: %s, want mismatch (the mark names one index)", got)
	}
	if got := l.Classify("r", Signature{{KindJSON, "$.thumbs[2].w"}}); got != OutcomeNoise {
		t.Fatalf("full path under a one-index mark: %s, want noise", got)
	}
}
