package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/app"
	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/ramp"
)

// startFieldBackend answers {"v": 1}, or {"v": 2} when the body is "bad".
func startFieldBackend(t *testing.T, wrongOnBad bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		v := 1
		if wrongOnBad && string(b) == "bad" {
			v = 2
		}
		fmt.Fprintf(w, `{"v": %d}`, v)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// tandem status against a real admin server (app.Open on loopback): each
// route's split, its ramp step and state, and every gate with value, bound
// and limit, in text and in -json, agreeing with each other and with the
// Wilson bound of the counts; an unknown route is a one-line error.
func TestStatusShowsGates(t *testing.T) {
	legacy, newb := startFieldBackend(t, false), startFieldBackend(t, true)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tandem.yaml")
	cfgText := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: %s
backends:
  legacy: {url: %q}
  new: {url: %q}
routes:
  - name: upload
    match: {path_prefix: /upload}
    legacy: legacy
    new: new
    ramp: {steps: [50, 100], hold: 1h, min_compared: 20, max_diff_rate: 0.1, max_error_rate: 0.5, max_latency_ratio: 1000}
  - name: other
    match: {path_prefix: /}
    legacy: legacy
    new: new
`, filepath.Join(dir, "data"), legacy, newb)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, cerrs := config.Load(cfgPath)
	if len(cerrs) > 0 {
		t.Fatalf("config: %v", cerrs)
	}
	log, _ := newLogger("text", io.Discard)
	in, err := app.Open(cfg, app.Options{ConfigPath: cfgPath, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; in.Close() })

	// 40 uploads, 10 of them answered wrongly by new: diff rate 0.25.
	hc := &http.Client{Timeout: 10 * time.Second}
	var bad atomic.Int64
	for i := 0; i < 40; i++ {
		body := "ok"
		if i%4 == 0 {
			body = "bad"
			bad.Add(1)
		}
		resp, err := hc.Post("http://"+in.Addr()+"/upload", "application/octet-stream", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	status := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"status", "-admin", "http://" + in.AdminAddr(), "-config", cfgPath}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	type jsonOut struct {
		Routes []statusRoute `json:"routes"`
	}
	var got jsonOut
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, errs := status("upload", "-json")
		if code != 0 {
			t.Fatalf("status -json: exit %d, stderr %q", code, errs)
		}
		got = jsonOut{}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("status -json: %v\n%s", err, out)
		}
		if len(got.Routes) == 1 && got.Routes[0].Ramp != nil && len(got.Routes[0].Ramp.Gates) == 3 && got.Routes[0].Ramp.Gates[0].Samples == 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ramp's gates never counted the 40 comparisons: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := got.Routes[0]
	if r.Name != "upload" || r.ServeNew != 0 || r.Mirror != 100 || r.ServedLegacy != 40 || r.ServedNewShare != 0 ||
		len(r.Breakers) != 2 || r.Breakers["legacy"] != "closed" || r.Breakers["new"] != "closed" {
		t.Errorf("route %+v", r)
	}
	if r.Ramp.State != "waiting" || r.Ramp.NextStep != 50 {
		t.Errorf("ramp state %q next %v, want waiting for 50", r.Ramp.State, r.Ramp.NextStep)
	}
	diff := r.Ramp.Gates[0]
	lo, hi := ramp.Wilson(bad.Load(), 40, ramp.Z)
	if diff.Name != "diff_rate" || diff.Value != 0.25 || math.Abs(diff.Bound-hi) > 1e-12 || math.Abs(diff.Lower-lo) > 1e-12 ||
		diff.Limit != 0.1 || diff.MinSamples != 20 || diff.State != ramp.GateFail {
		t.Errorf("diff gate %+v; want 0.25 with bounds [%v, %v], limit 0.1, fail", diff, lo, hi)
	}
	// At 0% a failing gate holds the ramp, and the decision says why.
	if r.Ramp.Last == nil || r.Ramp.Last.Action != ramp.ActionWait || !strings.Contains(r.Ramp.Last.Reason, "before the first step") {
		t.Errorf("last decision %+v", r.Ramp.Last)
	}
	if g := r.Ramp.Gates[1]; g.Name != "error_rate" || g.Samples != 40 || g.Value != 0 || g.Limit != 0.5 || g.State != ramp.GatePass {
		t.Errorf("error gate %+v", g)
	}
	if g := r.Ramp.Gates[2]; g.Name != "latency_ratio" || g.Limit != 1000 || g.State != ramp.GatePass {
		t.Errorf("latency gate %+v", g)
	}

	// The text says the same numbers.
	code, out, errs := status()
	if code != 0 {
		t.Fatalf("status: exit %d, stderr %q", code, errs)
	}
	t.Logf("tandem status:\n%s", out)
	for _, want := range []string{
		"route upload\n",
		"serve_new 0%   mirror 100%   served by new 0.0% (0 of 40, since start)",
		"ramp: not started (0%), next 50%, waiting; held",
		"last decision: wait: holding at 0% before the first step",
		"gate           value",
		"route other\n",
		"ramp: none (promoted by hand)",
		"  breakers: legacy closed, new closed\n",
		"\nlast events:\n",
		`file  seed  -  upload: added (serve_new 0, mirror 100)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	// Each gate's row: name, value, bound, limit, samples, state.
	row := regexp.MustCompile(`(?m)^  diff_rate +0\.25 +` + regexp.QuoteMeta(num(hi)) + ` +0\.1 +40 \(min 20\) +fail$`)
	if !row.MatchString(out) {
		t.Errorf("no diff_rate row with value 0.25, bound %s, limit 0.1, 40 samples, fail:\n%s", num(hi), out)
	}
	errRow := regexp.MustCompile(`(?m)^  error_rate +0 +` + regexp.QuoteMeta(num(r.Ramp.Gates[1].Bound)) + ` +0\.5 +40 \(min 20\) +pass$`)
	latRow := regexp.MustCompile(`(?m)^  latency_ratio +[0-9.]+ +[0-9.]+ +1000 +40 \(min 20\) +pass$`)
	if !errRow.MatchString(out) || !latRow.MatchString(out) {
		t.Errorf("error_rate or latency_ratio row missing:\n%s", out)
	}

	code, _, errs = status("nosuch")
	if code != 1 || !strings.Contains(errs, `tandem status: no route "nosuch" (routes: upload, other)`) || strings.Count(errs, "\n") != 1 {
		t.Errorf("unknown route: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := status("a", "b"); code != 2 || !strings.Contains(errs, "at most one ROUTE") {
		t.Errorf("two routes: exit %d, stderr %q", code, errs)
	}
}
