package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
