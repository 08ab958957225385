package pgstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/pgtest"
	"github.com/tandem-proxy/tandem/pgstore"
	"github.com/tandem-proxy/tandem/store"
)

const childEnv = "PGSTORE_KILL_CHILD_URL"

// The child of TestKillAfterFlush: records, flushes, says so on stdout,
// then goes on recording without flushing until it is killed.
func TestKillChild(t *testing.T) {
	url := os.Getenv(childEnv)
	if url == "" {
		t.Skip("run by TestKillAfterFlush")
	}
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{Instance: "a"})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Minute)
	for i := 0; i < 500; i++ {
		s.Record(mk(base))
		if i%10 == 0 {
			s.AddCounters("images", base, store.Counters{Requests: 3, ServedLegacy: 3})
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("FLUSHED 500 150")
	for i := 0; ; i++ {
		s.Record(mk(base))
		time.Sleep(time.Millisecond)
	}
}

// kill -9 after a Flush returned: what it acknowledged is in the database
// for the next Store that opens it, which goes on adding to the same rows.
func TestKillAfterFlush(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+url)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "FLUSHED") {
				line <- sc.Text()
				return
			}
		}
		line <- ""
	}()
	var l string
	select {
	case l = <-line:
	case <-time.After(60 * time.Second):
		t.Fatal("the child did not flush within 60 s")
	}
	var compared, requests int64
	if _, err := fmt.Sscanf(l, "FLUSHED %d %d", &compared, &requests); err != nil {
		t.Fatalf("child said %q: %v", l, err)
	}
	time.Sleep(300 * time.Millisecond) // unflushed writes in flight
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	s := openPG(t, url, "a", nil)
	r := reportOf(t, s)
	if r.Compared < compared || r.Requests != requests {
		t.Fatalf("after kill -9: compared %d, requests %d; want at least %d and exactly %d (acknowledged by Flush)", r.Compared, r.Requests, compared, requests)
	}
	before := r
	base := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Minute)
	for i := 0; i < 10; i++ {
		s.Record(mk(base))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	r = reportOf(t, s)
	if r.Compared != before.Compared+10 {
		t.Errorf("the new Store on the same rows: compared %d, want %d", r.Compared, before.Compared+10)
	}
	if r.Latency.LegacyP50 == 0 {
		t.Errorf("latency lost after the reopen: %+v", r.Latency)
	}
}

func reportOf(t *testing.T, s *pgstore.Store) store.RouteReport {
	t.Helper()
	reps, err := s.Report("images", time.Time{})
	if err != nil || len(reps) != 1 {
		t.Fatalf("Report: %v, %d reports", err, len(reps))
	}
	return reps[0]
}
