package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

	tb "github.com/tandem-proxy/tandem/internal/testbackend"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/rulestore"
	"github.com/tandem-proxy/tandem/store"
)

// ---------------------------------------------------------------------------
// Helpers shared by every test that runs the binary (e2e, crash, disk full,
// soak): a `tandem serve`
// child process whose config file and data_dir the test chooses, so that a
// second child can be started on the same data_dir after the first died.

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
	logs   *syncWriter
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
	c := &child{t: t, s: s, logs: &syncWriter{b: &strings.Builder{}}, done: make(chan error, 1),
		hc: &http.Client{Timeout: 20 * time.Second}}
	c.cmd = exec.Command(binPath, "serve", "-config", s.cfgPath)
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

func (c *child) logText() string {
	c.logs.mu.Lock()
	defer c.logs.mu.Unlock()
	return c.logs.b.String()
}

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
	resp, err := c.hc.Get("http://" + c.s.admin + "/metrics")
	if err != nil {
		c.t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
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
	return out
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

// lastAuditVersion is the highest new_version in <data_dir>/audit.log.
// Like the server, it skips a line that does not decode (cut by a crash).
func lastAuditVersion(dataDir string) (int64, error) {
	f, err := os.Open(filepath.Join(dataDir, rulestore.AuditFile))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var v int64
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e rules.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			v = max(v, e.NewVersion)
		}
	}
	return v, sc.Err()
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

// walkFiles calls f with the path and contents of every regular file under dir.
func walkFiles(t *testing.T, dir string, f func(path string, info fs.FileInfo, data []byte)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // removed while walking (spool, -wal)
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		f(p, info, b)
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
}

// ---------------------------------------------------------------------------

// SIGKILL mid-traffic, while the rules are being changed through the API,
// loses nothing that was acknowledged: the restarted tandem (same config,
// same data_dir) starts, keeps the promoted rules (rules.json agrees with
// the acknowledged promotions and with the audit log), still lists the
// promotions as events, reports counters no lower than those read before
// the kill, and serves only whole diff samples. The store takes new data
// after the restart.
func TestCrashKill9KeepsStateConsistent(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindStatus, Status: 202}) // every comparison mismatches
	setup := newChildSetup(t, "", legacy.URL, newb.URL, "", "")
	c := startChild(t, setup)

	// Promote first: rules version 2.
	st, b := c.api("POST", "/api/v1/routes/up/promote", `{"percent": 30, "reason": "crash-test canary"}`)
	if st != 200 {
		t.Fatalf("promote: %d %s", st, b)
	}
	var promoted rules.Rules
	if err := json.Unmarshal(b, &promoted); err != nil || promoted.Version != 2 || promoted.Routes[0].ServeNew != 30 {
		t.Fatalf("promote answered %v %s", err, b)
	}

	// Traffic: 8 workers on keep-alive connections, lightly paced until the
	// first counter flush (every 5 s), then unpaced until the kill.
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	var (
		heavy, killed        atomic.Bool
		answered, unexpected atomic.Int64
		firstErr             atomic.Value
		wg                   sync.WaitGroup
	)
	trafficEnd := time.Now().Add(25 * time.Second)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50000 && time.Now().Before(trafficEnd) && !killed.Load(); i++ {
				req, _ := http.NewRequest("POST", "http://"+setup.addr+"/upload", strings.NewReader(fmt.Sprintf("w%d-%d", w, i)))
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 && resp.StatusCode != 202 && !killed.Load() {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					if killed.Load() {
						return
					}
					unexpected.Add(1)
					firstErr.CompareAndSwap(nil, err)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				answered.Add(1)
				if !heavy.Load() {
					time.Sleep(3 * time.Millisecond)
				}
			}
		}(w)
	}
	defer func() { killed.Store(true); wg.Wait() }()

	// Wait for the first flush: the report shows traffic and mismatches.
	if !pollUntil(15*time.Second, func() bool {
		r := c.report()
		return r.Requests > 0 && r.Compared > 0 && r.Mismatched > 0
	}) {
		t.Fatalf("report shows no traffic after 15s: %+v\n%s", c.report(), c.logText())
	}
	heavy.Store(true)

	// While traffic is heavy, flip serve_new between 31 and 30; remember the
	// last acknowledged rules and the percent of the call in flight.
	var (
		rmu       sync.Mutex
		lastAck   = promoted
		inFlight  = -1.0
		promoErrs []string
		pwg       sync.WaitGroup
	)
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		for i := 0; i < 2000 && !killed.Load(); i++ {
			pct := 31 - float64(i%2)
			rmu.Lock()
			inFlight = pct
			rmu.Unlock()
			st, b, err := c.apiErr("POST", "/api/v1/routes/up/promote", fmt.Sprintf(`{"percent": %v, "reason": "flip %d"}`, pct, i))
			if err != nil {
				if !killed.Load() {
					rmu.Lock()
					promoErrs = append(promoErrs, err.Error())
					rmu.Unlock()
				}
				return
			}
			var r rules.Rules
			rmu.Lock()
			if st == 200 && json.Unmarshal(b, &r) == nil {
				lastAck, inFlight = r, -1
			} else if !killed.Load() {
				promoErrs = append(promoErrs, fmt.Sprintf("%d %s", st, b))
			}
			rmu.Unlock()
		}
	}()

	// About 1.5 s of heavy traffic and rules changes, then read the report
	// and kill at once.
	heavyFrom := answered.Load()
	pollUntil(1500*time.Millisecond, func() bool { return answered.Load()-heavyFrom > 20000 })
	before := c.report()
	killed.Store(true)
	c.kill9()
	wg.Wait()
	pwg.Wait()
	if n := unexpected.Load(); n > 0 {
		t.Errorf("%d client requests failed before the kill; first: %v", n, firstErr.Load())
	}
	if len(promoErrs) > 0 {
		t.Errorf("promotions failed before the kill: %v", promoErrs)
	}
	if before.Requests == 0 || before.Compared == 0 || before.Mismatched == 0 {
		t.Fatalf("nothing recorded before the kill: %+v", before)
	}
	t.Logf("before kill: answered %d (heavy %d), report requests=%d compared=%d mismatched=%d; last acked rules v%d serve_new %v, in flight %v",
		answered.Load(), answered.Load()-heavyFrom, before.Requests, before.Compared, before.Mismatched,
		lastAck.Version, lastAck.Routes[0].ServeNew, inFlight)
	if lastAck.Version < 3 {
		t.Errorf("no rules change was acknowledged during the heavy phase (last v%d)", lastAck.Version)
	}

	// The rules file on disk is whole and matches what was acknowledged.
	onDisk, err := readRulesFile(setup.dataDir)
	if err != nil {
		t.Fatalf("after SIGKILL: %v", err)
	}
	checkRules := func(where string, r rules.Rules) {
		t.Helper()
		sn := r.Routes[0].ServeNew
		switch {
		case r.Version == lastAck.Version:
			if sn != lastAck.Routes[0].ServeNew {
				t.Fatalf("%s: version %d has serve_new %v, but it was acknowledged with %v", where, r.Version, sn, lastAck.Routes[0].ServeNew)
			}
		case r.Version == lastAck.Version+1 && inFlight >= 0:
			if sn != inFlight {
				t.Fatalf("%s: version %d (unacknowledged) has serve_new %v, the call in flight set %v", where, r.Version, sn, inFlight)
			}
		default:
			t.Fatalf("%s: rules version %d, last acknowledged %d (in flight %v): acknowledged change lost or phantom version",
				where, r.Version, lastAck.Version, inFlight)
		}
	}
	checkRules("rules.json after SIGKILL", onDisk)

	// The audit entry is written ahead of rules.json (rules/persist.go), so
	// a kill between the append and the rename leaves an entry for the call
	// in flight, whose version never applied. The restart must then keep
	// the acknowledged rules under a version past the logged one, and say
	// so; otherwise it keeps the file's version as it is.
	logged, err := lastAuditVersion(setup.dataDir)
	if err != nil {
		t.Fatalf("after SIGKILL: %v", err)
	}
	unapplied := false
	switch {
	case logged == onDisk.Version:
	case logged == onDisk.Version+1 && onDisk.Version == lastAck.Version && inFlight >= 0:
		unapplied = true
		t.Logf("the kill fell between the audit append and the rename of version %d", logged)
	default:
		t.Fatalf("after SIGKILL: the audit log's last version is %d, rules.json holds %d (last acknowledged %d, in flight %v)",
			logged, onDisk.Version, lastAck.Version, inFlight)
	}

	// Restart on the same data_dir and config.
	c2 := startChild(t, setup)
	cur := c2.rules()
	if cur.Version < 2 || cur.Routes[0].ServeNew < 30 {
		t.Fatalf("after restart: rules %+v: promotion lost", cur)
	}
	recoveredLog := strings.Contains(c2.logText(), "rules state recovered")
	if unapplied {
		if cur.Version != logged+1 || cur.Routes[0].ServeNew != onDisk.Routes[0].ServeNew {
			t.Fatalf("after restart: version %d serve_new %v; want the file's serve_new %v as version %d, past the unapplied %d",
				cur.Version, cur.Routes[0].ServeNew, onDisk.Routes[0].ServeNew, logged+1, logged)
		}
		if !recoveredLog {
			t.Errorf("restart past an unapplied version did not log the recovery:\n%s", c2.logText())
		}
	} else {
		checkRules("rules after restart", cur)
		if cur.Version != onDisk.Version {
			t.Fatalf("restart changed the rules version: file had %d, now %d", onDisk.Version, cur.Version)
		}
		if recoveredLog {
			t.Errorf("restart needed a recovery of the rules state:\n%s", c2.logText())
		}
	}

	// The audit log still has the promotions, and the event of the version
	// in force says what is in force.
	evs := c2.events()
	var canary, current *rules.Event
	recoveries := 0
	for i := range evs {
		e := &evs[i]
		if e.Kind == rules.KindRecovered {
			recoveries++
			if !unapplied || e.OldVersion != onDisk.Version || e.NewVersion != cur.Version {
				t.Errorf("unexpected recovery event after SIGKILL (rules.json v%d, audit log v%d, now v%d): %+v", onDisk.Version, logged, cur.Version, *e)
			}
		}
		if e.Kind == rules.KindPromote && e.NewVersion == 2 && e.Reason == "crash-test canary" && e.Route == "up" {
			canary = e
		}
		if e.NewVersion == cur.Version {
			current = e
		}
	}
	if canary == nil {
		t.Fatalf("the promote to version 2 is not in /api/v1/events: %+v", evs)
	}
	// The event of the rules in force says what is in force: a promote, or
	// after an unapplied version, the recovery that kept the file's rules
	// (whose promote is then the event of the file's version).
	inForce := cur.Version
	if unapplied {
		if recoveries != 1 || current == nil || current.Kind != rules.KindRecovered {
			t.Errorf("after an unapplied version: %d recovery events, event of v%d %+v; want one recovery event for it", recoveries, cur.Version, current)
		}
		inForce = onDisk.Version
		current = nil
		for i := range evs {
			if evs[i].NewVersion == inForce {
				current = &evs[i]
			}
		}
	}
	if current == nil || current.Kind != rules.KindPromote || current.New != "serve_new "+strconv.FormatFloat(cur.Routes[0].ServeNew, 'f', -1, 64) {
		t.Fatalf("no audit event matches the rules in force (v%d serve_new %v): %+v", inForce, cur.Routes[0].ServeNew, current)
	}

	// Counters never go backwards.
	after := c2.report()
	backwards := func(name string, b, a int64) {
		if a < b {
			t.Errorf("report %s went backwards across SIGKILL: %d before, %d after", name, b, a)
		}
	}
	backwards("requests", before.Requests, after.Requests)
	backwards("served_legacy", before.ServedLegacy, after.ServedLegacy)
	backwards("served_new", before.ServedNew, after.ServedNew)
	backwards("served_tandem", before.ServedTandem, after.ServedTandem)
	backwards("served_errors.legacy", before.ServedErrors.Legacy, after.ServedErrors.Legacy)
	backwards("served_errors.new", before.ServedErrors.New, after.ServedErrors.New)
	backwards("served_errors.tandem", before.ServedErrors.Tandem, after.ServedErrors.Tandem)
	backwards("mirrored", before.Mirrored, after.Mirrored)
	backwards("compared", before.Compared, after.Compared)
	backwards("matched", before.Matched, after.Matched)
	backwards("mismatched", before.Mismatched, after.Mismatched)
	backwards("new_errors", before.NewErrors, after.NewErrors)
	backwards("legacy_errors", before.LegacyErrors, after.LegacyErrors)
	for k, v := range before.Skipped {
		backwards("skipped."+string(k), v, after.Skipped[k])
	}
	bd := map[string]int64{}
	for _, p := range before.Diffs {
		bd[string(p.Kind)+" "+p.Path] = p.Count
	}
	ad := map[string]int64{}
	for _, p := range after.Diffs {
		ad[string(p.Kind)+" "+p.Path] = p.Count
	}
	for k, v := range bd {
		backwards("diffs["+k+"]", v, ad[k])
	}
	t.Logf("after restart: requests=%d compared=%d mismatched=%d", after.Requests, after.Compared, after.Mismatched)

	// No half-written sample.
	samples := checkSamplesWhole(t, c2, after)
	if len(samples) == 0 {
		t.Fatalf("no diff samples after restart, though %d mismatches were reported before the kill", before.Mismatched)
	}
	for _, x := range samples {
		if x.Legacy.Status != 200 || x.New.Status != 202 {
			t.Errorf("sample %s: statuses %d/%d, want 200/202", x.ID, x.Legacy.Status, x.New.Status)
		}
	}

	// The restarted store takes new comparisons.
	for i := 0; i < 20; i++ {
		resp, err := client.Post("http://"+setup.addr+"/upload", "text/plain", strings.NewReader(fmt.Sprintf("after-%d", i)))
		if err != nil {
			t.Fatalf("request after restart: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if !pollUntil(15*time.Second, func() bool { return c2.report().Compared >= after.Compared+20 }) {
		t.Fatalf("the store takes no comparisons after the restart: compared %d, was %d\n%s", c2.report().Compared, after.Compared, c2.logText())
	}
	c2.stop()
}

// Secrets used by TestPrivacyNoSecretsInDataDir.
const (
	privSecretToken = "SECRET-TOKEN-123"
	privCookieValue = "COOKIE-VALUE-456"
	privMarker      = "MARKER-789"
)

// privacyBackend answers JSON whose "side" field differs between legacy and
// new (so every comparison is a mismatch and is sampled), sets Set-Cookie
// with the session secret (different attributes per side, so Set-Cookie is
// a header difference too), and echoes the request's X-Marker into the
// response header X-Echo-Marker (a header the store does not redact: the
// proof that the file scan finds what the store keeps). With echoAuth it
// also echoes the request's Authorization into X-Echo-Auth. It counts the
// requests that carried both secrets.
func privacyBackend(t *testing.T, side string, echoAuth bool, withSecrets *atomic.Int64) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") == "Bearer "+privSecretToken && strings.Contains(r.Header.Get("Cookie"), privCookieValue) {
			withSecrets.Add(1)
		}
		cookie := "s=" + privCookieValue + "; Path=/"
		if side == "new" {
			cookie += "; HttpOnly"
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("Set-Cookie", cookie)
		w.Header().Set("X-Echo-Marker", r.Header.Get("X-Marker"))
		if echoAuth {
			w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		}
		fmt.Fprintf(w, `{"side": %q, "n": 1}`, side)
	})
	return startLoopbackServer(t, h)
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

// scanDataDir reads every file under dir: it returns the files holding any
// of the secrets, whether a store.db* file holds the marker, and the files
// readable by group or others.
func scanDataDir(t *testing.T, dir string) (leaks []string, markerInStore bool, loose []string) {
	t.Helper()
	walkFiles(t, dir, func(p string, info fs.FileInfo, b []byte) {
		rel, _ := filepath.Rel(dir, p)
		for _, s := range []string{privSecretToken, privCookieValue} {
			if i := bytes.Index(b, []byte(s)); i >= 0 {
				lo, hi := max(0, i-80), min(len(b), i+len(s)+40)
				leaks = append(leaks, fmt.Sprintf("%s holds %s at %d: %q", rel, s, i, b[lo:hi]))
			}
		}
		if strings.HasPrefix(filepath.Base(p), "store.db") && bytes.Contains(b, []byte(privMarker)) {
			markerInStore = true
		}
		if info.Mode().Perm()&0o077 != 0 {
			loose = append(loose, fmt.Sprintf("%s %v", rel, info.Mode().Perm()))
		}
	})
	return leaks, markerInStore, loose
}

// Requests carrying Authorization and Cookie secrets, answered with
// Set-Cookie secrets, all mismatching and sampled: no file under data_dir
// holds a secret, while the tandem runs and after it stopped (the WAL then
// folded into store.db), although the store does hold the (unredacted)
// marker echoed in a response header; the API shows the sensitive headers
// as "[redacted]"; no file is readable by group or others.
func TestPrivacyNoSecretsInDataDir(t *testing.T) {
	var legacySecrets, newSecrets atomic.Int64
	// Both backends echo the request's Authorization into a response header
	// of another name (X-Echo-Auth): the store scrubs the client's secret
	// values wherever they appear, not only under sensitive header names.
	legacyURL := privacyBackend(t, "legacy", true, &legacySecrets)
	newURL := privacyBackend(t, "new", true, &newSecrets)
	setup := newChildSetup(t, "", legacyURL, newURL, "", "")
	c := startChild(t, setup)

	client := &http.Client{Timeout: 20 * time.Second}
	const n = 40
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest("POST", "http://"+setup.addr+fmt.Sprintf("/upload/%d", i), strings.NewReader(`{"x": 1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+privSecretToken)
		req.Header.Set("Cookie", "session="+privCookieValue)
		req.Header.Set("X-Marker", privMarker)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"legacy"`) {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
	// Both sides saw the secrets (the proxy forwards them), and every
	// exchange was compared as a mismatch.
	if !pollUntil(15*time.Second, func() bool { r := c.report(); return r.Mismatched >= n }) {
		t.Fatalf("mismatches: %+v", c.report())
	}
	if legacySecrets.Load() != n || newSecrets.Load() != n {
		t.Fatalf("requests with both secrets: legacy %d new %d, want %d each", legacySecrets.Load(), newSecrets.Load(), n)
	}
	samples := checkSamplesWhole(t, c, c.report())
	if len(samples) == 0 {
		t.Fatal("no samples stored")
	}
	for _, x := range samples {
		for _, side := range []store.SideSample{x.Legacy, x.New} {
			var sawCookie, sawMarker bool
			for _, h := range side.Header {
				switch {
				case strings.EqualFold(h.Name, "Set-Cookie"):
					sawCookie = true
					if h.Value != store.Redacted {
						t.Errorf("sample %s: Set-Cookie %q not redacted", x.ID, h.Value)
					}
				case strings.EqualFold(h.Name, "X-Echo-Marker"):
					sawMarker = h.Value == privMarker
				}
			}
			if !sawCookie || !sawMarker {
				t.Errorf("sample %s lacks Set-Cookie (%v) or the marker header (%v): %+v", x.ID, sawCookie, sawMarker, side.Header)
			}
		}
	}

	// While running (data in the WAL).
	var leaks, loose []string
	var marker bool
	if !pollUntil(10*time.Second, func() bool { leaks, marker, loose = scanDataDir(t, setup.dataDir); return marker }) {
		t.Fatal("the marker never showed up in store.db*: the scan proves nothing")
	}
	for _, l := range leaks {
		t.Errorf("while running: %s", l)
	}
	for _, l := range loose {
		t.Errorf("while running: file mode too open: %s", l)
	}

	// After a graceful stop.
	c.stop()
	leaks, marker, loose = scanDataDir(t, setup.dataDir)
	if !marker {
		t.Error("after stop: the marker is in no store.db* file: the scan proves nothing")
	}
	for _, l := range leaks {
		t.Errorf("after stop: %s", l)
	}
	for _, l := range loose {
		t.Errorf("after stop: file mode too open: %s", l)
	}
}
