package proxy

import (
	"strings"
	"testing"

	"github.com/tandem-proxy/tandem/compare"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// With a secondary legacy instance, differences that legacy shows against
// itself are learned as noise, and a mismatch made only of them becomes
// "noise"; a difference only new shows stays a real mismatch.
func TestNoiseLearnedFromSecondary(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	legacy2 := tb.Start(t, "legacy2", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfg := `
data_dir: {{data}}
backends:
  legacy: {url: "` + legacy.URL + `"}
  legacy2: {url: "` + legacy2.URL + `"}
  new: {url: "` + newb.URL + `"}
routes:
  - name: up
    legacy: legacy
    secondary: legacy2
    new: new
    compare: {noise_min_samples: 20}
`
	cfg = strings.ReplaceAll(cfg, "{{data}}", t.TempDir())
	rec := &recorder{ch: make(chan struct{}, 128)}
	srv, addr := mustServeWith(t, cfg, rec)
	f := &fixture{t: t, srv: srv, addr: addr, url: "http://" + addr, client: newClient()}
	// legacy vs legacy2 differ in X-Backend and in the JSON "shadow" field,
	// exactly as legacy vs new do: all of it is noise once learned.
	const n = 40
	for i := 0; i < n; i++ {
		f.post("/upload", strings.NewReader("x"), 1, nil)
		rec.wait(t, 1)
	}
	exs := rec.wait(t, 0)
	first, last := exs[0].Result, exs[len(exs)-1].Result
	if first.Outcome != compare.OutcomeMismatch {
		t.Errorf("before learning: %s, want mismatch", first.Outcome)
	}
	if last.Outcome != compare.OutcomeNoise {
		t.Fatalf("after %d samples: %s %+v, want noise", n, last.Outcome, last.Diffs)
	}
	if legacy2.Count() != n {
		t.Fatalf("secondary got %d requests, want %d", legacy2.Count(), n)
	}
	// Now new regresses on its status: a real mismatch again, by name.
	newb.SetMode(tb.Mode{Kind: tb.KindStatus, Status: 503})
	f.post("/upload", strings.NewReader("x"), 1, nil)
	exs = rec.wait(t, 1)
	res := exs[len(exs)-1].Result
	if res.Outcome != compare.OutcomeMismatch || !hasDiff(res, compare.KindStatus, "$.status") {
		t.Fatalf("status regression: %+v", res)
	}
	if got := f.metric(`tandem_compare_total{route="up",result="noise"}`); got == 0 {
		t.Fatal("noise outcomes not counted")
	}
}
