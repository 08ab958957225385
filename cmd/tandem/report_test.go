package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update if intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// tandem report's table, against a golden file.
func TestReportTableGolden(t *testing.T) {
	reps := []store.RouteReport{
		{
			Route: "thumbs", Since: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC),
			Requests: 1000, ServedLegacy: 880, ServedNew: 100, ServedTandem: 20, Mirrored: 990, Compared: 985,
			ServedErrors: store.ServedCounts{Legacy: 18, New: 2, Tandem: 20},
			Matched:      950, Mismatched: 20, Noise: 15, CompareErrors: 0, LegacyErrors: 1, NewErrors: 4,
			Skipped:  map[exchange.Outcome]int64{"sampling": 0, "queue_full": 7, "breaker_open": 3, "too_large": 0, "spool_full": 0, "error": 0},
			DiffRate: 20.0 / 985,
			Diffs: []store.PathStat{
				{Kind: compare.KindImage, Path: "$.image.orientation", Count: 12, Rate: 12.0 / 985, ExampleID: "s-12"},
				{Kind: compare.KindJSON, Path: "$.processed_at", Count: 985, Rate: 1, Noise: true, ExampleID: "s-1"},
				{Kind: compare.KindImage, Path: "$.image.alpha", Count: 8, Rate: 8.0 / 985, ExampleID: "s-8"},
			},
			Latency: store.LatencyMS{LegacyP50: 12.5, LegacyP99: 842, NewP50: 8.42, NewP99: 10092.5}, // one of each digit count, and seconds
		},
		{Route: "avatars", Skipped: map[exchange.Outcome]int64{}},
	}
	var b bytes.Buffer
	renderReport(&b, reps, 2)
	golden(t, "report.golden", b.Bytes())
}

// tandem report -request's table, against a golden file: one line per
// comparison, its differing pairs one per line, noise marked.
func TestComparisonsTableGolden(t *testing.T) {
	at := time.Date(2026, 12, 6, 21, 0, 0, 123e6, time.UTC)
	cs := []store.Comparison{
		{At: at, Route: "thumbs", RequestID: "req-7", Instance: "10.0.0.5:8080", Against: "secondary", Outcome: compare.OutcomeNoise,
			Diffs: []store.ComparedDiff{{Kind: compare.KindJSON, Path: "$.nonce", Noise: true}}},
		{At: at.Add(4 * time.Millisecond), Route: "thumbs", RequestID: "req-7", Instance: "10.0.0.5:8080", Against: "new", Outcome: compare.OutcomeMismatch,
			Diffs: []store.ComparedDiff{
				{Kind: compare.KindHeader, Path: "$.header.Content-Type"},
				{Kind: compare.KindJSON, Path: "$.field"},
				{Kind: compare.KindJSON, Path: "$.nonce", Noise: true},
			}, SampleID: "s-42"},
		{At: at.Add(time.Second), Route: "thumbs", RequestID: "req-7", Against: "new", Outcome: compare.OutcomeMatch},
	}
	var b bytes.Buffer
	renderComparisons(&b, "req-7", cs)
	var none bytes.Buffer
	renderComparisons(&none, "nobody", nil)
	golden(t, "comparisons.golden", append(b.Bytes(), none.Bytes()...))
}
