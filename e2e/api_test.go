package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	tb "github.com/tandem-proxy/tandem/internal/testbackend"
	"github.com/tandem-proxy/tandem/rules"
)

func apiFixture(t *testing.T) *inproc {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	return startInProcess(t, fmt.Sprintf(apiConfig, legacy.URL, newb.URL), "")
}

// Every mutating endpoint refuses a missing token, a wrong token, GET and a
// text/plain body; the rules file is byte-identical after each refusal.
func TestMutationsRefused(t *testing.T) {
	p := apiFixture(t)
	before, err := os.ReadFile(filepath.Join(p.dataDir, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	mutations := []struct{ method, path, body string }{
		{"PUT", "/api/v1/rules", string(mustJSON(p.rules()))},
		{"POST", "/api/v1/routes/images/promote", `{"percent": 25, "reason": "x"}`},
		{"POST", "/api/v1/routes/images/rollback", `{"reason": "x"}`},
		{"POST", "/api/v1/routes/images/noise", `{"path": "$.id", "reason": "x"}`},
	}
	for _, m := range mutations {
		cases := []struct {
			why, method, token, ctype string
			want                      int
		}{
			{"no token", m.method, "-", "application/json", 401},
			{"wrong token", m.method, "0123456789abcdef0123456789abcdef", "application/json", 401},
			{"GET on a mutating path", "GET", "", "", 405},
			{"text/plain body", m.method, "", "text/plain", 415},
		}
		for _, c := range cases {
			if c.method == "GET" && m.path == "/api/v1/rules" {
				continue // GET /api/v1/rules reads the rules
			}
			st, b := p.api(c.method, m.path, c.token, c.ctype, m.body, "If-Match", "1")
			if st != c.want {
				t.Errorf("%s %s (%s): %d %s, want %d", c.method, m.path, c.why, st, b, c.want)
			}
			after, _ := os.ReadFile(filepath.Join(p.dataDir, "rules.json"))
			if !bytes.Equal(before, after) {
				t.Fatalf("%s %s (%s) changed the rules file", c.method, m.path, c.why)
			}
		}
	}
	// Reads need the token too; probes do not.
	if st, _ := p.api("GET", "/api/v1/report", "-", "", ""); st != 401 {
		t.Errorf("report without token: %d", st)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if st, _ := p.api("GET", path, "-", "", ""); st != 200 {
			t.Errorf("%s: %d", path, st)
		}
	}
	if st, b := p.api("POST", "/api/v1/routes/nope/promote", "", "application/json", `{"percent": 5}`); st != 404 {
		t.Errorf("unknown route: %d %s", st, b)
	}
	if st, b := p.api("POST", "/api/v1/routes/images/promote", "", "application/json", `{"percent": 101}`); st != 400 || !strings.Contains(string(b), "0..100") {
		t.Errorf("percent 101: %d %s", st, b)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// 50 parallel promote calls with versions: stale ones get 409, the final
// state equals the last accepted write, the persisted file parses.
func TestConcurrentVersionedUpdates(t *testing.T) {
	p := apiFixture(t)
	v0 := p.rules().Version
	var (
		mu       sync.Mutex
		accepted []rules.Rules
		stale    int
		wg       sync.WaitGroup
	)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := fmt.Sprintf(`{"percent": %d, "reason": "worker %d"}`, i+1, i)
			st, b := p.api("POST", "/api/v1/routes/images/promote", "", "application/json", body, "If-Match", fmt.Sprint(v0))
			mu.Lock()
			defer mu.Unlock()
			switch st {
			case 200:
				var r rules.Rules
				json.Unmarshal(b, &r)
				accepted = append(accepted, r)
			case 409:
				stale++
			default:
				t.Errorf("status %d %s", st, b)
			}
		}(i)
	}
	wg.Wait()
	// promote ignores If-Match? Then all 50 are accepted; either way the
	// final state must be the highest accepted version.
	if len(accepted)+stale != 50 || len(accepted) == 0 {
		t.Fatalf("accepted %d stale %d", len(accepted), stale)
	}
	last := accepted[0]
	for _, r := range accepted {
		if r.Version > last.Version {
			last = r
		}
	}
	cur := p.rules()
	if cur.Version != last.Version || cur.Routes[0].ServeNew != last.Routes[0].ServeNew {
		t.Fatalf("final %d/%v, last accepted %d/%v", cur.Version, cur.Routes[0].ServeNew, last.Version, last.Routes[0].ServeNew)
	}
	b, _ := os.ReadFile(filepath.Join(p.dataDir, "rules.json"))
	var persisted rules.Rules
	if err := json.Unmarshal(b, &persisted); err != nil || persisted.Version != cur.Version {
		t.Fatalf("persisted rules: %v version %d", err, persisted.Version)
	}

	// PUT with If-Match: exactly one of two writers with the same version wins.
	doc := p.rules()
	doc.Routes[0].Mirror = 50
	body := string(mustJSON(doc))
	st1, _ := p.api("PUT", "/api/v1/rules", "", "application/json", body, "If-Match", fmt.Sprint(doc.Version))
	st2, b2 := p.api("PUT", "/api/v1/rules", "", "application/json", body, "If-Match", fmt.Sprint(doc.Version))
	if st1 != 200 || st2 != 409 {
		t.Fatalf("PUT twice with one version: %d then %d %s", st1, st2, b2)
	}
	if st, b := p.api("PUT", "/api/v1/rules", "", "application/json", `{"routes":[{"name":"x","legacy":"missing","serve_new":500}]}`, "If-Match", fmt.Sprint(doc.Version+1)); st != 400 ||
		!strings.Contains(string(b), "unknown backend") || !strings.Contains(string(b), "serve_new") {
		t.Fatalf("invalid PUT: %d %s", st, b)
	}
}

// promote and rollback through the CLI; rules survive a restart; a config
// edit plus SIGHUP applies; an invalid edit changes nothing.
func TestCLIPromoteRestartAndReload(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfgText := fmt.Sprintf(apiConfig, legacy.URL, newb.URL)
	p := startInProcess(t, cfgText, "")
	t.Setenv("TANDEM_ADMIN_TOKEN", p.run.Token())
	var out, errb bytes.Buffer
	if code := cli(t, &out, &errb, "promote", "images", "25", "-reason", "canary", "-admin", p.apiBase); code != 0 {
		t.Fatalf("promote: %d %s", code, errb.String())
	}
	if got := p.rules().Routes[0].ServeNew; got != 25 {
		t.Fatalf("serve_new = %v after promote", got)
	}
	evs := p.events()
	if last := evs[len(evs)-1]; last.Actor != "cli" || last.Kind != "promote" || last.Reason != "canary" {
		t.Fatalf("last event %+v", last)
	}
	// The served split follows: about a quarter of users go to new.
	for i := 0; i < 200; i++ {
		req, _ := http.NewRequest("POST", p.proxyBase+"/upload", strings.NewReader("x"))
		req.Header.Set("X-User-Id", fmt.Sprintf("user-%d", i))
		resp, err := p.httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	served := 0
	for _, r := range newb.Received() {
		if !r.Shadow {
			served++
		}
	}
	if served < 25 || served > 75 {
		t.Fatalf("new served %d of 200 at 25%%", served)
	}
	// Restart on the same data_dir: the promotion survives.
	p.stop()
	p2 := startInProcess(t, cfgText, p.dataDir)
	if got := p2.rules().Routes[0].ServeNew; got != 25 {
		t.Fatalf("serve_new after restart = %v, want 25", got)
	}
	// An invalid edit changes nothing and is reported.
	v := p2.rules().Version
	p2.writeConfig(strings.Replace(cfgText, "legacy: legacy", "legacy: nope", 1))
	p2.run.Reload() // what cmd/tandem does on SIGHUP
	waitFor(t, func() bool {
		evs := p2.events()
		return len(evs) > 0 && evs[len(evs)-1].Kind == "reload_error" &&
			strings.Contains(fmt.Sprint(evs[len(evs)-1].Details), `unknown backend "nope"`)
	})
	if r := p2.rules(); r.Version != v || r.Routes[0].ServeNew != 25 {
		t.Fatalf("invalid edit changed rules: %+v", r)
	}
	// A valid edit applies as a new version with actor file.
	p2.writeConfig(strings.Replace(cfgText, "sticky: header:X-User-Id", "sticky: header:X-User-Id\n    mirror: 10", 1))
	p2.run.Reload() // what cmd/tandem does on SIGHUP
	waitFor(t, func() bool { return p2.rules().Routes[0].Mirror == 10 })
	evs = p2.events()
	if last := evs[len(evs)-1]; last.Actor != "file" {
		t.Fatalf("reload event %+v", last)
	}
	if code := cli(t, &out, &errb, "rollback", "images", "-admin", p2.apiBase); code != 0 {
		t.Fatalf("rollback: %d %s", code, errb.String())
	}
	if got := p2.rules().Routes[0].ServeNew; got != 0 {
		t.Fatalf("serve_new after rollback = %v", got)
	}
}

// Client verbs fail with one line and a non-zero exit when the admin API is
// unreachable or refuses.
func TestClientVerbErrors(t *testing.T) {
	p := apiFixture(t)
	t.Setenv("TANDEM_ADMIN_TOKEN", "0123456789abcdef0123")
	var out, errb bytes.Buffer
	code := cli(t, &out, &errb, "report", "-admin", "http://127.0.0.1:1")
	if code != 1 || strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), "unreachable") {
		t.Fatalf("unreachable: exit %d %q", code, errb.String())
	}
	errb.Reset()
	code = cli(t, &out, &errb, "promote", "images", "5", "-admin", p.apiBase)
	if code != 1 || !strings.Contains(errb.String(), "401") {
		t.Fatalf("wrong token: exit %d %q", code, errb.String())
	}
}

// A path marked as noise through the API is applied to new comparisons,
// audited, and survives a restart.
func TestNoiseMarkPersists(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfgText := fmt.Sprintf(apiConfig, legacy.URL, newb.URL)
	p := startInProcess(t, cfgText, "")
	for _, path := range []string{"$.shadow", "$.header.X-Backend"} {
		if st, b := p.api("POST", "/api/v1/routes/images/noise", "", "application/json", fmt.Sprintf(`{"path": %q, "reason": "differs by design"}`, path)); st != 200 {
			t.Fatalf("mark %s: %d %s", path, st, b)
		}
	}
	if st, b := p.api("POST", "/api/v1/routes/images/noise", "", "application/json", `{"path": "$.[", "reason": "x"}`); st != 400 {
		t.Fatalf("bad path: %d %s", st, b)
	}
	evs := p.events()
	if last := evs[len(evs)-1]; last.Kind != "noise" || last.Route != "images" || last.Reason != "differs by design" {
		t.Fatalf("last event %+v", last)
	}
	p.stop()
	p2 := startInProcess(t, cfgText, p.dataDir)
	resp, err := p2.httpClient.Post(p2.proxyBase+"/upload", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, func() bool {
		cs := p2.run.Proxy().Counters()["images"]
		return cs.Compare["noise"] == 1
	})
}

// Editing the config file on disk (no SIGHUP) replaces the routes as a new
// version with actor "file".
func TestConfigFileChangeOnDiskReloads(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfgText := fmt.Sprintf(apiConfig, legacy.URL, newb.URL)
	p := startInProcess(t, cfgText, "")
	v := p.rules().Version
	// Editors often write a new file and rename it over the old one.
	tmp := p.cfgPath + ".new"
	os.WriteFile(tmp, []byte(strings.ReplaceAll(strings.Replace(cfgText, "sticky: header:X-User-Id", "sticky: header:X-User-Id\n    serve_new: 12.5", 1), "{{data}}", p.dataDir)), 0o600)
	if err := os.Rename(tmp, p.cfgPath); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.rules().Routes[0].ServeNew == 12.5 })
	if r := p.rules(); r.Version != v+1 {
		t.Fatalf("version %d, want %d", r.Version, v+1)
	}
	evs := p.events()
	if last := evs[len(evs)-1]; last.Actor != "file" || last.Kind != "reload" {
		t.Fatalf("last event %+v", last)
	}
}

// A generated admin token is written to <data_dir>/admin.token and the log
// says where, never what: logs are shipped and read by people who must not
// be able to change routing.
func TestGeneratedTokenNotLogged(t *testing.T) {
	t.Setenv("TANDEM_ADMIN_TOKEN", "")
	p := apiFixture(t)
	logs := p.logs.String()
	file := filepath.Join(p.dataDir, "admin.token")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != p.run.Token() {
		t.Fatalf("admin.token holds %q, serve uses %q", b, p.run.Token())
	}
	if strings.Contains(logs, p.run.Token()) {
		t.Fatalf("the log holds the admin token:\n%s", logs)
	}
	if !strings.Contains(logs, "generated an admin token") || !strings.Contains(logs, file) {
		t.Fatalf("the log does not say where the generated token is (%s):\n%s", file, logs)
	}
}
