package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-proxy/tandem/app"
	"github.com/tandem-proxy/tandem/config"
)

// lookupRig is a running tandem (app.Open + Run) in front of JSON backends
// legacy, new and legacy2 (the route's secondary): every answer carries a
// random-looking nonce of its own, and new's $.x differs from legacy's.
type lookupRig struct {
	in      *app.Instance
	cfgPath string
}

func startLookupRig(t *testing.T) *lookupRig {
	t.Helper()
	backend := func(side string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			x := "same"
			if side == "new" {
				x = "changed"
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id": %q, "nonce": "%s-%s", "x": %q}`, r.Header.Get("X-Request-Id"), side, r.Header.Get("X-Request-Id"), x)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tandem.yaml")
	text := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: %s
backends:
  legacy: {url: %q}
  legacy2: {url: %q}
  new: {url: %q}
routes:
  - name: items
    match: {path_prefix: /}
    legacy: legacy
    new: new
    secondary: legacy2
    mirror: 100
`, filepath.Join(dir, "data"), backend("legacy"), backend("legacy2"), backend("new"))
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, errs := config.Load(cfgPath)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	log, _ := newLogger("text", io.Discard)
	in, err := app.Open(cfg, app.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		in.Close()
	})
	return &lookupRig{in: in, cfgPath: cfgPath}
}

// report runs `tandem report` with args against the rig's admin API.
func (r *lookupRig) report(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(append([]string{"report", "-admin", "http://" + r.in.AdminAddr(), "-config", r.cfgPath}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// tandem report -request against a real admin server: bad ids are the
// API's 400 (one line on stderr, exit 1), misuse of the flags is exit 2,
// and an id with no comparisons says so.
func TestReportRequestRefusals(t *testing.T) {
	r := startLookupRig(t)
	for _, c := range []struct {
		why    string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"an id of 300 bytes", []string{"-request", strings.Repeat("r", 300)}, 1, "",
			"tandem report: admin API refused (400): request_id is 300 bytes; at most 256 are accepted\n"},
		{"-request without an id", []string{"-request", ""}, 2, "", "tandem report: -request needs a request id\n"},
		{"-request with -route", []string{"-request", "x", "-route", "items"}, 2, "", "-request looks up one request; it takes no -route or -since"},
		{"an unknown id", []string{"-request", "nobody"}, 0, `no comparisons recorded for request "nobody"`, ""},
		{"an unknown id as JSON", []string{"-request", "nobody", "-json"}, 0, `"comparisons": []`, ""},
	} {
		code, out, errs := r.report(c.args...)
		if code != c.code || !strings.Contains(out, c.stdout) || !strings.Contains(errs, c.stderr) || (c.stderr == "" && errs != "") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q", c.why, code, out, errs, c.code, c.stdout, c.stderr)
		}
		if c.code == 1 && strings.Count(errs, "\n") != 1 {
			t.Errorf("%s: stderr %q is not one line", c.why, errs)
		}
	}
}
