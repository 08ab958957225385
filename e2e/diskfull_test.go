package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/rules"
)

// Sizes used by TestDiskFullKeepsServing.
const (
	dfPad      = 64 << 10 // response padding: ~64 KiB bodies
	dfBodySize = 16 << 10 // POST body: 12 KiB of it spooled to disk past spool_memory 4KiB
)

var dfPadding = strings.Repeat("p", dfPad)

// dfBody is what a backend of the disk-full test answers to a request with
// id and diff key: a ~64 KiB JSON document whose field key says the side,
// so legacy and new differ at $.<key> and every exchange is a mismatch.
// The store keeps 5 samples (with both bodies, ~130 KiB) per differing
// path, so the keys bound what the store may write: a key per request
// samples every exchange, a few keys shared by many requests at most 5 each.
func dfBody(side, id, key string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,%q:%q,"pad":%q}`, id, key, side, dfPadding))
}

// dfBackend answers dfBody (id from X-Request-Id, key from X-Diff-Key); a
// POST whose body is not dfBodySize bytes gets 400, so a served request
// that lost body bytes shows at the client.
func dfBackend(t *testing.T, side string) string {
	return startLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if r.Method == "POST" && (err != nil || n != dfBodySize) {
			http.Error(w, fmt.Sprintf("body: %d bytes, %v", n, err), 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(dfBody(side, r.Header.Get("X-Request-Id"), r.Header.Get("X-Diff-Key")))
	}))
}

// dfRequest sends one request with id and diff key (POST with a
// dfBodySize body when post) and checks that the client gets 200 and
// legacy's bytes.
func dfRequest(client *http.Client, addr, id, key string, post bool) error {
	method, body := "GET", io.Reader(nil)
	if post {
		method, body = "POST", bytes.NewReader(bytes.Repeat([]byte{'b'}, dfBodySize))
	}
	req, _ := http.NewRequest(method, "http://"+addr+"/item/"+id, body)
	req.Header.Set("X-Request-Id", id)
	req.Header.Set("X-Diff-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %v", method, id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the body: %v", method, id, err)
	}
	want := dfBody("legacy", id, key)
	if resp.StatusCode != 200 || !bytes.Equal(b, want) {
		return fmt.Errorf("%s %s: status %d, %d bytes, legacy's bytes: %v: %.200q", method, id, resp.StatusCode, len(b),
			bytes.Equal(b, want), b)
	}
	return nil
}

// mountTmpfs mounts a tmpfs of size on a new directory and unmounts it at
// cleanup (registered first, so it runs after the cleanups of what uses it).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as a data_dir that can fill up")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs on %s (%v): this test needs CAP_SYS_ADMIN", dir, err)
	}
	t.Cleanup(func() {
		var err error
		for i := 0; i < 50; i++ {
			if err = syscall.Unmount(dir, 0); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("cannot unmount %s: %v; detaching", dir, err)
		syscall.Unmount(dir, syscall.MNT_DETACH)
	})
	return dir
}

// filler fills the file system holding path and keeps it full: it writes
// until ENOSPC, then keeps taking whatever space is freed until stopped.
type filler struct {
	f       *os.File
	written atomic.Int64
	enospc  atomic.Bool
	stop    chan struct{}
	done    chan struct{}
	err     atomic.Value // first error other than ENOSPC
}

func startFiller(t *testing.T, path string) *filler {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fl := &filler{f: f, stop: make(chan struct{}), done: make(chan struct{})}
	chunk := bytes.Repeat([]byte{'F'}, 4<<10)
	go func() {
		defer close(fl.done)
		for i := 0; i < 1_000_000; i++ { // bounded: ~4 GiB, far past any tmpfs here
			select {
			case <-fl.stop:
				return
			default:
			}
			n, err := f.Write(chunk)
			fl.written.Add(int64(n))
			switch {
			case err == nil:
			case errors.Is(err, syscall.ENOSPC):
				fl.enospc.Store(true)
				select {
				case <-fl.stop:
					return
				case <-time.After(2 * time.Millisecond): // then take what was freed
				}
			default:
				fl.err.CompareAndSwap(nil, err)
				return
			}
		}
	}()
	return fl
}

// release stops the filler and deletes its file.
func (fl *filler) release(t *testing.T) {
	t.Helper()
	close(fl.stop)
	<-fl.done
	name := fl.f.Name()
	fl.f.Close()
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
}

// A full disk under data_dir (store, spool and rules state on one 8 MiB
// tmpfs, spool_memory 4KiB) never reaches the client: every request, with
// a body or without, gets 200 and legacy's bytes while the disk is full.
// The failures show in /metrics (store write errors and spool_full
// shadows); rules.json stays whole through failed rule changes; and once
// space is freed the store takes comparisons and samples again, spooled
// shadows work again, and rule changes succeed.
func TestDiskFullKeepsServing(t *testing.T) {
	mnt := mountTmpfs(t, "8m")
	legacyURL := dfBackend(t, "legacy")
	newURL := dfBackend(t, "new")
	setup := newChildSetup(t, filepath.Join(mnt, "data"), legacyURL, newURL, "limits: {spool_memory: 4KiB}", "")
	c := startChild(t, setup)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()

	checkRulesFile := func(where string) rules.Rules {
		t.Helper()
		r, err := readRulesFile(setup.dataDir)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		return r
	}
	// toggleMirror changes the rules (mirror 100 <-> 99.99) through the API;
	// it returns the status. Either way rules.json must parse and hold the
	// version the API reports.
	toggleMirror := func(where string) int {
		t.Helper()
		cur := c.rules()
		if cur.Routes[0].Mirror == 100 {
			cur.Routes[0].Mirror = 99.99
		} else {
			cur.Routes[0].Mirror = 100
		}
		doc, _ := json.Marshal(cur)
		st, b := c.api("PUT", "/api/v1/rules", string(doc), "If-Match", fmt.Sprint(cur.Version))
		if st != 200 && st != 500 {
			t.Fatalf("%s: PUT rules: %d %s", where, st, b)
		}
		onDisk := checkRulesFile(where)
		now := c.rules()
		if onDisk.Version != now.Version || onDisk.Routes[0].Mirror != now.Routes[0].Mirror {
			t.Fatalf("%s: rules.json holds v%d mirror %v, the API v%d mirror %v", where, onDisk.Version, onDisk.Routes[0].Mirror, now.Version, now.Routes[0].Mirror)
		}
		if (st == 200) != (now.Version == cur.Version+1) {
			t.Fatalf("%s: PUT answered %d but the version went from %d to %d: %s", where, st, cur.Version, now.Version, b)
		}
		return st
	}
	metric := func(m map[string]float64, name string) float64 { return m[name] }
	const (
		mWriteErrors = `tandem_store_write_errors_total{reason="disk_full"}`
		mDropped     = "tandem_store_dropped_total"
		mSpoolFull   = `tandem_shadow_total{route="up",outcome="spool_full"}`
		mSent        = `tandem_shadow_total{route="up",outcome="sent"}`
	)

	// Phase A: healthy. Bodies are spooled and compared, samples stored.
	for i := 0; i < 2; i++ {
		id := fmt.Sprintf("warm-%d", i)
		if err := dfRequest(client, setup.addr, id, "k_"+id, i%2 == 1); err != nil {
			t.Fatal(err)
		}
	}
	if !pollUntil(15*time.Second, func() bool { return c.report().Compared >= 2 }) {
		t.Fatalf("warm-up not compared: %+v", c.report())
	}
	if st := toggleMirror("healthy"); st != 200 {
		t.Fatalf("rules change refused on a healthy disk: %d", st)
	}
	base := c.metrics()
	if metric(base, mSent) < 2 || metric(base, mWriteErrors) != 0 || metric(base, mSpoolFull) != 0 {
		t.Fatalf("unexpected metrics before the disk fills: sent %v write errors %v spool_full %v",
			metric(base, mSent), metric(base, mWriteErrors), metric(base, mSpoolFull))
	}

	// Phase B: traffic flows while the disk fills and stays full.
	var (
		stopTraffic = make(chan struct{})
		wg          sync.WaitGroup
		served      atomic.Int64
		failures    atomic.Int64
		firstFail   atomic.Value
	)
	trafficEnd := time.Now().Add(40 * time.Second)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 100000 && time.Now().Before(trafficEnd); i++ {
				select {
				case <-stopTraffic:
					return
				default:
				}
				// Every GET is compared and its sample (two shared keys: at
				// most 10 samples, ~1.3 MiB) cannot be written; every POST
				// needs 12 KiB of spool on the full disk.
				key := fmt.Sprintf("k_full_%d", i%2)
				if err := dfRequest(client, setup.addr, fmt.Sprintf("full-%d-%d", w, i), key, (w+i)%2 == 0); err != nil {
					failures.Add(1)
					firstFail.CompareAndSwap(nil, err)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				served.Add(1)
			}
		}(w)
	}
	stopWorkers := func() {
		select {
		case <-stopTraffic:
		default:
			close(stopTraffic)
		}
		wg.Wait()
	}
	defer stopWorkers()

	fl := startFiller(t, filepath.Join(mnt, "filler"))
	fillerReleased := false
	defer func() {
		if !fillerReleased {
			fl.release(t)
		}
	}()
	if !pollUntil(15*time.Second, func() bool { return fl.enospc.Load() || fl.err.Load() != nil }) {
		t.Fatalf("the tmpfs did not fill up: %d bytes written", fl.written.Load())
	}
	if err := fl.err.Load(); err != nil {
		t.Fatalf("filler: %v", err)
	}
	t.Logf("disk full after a %d KiB filler", fl.written.Load()>>10)
	fullFrom := served.Load()

	// The failures are counted, rules changes fail cleanly, and clients
	// keep being served.
	refused := 0
	var full map[string]float64
	ok := pollUntil(20*time.Second, func() bool {
		checkRulesFile("disk full")
		if refused < 3 && toggleMirror("disk full") != 200 {
			refused++
		}
		full = c.metrics()
		return metric(full, mWriteErrors) > metric(base, mWriteErrors) &&
			metric(full, mSpoolFull) > metric(base, mSpoolFull) &&
			served.Load()-fullFrom >= 200
	})
	if !ok {
		t.Fatalf("disk full, no failure counted: write errors %v dropped %v spool_full %v (before: %v %v %v), served while full %d\n%s\n%s",
			metric(full, mWriteErrors), metric(full, mDropped), metric(full, mSpoolFull),
			metric(base, mWriteErrors), metric(base, mDropped), metric(base, mSpoolFull), served.Load()-fullFrom, dfMetricDump(full), c.logText())
	}
	t.Logf("while full: served %d, store write errors %v, dropped %v, shadows spool_full %v, rules changes refused %d",
		served.Load()-fullFrom, metric(full, mWriteErrors), metric(full, mDropped), metric(full, mSpoolFull), refused)
	if refused == 0 {
		t.Errorf("every rules change succeeded on a full disk: the test did not fill it")
	}
	// The store says so in the log, once per episode of failures (the
	// filler may free a page now and then, so a few episodes are fine, a
	// line per failed batch is not).
	failLines := strings.Count(c.logText(), "cannot write to the diff store")
	okLines := strings.Count(c.logText(), "diff store writes succeed again")
	if failLines == 0 || failLines > okLines+1 {
		t.Errorf("while full: %d store failure lines and %d recovery lines in the log, want one failure per episode:\n%s", failLines, okLines, c.logText())
	}
	stopWorkers()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d client requests failed while the disk was full; first: %v", n, n+served.Load(), firstFail.Load())
	}
	fullEnd := c.report()
	checkRulesFile("disk full, traffic stopped")

	// Phase C: space is freed; the store, the spool and the rules state recover.
	fl.release(t)
	fillerReleased = true
	if st := toggleMirror("after freeing space"); st != 200 {
		t.Fatalf("rules change refused after space was freed: %d", st)
	}
	sentBefore := metric(c.metrics(), mSent)
	// Two POSTs (spooled) and two GETs, each differing at a path of its own,
	// so each must come back as a sample.
	recIDs := []string{"rec-post-0", "rec-post-1", "rec-get-0", "rec-get-1"}
	for _, id := range recIDs {
		if err := dfRequest(client, setup.addr, id, "k_"+strings.ReplaceAll(id, "-", "_"), strings.Contains(id, "post")); err != nil {
			t.Fatalf("after freeing space: %v", err)
		}
	}
	recovered := map[string]bool{}
	if !pollUntil(20*time.Second, func() bool {
		for _, s := range c.diffs() {
			if strings.HasPrefix(s.RequestID, "rec-") {
				recovered[s.RequestID] = true
			}
		}
		return len(recovered) == len(recIDs) && c.report().Compared >= fullEnd.Compared+int64(len(recIDs))
	}) {
		t.Fatalf("the store did not recover: compared %d (at full %d), samples of recovery requests %v of %v, sent %v (was %v)\n%s\n%s",
			c.report().Compared, fullEnd.Compared, recovered, recIDs, metric(c.metrics(), mSent), sentBefore, dfMetricDump(c.metrics()), c.logText())
	}
	after := c.report()
	failLines = strings.Count(c.logText(), "cannot write to the diff store")
	okLines = strings.Count(c.logText(), "diff store writes succeed again")
	if okLines != failLines {
		t.Errorf("after recovery: %d store failure lines and %d recovery lines, want as many of each:\n%s", failLines, okLines, c.logText())
	}
	t.Logf("store failure episodes logged: %d", failLines)
	t.Logf("recovered: compared %d -> %d, store written %v, write errors %v", fullEnd.Compared, after.Compared,
		metric(c.metrics(), "tandem_store_written_total"), metric(c.metrics(), mWriteErrors))
	if metric(c.metrics(), mSent) <= sentBefore {
		t.Errorf("no shadow sent after space was freed")
	}
	checkSamplesWhole(t, c, after)
	checkRulesFile("end")
	c.stop()
	checkRulesFile("after stop")
}

// dfMetricDump lists the shadow, compare and store series of m.
func dfMetricDump(m map[string]float64) string {
	var lines []string
	for k, v := range m {
		if strings.HasPrefix(k, "tandem_shadow_") || strings.HasPrefix(k, "tandem_store_") || strings.HasPrefix(k, "tandem_compare_total") ||
			strings.HasPrefix(k, "tandem_spool") || strings.HasPrefix(k, "tandem_backend_errors_total") {
			lines = append(lines, fmt.Sprintf("%s %v", k, v))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
