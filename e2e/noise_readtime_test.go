package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/store"
)

// nonceBackend answers /item/N with {"id":N,"field":…,"nonce":…}: a fresh
// random nonce every time, and field "b" instead of "a" when changed(N).
func nonceBackend(t *testing.T, changed func(n int) bool) string {
	return startLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/item/"))
		if err != nil {
			http.Error(w, "bad item", http.StatusBadRequest)
			return
		}
		field := "a"
		if changed(n) {
			field = "b"
		}
		var nonce [8]byte
		rand.Read(nonce[:])
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%d,"field":%q,"nonce":%q}`, n, field, hex.EncodeToString(nonce[:]))
	}))
}

// The nonce scenario: legacy, a second legacy instance as the
// secondary, and new each add a random nonce; new changes $.field on 20
// of 200 requests. The nonce is learned as noise part-way (after 50
// legacy-vs-secondary comparisons), and the report, read when all 200 are
// compared, counts the 20 real mismatches only: comparisons recorded
// before the nonce was learned read as noise too. After a clean stop the
// store, read with the persisted noise model, says the same of each early
// request.
func TestNoiseAppliedAtReadTime(t *testing.T) {
	const total, minSamples = 200, 50
	changed := func(n int) bool { return n%10 == 5 }
	legacy := nonceBackend(t, func(int) bool { return false })
	secondary := nonceBackend(t, func(int) bool { return false })
	newURL := nonceBackend(t, changed)

	dir := t.TempDir()
	s := childSetup{cfgPath: filepath.Join(dir, "tandem.yaml"), dataDir: filepath.Join(dir, "data"), addr: freeAddr(t), admin: freeAddr(t)}
	cfg := fmt.Sprintf(`listen: %s
admin: {listen: %s}
data_dir: %s
retention: {comparisons: 2h}
backends:
  legacy: {url: %q}
  legacy2: {url: %q}
  new: {url: %q}
routes:
  - name: up
    match: {path_prefix: /}
    legacy: legacy
    secondary: legacy2
    new: new
    mirror: 100
    compare: {noise_min_samples: %d}
`, s.addr, s.admin, s.dataDir, legacy, secondary, newURL, minSamples)
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, s)

	hc := &http.Client{Timeout: 10 * time.Second}
	for i := range total {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/item/%d", s.addr, i), nil)
		req.Header.Set("X-Request-Id", fmt.Sprintf("nonce-%03d", i))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v\n%s", i, err, c.logText())
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	var rep store.RouteReport
	if !pollUntil(30*time.Second, func() bool { rep = c.report(); return rep.Compared >= total }) {
		t.Fatalf("compared %d of %d in 30s: %+v\n%s", rep.Compared, total, rep, c.logText())
	}

	// The scenario learned the nonce part-way: the counters of record time
	// (which cannot go back) saw far more mismatches than there are.
	m := c.metrics()
	recordedMismatch := m[`tandem_compare_total{route="up",result="mismatch"}`]
	recordedNoise := m[`tandem_compare_total{route="up",result="noise"}`]
	t.Logf("recorded at the time: %v mismatch, %v noise; read now: %d mismatched, %d noise, diff rate %v",
		recordedMismatch, recordedNoise, rep.Mismatched, rep.Noise, rep.DiffRate)
	if recordedMismatch < minSamples || recordedNoise < total/2 {
		t.Fatalf("recorded %v mismatches and %v noise: the nonce was not learned part-way", recordedMismatch, recordedNoise)
	}

	if rep.Compared != total || rep.Mismatched != 20 || rep.Noise != total-20 || rep.Matched != 0 || rep.CompareErrors != 0 {
		t.Errorf("compared %d: matched %d, mismatched %d, noise %d, errors %d; want %d: 0, 20, %d, 0",
			rep.Compared, rep.Matched, rep.Mismatched, rep.Noise, rep.CompareErrors, total, total-20)
	}
	if math.Abs(rep.DiffRate-0.10) > 1e-9 {
		t.Errorf("diff rate %v, want 0.10 (recorded at the time: %v mismatches)", rep.DiffRate, recordedMismatch)
	}
	flags := map[string]*store.PathStat{}
	for i := range rep.Diffs {
		flags[rep.Diffs[i].Path] = &rep.Diffs[i]
	}
	if p := flags["$.nonce"]; p == nil || !p.Noise || p.Count != total {
		t.Errorf("path table $.nonce = %+v, want noise, differing in all %d", p, total)
	}
	if p := flags["$.field"]; p == nil || p.Noise || p.Count != 20 {
		t.Errorf("path table $.field = %+v, want real, differing in 20", p)
	}

	// The lookup, live: GET /api/v1/comparisons and tandem report -request
	// say of each early request (compared before the nonce was learned)
	// what the final model says — noise, or mismatch for a changed $.field
	// — and flag $.nonce as noise and $.field as real.
	for i := range minSamples {
		id := fmt.Sprintf("nonce-%03d", i)
		var got struct {
			RequestID   string             `json:"request_id"`
			Comparisons []store.Comparison `json:"comparisons"`
		}
		c.getJSON("/api/v1/comparisons?request_id="+id, &got)
		want := compare.OutcomeNoise
		if changed(i) {
			want = compare.OutcomeMismatch
		}
		l := got.Comparisons
		if got.RequestID != id || len(l) != 2 || l[0].Against != store.AgainstNew || l[0].Outcome != want ||
			l[1].Against != store.AgainstSecondary || l[1].Outcome != compare.OutcomeNoise {
			t.Errorf("GET /api/v1/comparisons?request_id=%s = %+v; want legacy→new %s, then legacy→secondary noise", id, got, want)
			continue
		}
		for _, cmp := range l {
			for _, d := range cmp.Diffs {
				if wantNoise := d.Path == "$.nonce"; d.Noise != wantNoise || (d.Path != "$.nonce" && d.Path != "$.field") {
					t.Errorf("%s legacy→%s: %s %s noise %v, want $.nonce noise and $.field real", id, cmp.Against, d.Kind, d.Path, d.Noise)
				}
			}
		}
		if i > 10 {
			continue // the CLI for a few; the API for all
		}
		var out, errb bytes.Buffer
		if code := cli(t, &out, &errb, "report", "-request", id, "-admin", "http://"+s.admin, "-config", s.cfgPath); code != 0 {
			t.Fatalf("tandem report -request %s: exit %d: %s", id, code, errb.String())
		}
		text := out.String()
		lines := strings.Split(strings.TrimSpace(text), "\n")
		if len(lines) < 4 || !strings.Contains(lines[0], "request "+id+": 2 comparisons") ||
			!strings.Contains(lines[2], "legacy → new") || !strings.Contains(lines[2], string(want)) ||
			!strings.Contains(text, "json $.nonce (noise)") {
			t.Errorf("tandem report -request %s:\n%s\nwant legacy → new %s with json $.nonce (noise)", id, text, want)
		}
		if changed(i) && (!strings.Contains(text, "json $.field\n") || strings.Contains(text, "$.field (noise)")) {
			t.Errorf("tandem report -request %s:\n%s\nwant json $.field, not noise", id, text)
		}
	}

	// The per-request records, read after a clean stop with the noise model
	// tandem saved: every early request as the final model reads it.
	c.stop()
	snap, err := os.ReadFile(filepath.Join(s.dataDir, "noise.json"))
	if err != nil {
		t.Fatal(err)
	}
	model := compare.NewLearner()
	model.Configure("up", compare.Settings{NoiseMinSamples: minSamples})
	if err := model.Restore(snap); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(s.dataDir, "store.db"), store.Options{Noise: model})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range minSamples {
		id := fmt.Sprintf("nonce-%03d", i)
		l, err := st.Comparisons(id)
		if err != nil {
			t.Fatal(err)
		}
		want := compare.OutcomeNoise
		if changed(i) {
			want = compare.OutcomeMismatch
		}
		if len(l) != 2 || l[0].Against != store.AgainstNew || l[0].Outcome != want || l[0].Instance != s.addr ||
			l[1].Against != store.AgainstSecondary || l[1].Outcome != compare.OutcomeNoise {
			t.Errorf("Comparisons(%s) = %+v; want legacy→new %s, then legacy→secondary noise, instance %s", id, l, want, s.addr)
		}
	}
}
