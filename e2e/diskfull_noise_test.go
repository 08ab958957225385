package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/rules"
)

// nmBackend answers {"id": <request id>, "x": side}: legacy and new differ
// at $.x on every request.
func nmBackend(t *testing.T, side string) string {
	return startLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"x":%q}`, r.Header.Get("X-Request-Id"), side)
	}))
}

// A noise mark on a full data_dir is refused and never takes effect (the
// issue: it answered 500, was in force in memory, missing from the audit
// log and lost at restart). While the disk is full every mark that is
// answered 503 says it was not applied and leaves no audit entry, no mark
// in noise.json, and the next comparison at the path is still a mismatch;
// a restart after space is freed has no trace of it. Marked again with
// space, it applies, is audited once, and survives a restart.
func TestDiskFullNoiseMarkNotApplied(t *testing.T) {
	mnt := mountTmpfs(t, "4m")
	setup := newChildSetup(t, filepath.Join(mnt, "data"), nmBackend(t, "legacy"), nmBackend(t, "new"), "", "")
	c := startChild(t, setup)
	noiseJSON := filepath.Join(setup.dataDir, "noise.json")
	client := &http.Client{Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()

	const (
		mMismatch = `tandem_compare_total{route="up",result="mismatch"}`
		mNoise    = `tandem_compare_total{route="up",result="noise"}`
	)
	// send sends a request (differing at $.x) and returns how the
	// comparison came out when it was made: "mismatch" or "noise".
	send := func(c *child, id string) string {
		t.Helper()
		before := c.metrics()
		req, _ := http.NewRequest("GET", "http://"+setup.addr+"/item/"+id, nil)
		req.Header.Set("X-Request-Id", id)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", id, resp.StatusCode)
		}
		var m map[string]float64
		if !pollUntil(15*time.Second, func() bool {
			m = c.metrics()
			return m[mMismatch]+m[mNoise] > before[mMismatch]+before[mNoise]
		}) {
			t.Fatalf("%s: not compared\n%s", id, c.logText())
		}
		if m[mNoise] > before[mNoise] {
			return "noise"
		}
		return "mismatch"
	}
	// marksOnDisk reads noise.json's marks of route up.
	marksOnDisk := func(p string) bool {
		t.Helper()
		b, err := os.ReadFile(noiseJSON)
		if os.IsNotExist(err) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		l := compare.NewLearner()
		if err := l.Restore(b); err != nil {
			t.Fatalf("noise.json: %v", err)
		}
		return l.Noise("up", compare.KindJSON, p)
	}
	noiseEvents := func(c *child) []rules.Event {
		var out []rules.Event
		for _, e := range c.events() {
			if e.Kind == "noise" {
				out = append(out, e)
			}
		}
		return out
	}

	if got := send(c, "before-full"); got != "mismatch" {
		t.Fatalf("before any mark: %s", got)
	}

	fl := startFiller(t, filepath.Join(mnt, "filler"))
	released := false
	defer func() {
		if !released {
			fl.release(t)
		}
	}()
	if !pollUntil(15*time.Second, func() bool { return fl.enospc.Load() || fl.err.Load() != nil }) {
		t.Fatalf("the tmpfs did not fill up: %d bytes written", fl.written.Load())
	}
	if err := fl.err.Load(); err != nil {
		t.Fatalf("filler: %v", err)
	}

	// Each mark on the full disk: refused and without effect, or (should a
	// page come free between the filler's writes) applied in full. At least
	// one must be refused, or the test did not test anything.
	var refusedPaths []string
	for i := 0; i < 5 && len(refusedPaths) < 2; i++ {
		p := fmt.Sprintf("$.x%d", i)
		if i == 0 {
			p = "$.x"
		}
		st, b := c.api("POST", "/api/v1/routes/up/noise", fmt.Sprintf(`{"path": %q, "reason": "disk full test"}`, p))
		switch st {
		case 503:
			if !strings.Contains(string(b), "the noise mark was not applied (nothing changed)") || !strings.Contains(string(b), "no space left on device") {
				t.Errorf("mark %s on a full disk: %s, want it to say that it was not applied and why", p, b)
			}
			refusedPaths = append(refusedPaths, p)
		case 200:
			t.Logf("mark %s applied on the full disk (space came free): checking it is whole", p)
			if !marksOnDisk(p) {
				t.Errorf("mark %s answered 200 but is not in noise.json", p)
			}
		default:
			t.Fatalf("mark %s on a full disk: %d %s", p, st, b)
		}
	}
	if len(refusedPaths) == 0 || refusedPaths[0] != "$.x" {
		t.Fatalf("marks refused on the full disk: %v, want $.x among them", refusedPaths)
	}
	for _, p := range refusedPaths {
		if marksOnDisk(p) {
			t.Errorf("refused mark %s is in noise.json", p)
		}
		for _, e := range noiseEvents(c) {
			if e.New == "noise "+p {
				t.Errorf("refused mark %s has an audit entry: %+v", p, e)
			}
		}
	}
	// Not in force: the next comparison at $.x is still a mismatch.
	if got := send(c, "while-full"); got != "mismatch" {
		t.Errorf("after the refused mark of $.x: %s, want mismatch (the mark must not be in force)", got)
	}

	fl.release(t)
	released = true
	c.stop()
	c = startChild(t, setup)
	if got := send(c, "after-restart"); got != "mismatch" {
		t.Errorf("after a restart: %s, want mismatch (no trace of the refused mark)", got)
	}
	if evs := noiseEvents(c); len(evs) != 0 {
		for _, e := range evs {
			for _, p := range refusedPaths {
				if e.New == "noise "+p {
					t.Errorf("after a restart, the refused mark %s has an audit entry: %+v", p, e)
				}
			}
		}
	}

	// With space: applied, audited once, in force, and kept at restart.
	if st, b := c.api("POST", "/api/v1/routes/up/noise", `{"path": "$.x", "reason": "with space"}`); st != 200 {
		t.Fatalf("mark with space: %d %s", st, b)
	}
	if !marksOnDisk("$.x") {
		t.Error("the applied mark is not in noise.json")
	}
	if got := send(c, "marked"); got != "noise" {
		t.Errorf("after the applied mark: %s, want noise", got)
	}
	c.stop()
	c = startChild(t, setup)
	if got := send(c, "marked-after-restart"); got != "noise" {
		t.Errorf("the applied mark after a restart: %s, want noise", got)
	}
	n := 0
	for _, e := range noiseEvents(c) {
		if e.New == "noise $.x" {
			n++
			if e.Reason != "with space" {
				t.Errorf("audit entry of $.x: %+v, want the applied mark's", e)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d audit entries for the mark of $.x, want 1 (the applied one)", n)
	}
	c.stop()
}
