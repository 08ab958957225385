package store

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
)

// fill writes n exchanges (one mismatch in four, with a sample) and n
// requests' counters.
func fill(t testing.TB, s *Store, from, n int) {
	for i := from; i < from+n; i++ {
		ex := exch("r", sec(i%600), compare.OutcomeMatch)
		if i%4 == 0 {
			ex.Result = compare.Result{Outcome: compare.OutcomeMismatch, Diffs: []compare.Difference{diff(compare.KindJSON, fmt.Sprintf("$.p%d", i%50), false)}}
		}
		record(t, s, ex)
		if !s.AddCounters("r", sec(i%600), Counters{Requests: 1, ServedLegacy: 1, Sent: 1}) {
			t.Fatal("AddCounters refused")
		}
	}
}

// counters checks that every counter of after is at least before's.
func notBackwards(t *testing.T, before, after RouteReport) {
	t.Helper()
	pairs := []struct {
		name string
		b, a int64
	}{
		{"requests", before.Requests, after.Requests},
		{"served_legacy", before.ServedLegacy, after.ServedLegacy},
		{"mirrored", before.Mirrored, after.Mirrored},
		{"compared", before.Compared, after.Compared},
		{"matched", before.Matched, after.Matched},
		{"mismatched", before.Mismatched, after.Mismatched},
	}
	for _, p := range pairs {
		if p.a < p.b {
			t.Errorf("%s went backwards: %d → %d", p.name, p.b, p.a)
		}
	}
	if len(after.Diffs) < len(before.Diffs) {
		t.Errorf("diff paths went backwards: %d → %d", len(before.Diffs), len(after.Diffs))
	}
}

// A Store abandoned without Close (its writer stuck, its connections
// open), as after a crash: a fresh Store on the same file sees everything
// committed, and counts on from there.
func TestReopenAfterAbandon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	stuck := make(chan struct{})
	var blocking atomic.Bool
	s1, err := Open(path, Options{beforeBatch: func() {
		if blocking.Load() {
			<-stuck
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(stuck); s1.Close() }) // after s2's Close
	fill(t, s1, 0, 500)
	flush(t, s1)
	before := reportOf(t, s1, "r", time.Time{})
	if before.Requests != 500 || before.Compared != 500 {
		t.Fatalf("before: %+v", before)
	}
	// Leave items queued behind a stuck writer: they are lost, as in a crash.
	blocking.Store(true)
	fill(t, s1, 500, 10)

	s2 := openAt(t, path, Options{})
	after := reportOf(t, s2, "r", time.Time{})
	notBackwards(t, before, after)
	fill(t, s2, 1000, 100)
	flush(t, s2)
	if got := reportOf(t, s2, "r", time.Time{}); got.Requests < before.Requests+100 {
		t.Errorf("requests %d after more traffic, want ≥ %d", got.Requests, before.Requests+100)
	}
	l, err := s2.Samples(SampleFilter{Limit: 1})
	if err != nil || len(l) != 1 {
		t.Fatalf("samples after reopen: %v %v", l, err)
	}
	if _, err := s2.Sample(l[0].ID); err != nil {
		t.Errorf("sample after reopen: %v", err)
	}
}

// The same after Close.
func TestReopenAfterClose(t *testing.T) {
	s := openTest(t, Options{})
	fill(t, s, 0, 300)
	flush(t, s)
	before := reportOf(t, s, "r", time.Time{})
	s.Close()
	s = openAt(t, s.Path(), Options{})
	after := reportOf(t, s, "r", time.Time{})
	notBackwards(t, before, after)
	if after.Requests != before.Requests || after.Compared != before.Compared {
		t.Errorf("after close and reopen: %+v, want %+v", after, before)
	}
}

const crashEnv = "TANDEM_STORE_CRASH_CHILD"

// TestCrashChild is the process TestKill9 kills; it runs only as that child.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child of TestKill9")
	}
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i += 100 {
		fill(t, s, i, 100)
		if err := s.Flush(); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("committed", i+100) // after Flush: in the file
	}
	os.Exit(0)
}

// A writer killed with SIGKILL mid-stream: the file opens, passes
// integrity_check, and holds at least what the child saw committed.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "store.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	committed := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "committed "); ok {
			committed, _ = strconv.Atoi(n)
		} else if strings.HasPrefix(line, "error") {
			t.Fatalf("child: %s", line)
		}
		if committed >= 2000 {
			break
		}
	}
	cmd.Process.Kill() // SIGKILL: no Close, no flush, no checkpoint
	cmd.Wait()
	if committed < 2000 {
		t.Fatalf("child stopped after %d items", committed)
	}

	s := openAt(t, path, Options{})
	var check string
	if err := s.rdb.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
	got := reportOf(t, s, "r", time.Time{})
	if got.Requests < int64(committed) || got.Compared < int64(committed) {
		t.Fatalf("after kill -9: requests %d compared %d, want ≥ %d", got.Requests, got.Compared, committed)
	}
	t.Logf("child committed ≥ %d; the reopened store has %d", committed, got.Requests)
}
