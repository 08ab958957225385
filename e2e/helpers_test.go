// The helpers several of the package's tests share: the CLI runner, tandem
// in-process (app.Open) and as a child process, and small waits.

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/app"
	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/internal/realservers"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/rulestore"
	"github.com/tandem-proxy/tandem/store"
)

// cli runs the tandem binary with args (a client verb such as report,
// promote or rollback) in the test's environment, appends what it writes to
// out and errb, and returns its exit code.
func cli(t *testing.T, out, errb *bytes.Buffer, args ...string) int {
	t.Helper()
	cmd := exec.Command(tandemBin, args...)
	cmd.Stdout, cmd.Stderr = out, errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.Fatalf("cannot run tandem %v: %v", args, err)
	return -1
}

// inproc is `tandem serve` running inside the test process.
type inproc struct {
	t          *testing.T
	run        *app.Instance
	cfgPath    string
	dataDir    string
	cancel     context.CancelFunc // stops Run, as SIGTERM does in cmd/tandem
	done       chan error
	stopped    bool
	logs       *lockedWriter
	apiBase    string
	proxyBase  string
	httpClient *http.Client
}

func startInProcess(t *testing.T, cfgText, dataDir string) *inproc {
	t.Helper()
	dir := t.TempDir()
	if dataDir == "" {
		dataDir = filepath.Join(dir, "data")
	}
	cfgText = strings.ReplaceAll(cfgText, "{{data}}", dataDir)
	p := &inproc{t: t, cfgPath: filepath.Join(dir, "tandem.yaml"), dataDir: dataDir,
		done: make(chan error, 1), logs: &lockedWriter{b: &strings.Builder{}},
		httpClient: &http.Client{Timeout: 30 * time.Second}}
	if err := os.WriteFile(p.cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, errs := config.Load(p.cfgPath)
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	log := slog.New(slog.NewTextHandler(p.logs, nil))
	in, err := app.Open(cfg, app.Options{ConfigPath: p.cfgPath, Logger: log})
	if err != nil {
		t.Fatalf("serve failed: %v\n%s", err, p.logs.String())
	}
	p.run = in
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { // what cmd/tandem's serveUntil does between the signals
		err := in.Run(ctx)
		if cerr := in.Close(); err == nil {
			err = cerr
		}
		p.done <- err
	}()
	p.apiBase = "http://" + p.run.AdminAddr()
	p.proxyBase = "http://" + p.run.Addr()
	t.Cleanup(p.stop)
	return p
}

// writeConfig replaces the config file (with {{data}} filled in).
func (p *inproc) writeConfig(text string) {
	p.t.Helper()
	if err := os.WriteFile(p.cfgPath, []byte(strings.ReplaceAll(text, "{{data}}", p.dataDir)), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

func (p *inproc) stop() {
	if p.stopped {
		return
	}
	p.stopped = true
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		p.t.Error("serve did not stop")
	}
}

// api calls the admin API; token "" means the right one.
func (p *inproc) api(method, path, token, ctype, body string, hdr ...string) (int, []byte) {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.apiBase+path, strings.NewReader(body))
	if token == "" {
		token = p.run.Token()
	}
	if token != "-" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := p.httpClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (p *inproc) rules() rules.Rules {
	p.t.Helper()
	st, b := p.api("GET", "/api/v1/rules", "", "", "")
	if st != 200 {
		p.t.Fatalf("GET rules: %d %s", st, b)
	}
	var r rules.Rules
	if err := json.Unmarshal(b, &r); err != nil {
		p.t.Fatal(err)
	}
	return r
}

func (p *inproc) events() []rules.Event {
	p.t.Helper()
	st, b := p.api("GET", "/api/v1/events", "", "", "")
	if st != 200 {
		p.t.Fatalf("GET events: %d %s", st, b)
	}
	var out struct{ Events []rules.Event }
	json.Unmarshal(b, &out)
	return out.Events
}

const apiConfig = `
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
backends:
  legacy: {url: "%s"}
  new: {url: "%s"}
routes:
  - name: images
    match: {path_prefix: /upload}
    legacy: legacy
    new: new
    sticky: header:X-User-Id
`

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// childSetup is a config file for `tandem serve` children.
type childSetup struct {
	cfgPath, dataDir string
	addr, admin      string // 127.0.0.1:port, fixed so a restart keeps them
}

// newChildSetup writes a config with one route "up" (prefix /, legacy and
// new, mirror 100). top is YAML added at the top level (limits, ...);
// route is YAML added to the route (indented 4 spaces).
func newChildSetup(t *testing.T, dataDir, legacyURL, newURL, top, route string) childSetup {
	t.Helper()
	dir := t.TempDir()
	if dataDir == "" {
		dataDir = filepath.Join(dir, "data")
	}
	s := childSetup{cfgPath: filepath.Join(dir, "tandem.yaml"), dataDir: dataDir, addr: freeAddr(t), admin: freeAddr(t)}
	cfg := fmt.Sprintf(`listen: %s
admin: {listen: %s}
data_dir: %s
shutdown_timeout: 20s
%s
backends:
  legacy: {url: %q, timeout: 30s}
  new: {url: %q, timeout: 30s}
routes:
  - name: up
    match: {path_prefix: /}
    legacy: legacy
    new: new
    mirror: 100
%s
`, s.addr, s.admin, dataDir, top, legacyURL, newURL, route)
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// child is one running `tandem serve` process.
type child struct {
	t      *testing.T
	s      childSetup
	cmd    *exec.Cmd
	logs   *lockedWriter
	done   chan error // receives the exit once; exitErr keeps it
	exited atomic.Bool
	exitMu sync.Mutex
	exit   error
	token  string
	hc     *http.Client
}

// startChild runs `tandem serve` on s and waits until /healthz answers; the
// admin token is read from <data_dir>/admin.token. The process is killed at
// cleanup if still running.
func startChild(t *testing.T, s childSetup) *child {
	t.Helper()
	c := &child{t: t, s: s, logs: &lockedWriter{b: &strings.Builder{}}, done: make(chan error, 1),
		hc: &http.Client{Timeout: 20 * time.Second}}
	c.cmd = exec.Command(tandemBin, "serve", "-config", s.cfgPath)
	c.cmd.Stderr = c.logs
	c.cmd.Env = withoutEnv(os.Environ(), "TANDEM_ADMIN_TOKEN")
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := c.cmd.Wait()
		c.exitMu.Lock()
		c.exit = err
		c.exitMu.Unlock()
		c.exited.Store(true)
		close(c.done)
	}()
	t.Cleanup(func() {
		if !c.exited.Load() {
			c.cmd.Process.Kill()
		}
		<-c.done
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + s.admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if c.exited.Load() {
			t.Fatalf("tandem exited at start-up (%v):\n%s", c.exitErr(), c.logText())
		}
		if time.Now().After(deadline) {
			t.Fatalf("tandem did not start in 15s:\n%s", c.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(s.dataDir, "admin.token"))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	c.token = strings.TrimSpace(string(b))
	return c
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, name+"=") {
			out = append(out, e)
		}
	}
	return out
}

func (c *child) exitErr() error {
	c.exitMu.Lock()
	defer c.exitMu.Unlock()
	return c.exit
}

func (c *child) logText() string { return c.logs.String() }

// kill9 sends SIGKILL and waits for the process to be gone.
func (c *child) kill9() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatal("tandem did not die after SIGKILL")
	}
}

// stop sends SIGTERM and requires a clean exit 0.
func (c *child) stop() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(40 * time.Second):
		c.t.Fatalf("tandem did not exit within 40s of SIGTERM:\n%s", c.logText())
	}
	if err := c.exitErr(); err != nil {
		c.t.Fatalf("tandem exited with %v after SIGTERM:\n%s", err, c.logText())
	}
	if !strings.Contains(c.logText(), "tandem stopped") {
		c.t.Fatalf("no clean stop in the log:\n%s", c.logText())
	}
}

// apiErr calls the admin API with the token. Safe from any goroutine.
func (c *child) apiErr(method, path, body string, hdr ...string) (int, []byte, error) {
	req, err := http.NewRequest(method, "http://"+c.s.admin+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if method == "POST" || method == "PUT" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// api is apiErr for the test goroutine: a transport error fails the test.
func (c *child) api(method, path, body string, hdr ...string) (int, []byte) {
	c.t.Helper()
	st, b, err := c.apiErr(method, path, body, hdr...)
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", method, path, err, c.logText())
	}
	return st, b
}

// getJSON GETs an API path that must answer 200 and decodes it into v.
func (c *child) getJSON(path string, v any) {
	c.t.Helper()
	st, b := c.api("GET", path, "")
	if st != 200 {
		c.t.Fatalf("GET %s: %d %s", path, st, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.t.Fatalf("GET %s: %v\n%s", path, err, b)
	}
}

func (c *child) report() store.RouteReport {
	c.t.Helper()
	var out struct{ Routes []store.RouteReport }
	c.getJSON("/api/v1/report?route=up", &out)
	if len(out.Routes) != 1 {
		c.t.Fatalf("report has %d routes, want 1: %+v", len(out.Routes), out.Routes)
	}
	return out.Routes[0]
}

func (c *child) rules() rules.Rules {
	c.t.Helper()
	var r rules.Rules
	c.getJSON("/api/v1/rules", &r)
	return r
}

func (c *child) events() []rules.Event {
	c.t.Helper()
	var out struct{ Events []rules.Event }
	c.getJSON("/api/v1/events?limit=10000", &out)
	return out.Events
}

func (c *child) diffs() []store.SampleSummary {
	c.t.Helper()
	var out struct{ Diffs []store.SampleSummary }
	c.getJSON("/api/v1/diffs?limit=1000", &out)
	return out.Diffs
}

// metrics returns every sample of the admin /metrics page by series
// ("name{labels}" as written).
func (c *child) metrics() map[string]float64 {
	c.t.Helper()
	return scrapeMetrics(c.t, c.s.admin)
}

// scrapeMetrics reads every sample of tandem's /metrics at admin, keyed by
// its full series text (name{labels}).
func scrapeMetrics(t testing.TB, admin string) map[string]float64 {
	t.Helper()
	out, err := readMetrics(http.DefaultClient, admin)
	if err != nil {
		t.Fatalf("cannot read tandem's metrics: %v", err)
	}
	return out
}

// readMetrics is scrapeMetrics through hc, returning the error: for
// goroutines other than the test's.
func readMetrics(hc *http.Client, admin string) (map[string]float64, error) {
	resp, err := hc.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// pollUntil calls cond every 25 ms until it is true or d has passed; it
// returns whether cond became true.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// readRulesFile parses <data_dir>/rules.json as the rules state file.
func readRulesFile(dataDir string) (rules.Rules, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, rulestore.RulesFile))
	if err != nil {
		return rules.Rules{}, err
	}
	var sf struct {
		Version int64         `json:"version"`
		Routes  []rules.Route `json:"routes"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&sf); err != nil {
		return rules.Rules{}, fmt.Errorf("rules.json does not parse (%v): %q", err, b)
	}
	if dec.More() {
		return rules.Rules{}, fmt.Errorf("rules.json has data after the document: %q", b)
	}
	if sf.Version < 1 || len(sf.Routes) == 0 {
		return rules.Rules{}, fmt.Errorf("rules.json is not a rules document: %q", b)
	}
	return rules.Rules{Version: sf.Version, Routes: sf.Routes}, nil
}

// checkSamplesWhole requires every sample the API lists to resolve with
// both sides' status, and every example id of the report to resolve too.
// It returns the samples.
func checkSamplesWhole(t *testing.T, c *child, rep store.RouteReport) []store.Sample {
	t.Helper()
	var out []store.Sample
	for _, s := range c.diffs() {
		st, b := c.api("GET", "/api/v1/diffs/"+s.ID, "")
		if st != 200 {
			t.Errorf("listed sample %s does not resolve: %d %s", s.ID, st, b)
			continue
		}
		var x store.Sample
		if err := json.Unmarshal(b, &x); err != nil {
			t.Errorf("sample %s: %v", s.ID, err)
			continue
		}
		if x.ID != s.ID || x.Route != "up" || x.RequestID == "" || x.Legacy.Status == 0 || x.New.Status == 0 ||
			len(x.Diffs) == 0 || x.Legacy.Status != s.LegacyStatus || x.New.Status != s.NewStatus {
			t.Errorf("half-written sample %s: listed %+v, stored id=%s route=%s rid=%q legacy=%d new=%d diffs=%d",
				s.ID, s, x.ID, x.Route, x.RequestID, x.Legacy.Status, x.New.Status, len(x.Diffs))
		}
		out = append(out, x)
	}
	for _, p := range rep.Diffs {
		if p.ExampleID == "" {
			continue
		}
		if st, b := c.api("GET", "/api/v1/diffs/"+p.ExampleID, ""); st != 200 {
			t.Errorf("report example %s for %s %s does not resolve: %d %s", p.ExampleID, p.Kind, p.Path, st, b)
		}
	}
	return out
}

// startLoopbackServer serves h on 127.0.0.1 until the test ends.
func startLoopbackServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return "http://" + ln.Addr().String()
}

// lockedWriter collects a child's or a logger's output from any goroutine.
type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// freeAddr returns a free 127.0.0.1 port.
func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(realservers.FreePort(t)))
}

// startServe runs `tandem serve` as a child process with a route "up" (prefix
// /, legacy and new, mirror 100) and waits until it answers; route is YAML
// added to the route.
func startServe(t *testing.T, legacyURL, newURL, route string) *child {
	t.Helper()
	return startChild(t, newChildSetup(t, "", legacyURL, newURL, "", route))
}
