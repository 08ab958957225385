package app

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
	"github.com/tandem-proxy/tandem/rules"
)

// openNoiseInstance opens (without running) an instance with one route
// "up"; its admin server is driven directly.
func openNoiseInstance(t *testing.T) *Instance {
	t.Helper()
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfg, _ := loadConfig(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
backends:
  legacy: {url: %q}
  new: {url: %q}
routes: [{name: up, legacy: legacy, new: new, mirror: 100}]
`, legacy.URL, newb.URL))
	in, err := Open(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

// postNoise marks path on route "up" through the admin API.
func postNoise(t *testing.T, in *Instance, path string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "/api/v1/routes/up/noise", strings.NewReader(`{"path": "`+path+`", "reason": "test"}`))
	r.Header.Set("Authorization", "Bearer "+in.Token())
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	in.ad.ServeHTTP(w, r)
	return w
}

func noiseEvents(t *testing.T, in *Instance) []rules.Event {
	t.Helper()
	evs, err := in.State().Events(time.Time{}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []rules.Event
	for _, e := range evs {
		if e.Kind == "noise" {
			out = append(out, e)
		}
	}
	return out
}

// A mark whose noise.json cannot be written is refused with 503 saying it
// was not applied and why, and changes nothing: the learner does not
// have it, noise.json is as it was, and the audit log has no entry.
// Once the file can be written, the same mark is applied, audited and in
// noise.json.
func TestNoiseMarkNotPersistedNotApplied(t *testing.T) {
	in := openNoiseInstance(t)
	if w := postNoise(t, in, "$.first"); w.Code != 200 {
		t.Fatalf("first mark: %d %s", w.Code, w.Body.String())
	}
	before, err := os.ReadFile(in.noise.path)
	if err != nil {
		t.Fatal(err)
	}
	// noise.json's directory cannot take a new file: a regular file stands
	// where it should be (root ignores permission bits, not this).
	good := in.noise.path
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	in.noise.path = filepath.Join(blocker, "noise.json")
	w := postNoise(t, in, "$.second")
	if w.Code != 503 || !strings.Contains(w.Body.String(), "the noise mark was not applied (nothing changed): cannot create temporary file") {
		t.Fatalf("unwritable noise.json: %d %s, want 503 saying it was not applied and why", w.Code, w.Body.String())
	}
	if in.noise.learner.Noise("up", compare.KindJSON, "$.second") {
		t.Error("the refused mark is in force")
	}
	if evs := noiseEvents(t, in); len(evs) != 1 || evs[0].New != "noise $.first" {
		t.Errorf("noise events %+v, want only the first mark", evs)
	}
	in.noise.path = good
	if after, _ := os.ReadFile(good); string(after) != string(before) {
		t.Error("noise.json changed by a refused mark")
	}

	// noise.json is a directory: the new content cannot replace it. The
	// audit entry was written before the rename, so a second one says
	// that it was not applied; the learner does not have the mark.
	if err := os.Remove(good); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(good, "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	w = postNoise(t, in, "$.third")
	if w.Code != 503 || !strings.Contains(w.Body.String(), "not applied") {
		t.Fatalf("noise.json a directory: %d %s", w.Code, w.Body.String())
	}
	if in.noise.learner.Noise("up", compare.KindJSON, "$.third") {
		t.Error("the mark that could not replace noise.json is in force")
	}
	evs := noiseEvents(t, in)
	if n := len(evs); n != 3 || evs[1].New != "noise $.third" || evs[2].Old != "noise $.third" || evs[2].New != "not applied" {
		t.Errorf("noise events %+v, want the first mark, the third and its withdrawal", evs)
	}

	// Writable again: the mark applies, with its audit entry, in the file.
	if err := os.RemoveAll(good); err != nil {
		t.Fatal(err)
	}
	if w := postNoise(t, in, "$.second"); w.Code != 200 {
		t.Fatalf("mark after repair: %d %s", w.Code, w.Body.String())
	}
	if !in.noise.learner.Noise("up", compare.KindJSON, "$.second") {
		t.Error("the mark is not in force after it was persisted")
	}
	restored := compare.NewLearner()
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := restored.Restore(b); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"$.first", "$.second"} {
		if !restored.Noise("up", compare.KindJSON, p) {
			t.Errorf("noise.json lacks the mark %s", p)
		}
	}
	if restored.Noise("up", compare.KindJSON, "$.third") {
		t.Error("noise.json holds the mark that was not applied")
	}
	if evs := noiseEvents(t, in); len(evs) != 4 || evs[3].New != "noise $.second" {
		t.Errorf("noise events %+v, want the applied second mark last", evs)
	}
}

// Concurrent marks, and saves between them, lose none: every mark is in
// force and in noise.json.
func TestNoiseMarksConcurrent(t *testing.T) {
	n := &noiseFile{path: filepath.Join(t.TempDir(), "noise.json"), learner: compare.NewLearner()}
	const marks = 24
	var audited sync.Map
	var wg sync.WaitGroup
	stop := make(chan struct{})
	saves := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				saves <- nil
				return
			default:
			}
			if err := n.save(); err != nil {
				saves <- err
				return
			}
		}
	}()
	for i := 0; i < marks; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := fmt.Sprintf("$.f%d", i)
			if err := n.mark("r", p, "why", func() error { audited.Store(p, true); return nil }); err != nil {
				t.Errorf("mark %s: %v", p, err)
			}
		}(i)
	}
	wg.Wait()
	close(stop)
	if err := <-saves; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(n.path)
	if err != nil {
		t.Fatal(err)
	}
	restored := compare.NewLearner()
	if err := restored.Restore(b); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < marks; i++ {
		p := fmt.Sprintf("$.f%d", i)
		if _, ok := audited.Load(p); !ok {
			t.Errorf("%s not audited", p)
		}
		if !n.learner.Noise("r", compare.KindJSON, p) {
			t.Errorf("%s not in force", p)
		}
		if !restored.Noise("r", compare.KindJSON, p) {
			t.Errorf("%s lost from noise.json", p)
		}
	}
}
