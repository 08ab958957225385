package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/app"
	"github.com/tandem-proxy/tandem/compare"
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

// tandem report -request against a real instance: the request's two
// comparisons (legacy → new, legacy → secondary) as a table, and as the
// API's JSON; after $.nonce is marked as noise the same records read with
// the mark — outcomes and (noise) flags are the model's now.
func TestReportRequestLookup(t *testing.T) {
	r := startLookupRig(t)
	const id = "cli-req-1"
	req, _ := http.NewRequest("GET", "http://"+r.in.Addr()+"/item/1", nil)
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		cs, err := r.in.Store().Comparisons(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d comparisons of %s recorded in 15 s, want 2", len(cs), id)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// rows returns the table's comparison lines, by what they are against,
	// each with its pair lines.
	rows := func(out string) map[string]string {
		t.Helper()
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if len(lines) < 4 || lines[0] != "request "+id+": 2 comparisons (outcomes as the noise model reads them now)" ||
			!strings.HasPrefix(lines[1], "TIME (UTC)") {
			t.Fatalf("table:\n%s", out)
		}
		got := map[string]string{}
		last := ""
		for _, l := range lines[2:] {
			f := strings.Fields(l)
			switch {
			case strings.Contains(l, "legacy → "):
				// TIME(2) ROUTE INSTANCE legacy → AGAINST OUTCOME SAMPLE PAIR...
				if len(f) < 10 || f[2] != "items" || !strings.HasPrefix(f[3], "127.0.0.1:") {
					t.Fatalf("row %q", l)
				}
				last = f[6]
				got[last] = strings.Join(f[7:], " ")
			case last != "":
				got[last] += " | " + strings.Join(f, " ")
			}
		}
		return got
	}
	code, out, errs := r.report("-request", id)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	got := rows(out)
	// Nothing learned yet: the nonces are real differences.
	if g := got["new"]; !strings.HasPrefix(g, "mismatch ") || !strings.HasSuffix(g, "json $.nonce | json $.x") {
		t.Errorf("legacy → new before the mark: %q\n%s", g, out)
	}
	if g := got["secondary"]; g != "mismatch - json $.nonce" {
		t.Errorf("legacy → secondary before the mark: %q\n%s", g, out)
	}

	st, body := r.api("POST", "/api/v1/routes/items/noise", `{"path": "$.nonce", "reason": "random per answer"}`)
	if st != 200 {
		t.Fatalf("mark: %d %s", st, body)
	}
	code, out, errs = r.report("-request", id)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	got = rows(out)
	if g := got["new"]; !strings.HasPrefix(g, "mismatch ") || !strings.HasSuffix(g, "json $.nonce (noise) | json $.x") {
		t.Errorf("legacy → new after the mark: %q\n%s", g, out)
	}
	if g := got["secondary"]; g != "noise - json $.nonce (noise)" {
		t.Errorf("legacy → secondary after the mark: %q\n%s", g, out)
	}

	// -json is the API's answer.
	code, out, _ = r.report("-request", id, "-json")
	var ans comparisonsAnswer
	if err := json.Unmarshal([]byte(out), &ans); code != 0 || err != nil || ans.RequestID != id || len(ans.Comparisons) != 2 {
		t.Fatalf("-json: exit %d, %v: %s", code, err, out)
	}
	for _, c := range ans.Comparisons {
		want := map[string]compare.Outcome{"new": compare.OutcomeMismatch, "secondary": compare.OutcomeNoise}[c.Against]
		if c.Outcome != want || c.RequestID != id || c.Route != "items" {
			t.Errorf("-json: %+v, want outcome %s", c, want)
		}
	}
}

// api calls the rig's admin API with its token.
func (r *lookupRig) api(method, path, body string) (int, string) {
	req, _ := http.NewRequest(method, "http://"+r.in.AdminAddr()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.in.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
