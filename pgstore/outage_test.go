package pgstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/pgtest"
	"github.com/tandem-proxy/tandem/pgstore"
	"github.com/tandem-proxy/tandem/store"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With the database stopped, Record and AddCounters go on taking items
// without blocking until the buffer bound (BufferItems), then refuse them
// and count the drops; Flush reports the failure and Up is false. When the
// database is back, everything taken lands and Up is true again.
func TestOutageBuffersThenCatchesUp(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase()
	const bound = 1500 // more than one batch (1,024): a Flush behind a full batch being retried answers too
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{Instance: "a", BufferItems: bound})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	match := func() *exchange.Exchange { return mk(base) }
	for i := 0; i < 50; i++ {
		if !s.Record(match()) {
			t.Fatal("Record refused with the database up")
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if !s.Up() {
		t.Fatal("Up() false with the database up")
	}

	c.Stop()
	var took, refused, tookCounters int64
	for i := 0; i < 2*bound; i++ {
		var ok bool
		if i%4 == 3 {
			ok = s.AddCounters("images", base, store.Counters{Requests: 2, ServedLegacy: 2})
			if ok {
				tookCounters++
			}
		} else {
			ok = s.Record(match())
		}
		if ok {
			took++
		} else {
			refused++
		}
	}
	if took != bound || refused != bound {
		t.Errorf("took %d and refused %d items with the database down; want %d and %d (the buffer bound)", took, refused, bound, bound)
	}
	if st := s.Stats(); st.Dropped != refused || st.Queued != took {
		t.Errorf("Stats: dropped %d, queued %d; want %d, %d", st.Dropped, st.Queued, refused, took)
	}
	if err := s.Flush(); err == nil {
		t.Error("Flush returned nil with the database down")
	}
	waitFor(t, "Up() is false", func() bool { return !s.Up() })

	c.Restart()
	waitFor(t, "the buffer is written", func() bool { return s.Stats().Queued == 0 })
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush after the restart: %v", err)
	}
	if !s.Up() {
		t.Error("Up() false after the database came back")
	}
	reps, err := s.Report("images", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	r := reps[0]
	if wantCompared := 50 + took - tookCounters; r.Compared != wantCompared || r.Requests != 2*tookCounters {
		t.Errorf("after the outage: compared %d, requests %d; want %d, %d (everything taken)", r.Compared, r.Requests, wantCompared, 2*tookCounters)
	}
	if st := s.Stats(); st.WriteErrors != 0 || st.Written != 50+took {
		t.Errorf("Stats after the outage: %+v; want no write errors and %d written", st, 50+took)
	}
}

// The byte bound: items whose sample bodies would pass BufferBytes are
// refused while the database is down.
func TestOutageByteBound(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase()
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{Instance: "a", BufferBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c.Stop()
	base := time.Now().UTC().Truncate(time.Minute)
	body := string(make([]byte, 100<<10))
	took := 0
	for i := 0; i < 50; i++ {
		ex := mk(base)
		ex.Legacy, ex.New = resp(200, body), resp(200, body+"x")
		if s.Record(ex) {
			took++
		}
	}
	// Each is estimated at 1 KiB plus both bodies (about 201 KiB).
	if took < 4 || took > 5 {
		t.Errorf("took %d exchanges of about 201 KiB under a 1 MiB bound; want 4 or 5", took)
	}
	if st := s.Stats(); st.Dropped != int64(50-took) {
		t.Errorf("dropped %d, want %d", st.Dropped, 50-took)
	}
	c.Restart()
	if err := flushRetry(s); err != nil {
		t.Fatal(err)
	}
	reps, _ := s.Report("images", time.Time{})
	if reps[0].Compared != int64(took) {
		t.Errorf("compared %d, want the %d taken", reps[0].Compared, took)
	}
}

// flushRetry flushes until the database takes the buffer.
func flushRetry(s *pgstore.Store) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := s.Flush()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mk is a match of route images at at.
func mk(at time.Time) *exchange.Exchange {
	ex := exch("a", 0, at)
	ex.Result = compare.Result{Outcome: compare.OutcomeMatch}
	ex.SecondaryResult = nil
	ex.Route = "images"
	return ex
}

// Close with the database down retries for CloseTimeout, then gives up:
// the items left are counted as write errors and Close says so.
func TestCloseDeadline(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase()
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{Instance: "a", CloseTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.Stop()
	base := time.Now().UTC().Truncate(time.Minute)
	for i := 0; i < 20; i++ {
		if !s.Record(mk(base)) {
			t.Fatal("Record refused below the bound")
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Close returned nil with 20 items unwritten")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return within 30 s of a 1 s CloseTimeout")
	}
	if st := s.Stats(); st.WriteErrors != 20 || st.Queued != 0 {
		t.Errorf("after Close: %+v; want 20 write errors, nothing queued", st)
	}
	if s.Record(mk(base)) {
		t.Error("Record took an item after Close")
	}
}

// A COMMIT whose reply is lost (the database committed, the writer saw an
// error) is retried, and the retry finds the batch committed: nothing is
// added twice, and what arrived meanwhile is added once.
func TestLostCommitReplyAddsOnce(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase()
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{Instance: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var lost atomic.Int64
	pgstore.SetAfterCommit(s, func() error {
		if lost.Add(1) <= 2 {
			return errors.New("test: the COMMIT's reply was lost")
		}
		return nil
	})
	base := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Minute)
	for i := 0; i < 30; i++ {
		s.Record(mk(base))
		s.AddCounters("images", base, store.Counters{Requests: 1, ServedLegacy: 1})
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Flush() != nil {
		if time.Now().After(deadline) {
			t.Fatal("Flush kept failing")
		}
		s.Record(mk(base)) // arrives while the batch is retried
		s.AddCounters("images", base, store.Counters{Requests: 1, ServedLegacy: 1})
	}
	if lost.Load() < 3 {
		t.Fatalf("%d commits; the test needs two lost replies and a success", lost.Load())
	}
	st := s.Stats()
	r := reportOf(t, s)
	if r.Compared != r.Requests || r.Requests != st.Written/2 {
		t.Fatalf("compared %d, requests %d, written %d items: each item once, none twice", r.Compared, r.Requests, st.Written)
	}
	if r.Requests < 30 {
		t.Fatalf("requests %d, want at least the 30 sent before the first commit", r.Requests)
	}
}
