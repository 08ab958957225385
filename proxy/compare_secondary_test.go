package proxy

import (
	"strings"
	"testing"

	"github.com/tandem-proxy/tandem/compare"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// The observer gets the secondary's answer and its comparison with legacy
// (so a store records it), flagged as the learner stood then; a route
// without a secondary hands over nil for both.
func TestCompareHandsOffSecondary(t *testing.T) {
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
    match: {path_prefix: /upload}
    legacy: legacy
    secondary: legacy2
    new: new
    compare: {noise_min_samples: 2}
  - name: plain
    legacy: legacy
    new: new
`
	cfg = strings.ReplaceAll(cfg, "{{data}}", t.TempDir())
	rec := &recorder{ch: make(chan struct{}, 16)}
	srv, addr := mustServeWith(t, cfg, rec)
	f := &fixture{t: t, srv: srv, addr: addr, url: "http://" + addr, client: newClient()}
	for range 3 {
		f.post("/upload", strings.NewReader("x"), 1, nil)
		rec.wait(t, 1)
	}
	exs := rec.wait(t, 0)
	for i, ex := range exs {
		if ex.Secondary == nil || ex.Secondary.Status != 200 || ex.SecondaryResult == nil {
			t.Fatalf("exchange %d: secondary %+v, result %+v; want legacy2's answer and its comparison", i, ex.Secondary, ex.SecondaryResult)
		}
		// legacy and legacy2 differ in the backend's name (a header and a
		// JSON field), as legacy and new do.
		if len(ex.SecondaryResult.Diffs) == 0 {
			t.Errorf("exchange %d: secondary comparison without differences: %+v", i, ex.SecondaryResult)
		}
	}
	if first := exs[0].SecondaryResult.Outcome; first != compare.OutcomeMismatch {
		t.Errorf("first secondary comparison %s, want mismatch (nothing learned yet)", first)
	}
	if last := exs[2].SecondaryResult.Outcome; last != compare.OutcomeNoise {
		t.Errorf("third secondary comparison %s %+v, want noise (learned after 2)", last, exs[2].SecondaryResult.Diffs)
	}

	f.post("/other", strings.NewReader("x"), 1, nil)
	ex := rec.wait(t, 1)[3]
	if ex.Route != "plain" || ex.Secondary != nil || ex.SecondaryResult != nil {
		t.Errorf("route %s without a secondary: secondary %+v, result %+v; want nil", ex.Route, ex.Secondary, ex.SecondaryResult)
	}
}
