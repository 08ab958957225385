package store

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
)

// A full queue refuses at once and counts the drop; nothing is lost of what
// was accepted.
func TestQueueFull(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	s := openTest(t, Options{QueueSize: 2, beforeBatch: func() {
		once.Do(func() {
			entered <- struct{}{}
			<-release
		})
	}})
	record(t, s, exch("r", sec(0), compare.OutcomeMatch))
	<-entered // the writer holds that item and is blocked
	record(t, s, exch("r", sec(1), compare.OutcomeMatch))
	if !s.AddCounters("r", sec(2), Counters{Requests: 3}) {
		t.Fatal("AddCounters refused with room in the queue")
	}
	if st := s.Stats(); st.Queued != 2 {
		t.Fatalf("queued %d, want 2", st.Queued)
	}
	start := time.Now()
	if s.Record(exch("r", sec(3), compare.OutcomeMatch)) {
		t.Fatal("Record accepted into a full queue")
	}
	if s.AddCounters("r", sec(3), Counters{Requests: 1}) {
		t.Fatal("AddCounters accepted into a full queue")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing took %v", d)
	}
	if st := s.Stats(); st.Dropped != 2 || st.Written != 0 {
		t.Fatalf("stats %+v, want 2 dropped, 0 written", st)
	}
	close(release)
	flush(t, s)
	if st := s.Stats(); st.Written != 3 || st.Queued != 0 || st.WriteErrors != 0 {
		t.Fatalf("stats %+v, want 3 written", st)
	}
	if got := reportOf(t, s, "r", time.Time{}); got.Compared != 2 || got.Requests != 3 {
		t.Errorf("report: compared %d requests %d; want 2, 3", got.Compared, got.Requests)
	}
}

// Close flushes the queue; afterwards Record refuses.
func TestCloseFlushes(t *testing.T) {
	s := openTest(t, Options{})
	path := s.Path()
	for i := range 1000 {
		record(t, s, exch("r", sec(i%60), compare.OutcomeMatch))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Record(exch("r", sec(0), compare.OutcomeMatch)) || s.AddCounters("r", sec(0), Counters{}) {
		t.Error("a closed store accepted an item")
	}
	if err := s.Flush(); err != ErrClosed {
		t.Errorf("Flush after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s = openAt(t, path, Options{})
	if got := reportOf(t, s, "r", time.Time{}); got.Compared != 1000 {
		t.Errorf("compared %d after reopen, want 1000", got.Compared)
	}
}

// A failing disk (SQLite's "database or disk is full", forced with
// max_page_count) loses batches and counts them, never blocks Record, and
// the writer recovers when space frees.
func TestDiskFullRecovers(t *testing.T) {
	s := openTest(t, Options{noJanitor: true, backoff: time.Millisecond})
	record(t, s, exch("r", sec(0), compare.OutcomeMatch))
	flush(t, s)
	setMaxPages := func(n string) {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		if _, err := s.wdb.ExecContext(context.Background(), "PRAGMA max_page_count = "+n); err != nil {
			t.Fatal(err)
		}
	}
	var pages string
	s.wmu.Lock()
	s.wdb.QueryRowContext(context.Background(), "PRAGMA page_count").Scan(&pages)
	s.wmu.Unlock()
	setMaxPages(pages)

	big := exch("r", sec(1), compare.OutcomeMismatch, diff(compare.KindBody, "$.body", false))
	big.Legacy = resp(200, strings.Repeat("b", 256<<10))
	record(t, s, big)
	err := s.Flush()
	if err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("Flush on a full disk: %v, want a 'full' error", err)
	}
	if st := s.Stats(); st.WriteErrors != 1 || st.Written != 1 {
		t.Fatalf("stats %+v, want 1 write error, 1 written", st)
	}
	// Still full: the next batch fails too, and Record stays non-blocking.
	record(t, s, exch("r", sec(2), compare.OutcomeMismatch, diff(compare.KindBody, "$.body2", false)))
	if err := s.Flush(); err == nil {
		t.Log("a small batch fit in the last free page; fine")
	}

	setMaxPages("1073741823")
	record(t, s, exch("r", sec(3), compare.OutcomeMismatch, diff(compare.KindBody, "$.body", false)))
	flush(t, s)
	st := s.Stats()
	if st.Written < 2 {
		t.Fatalf("stats %+v: nothing written after space freed", st)
	}
	got := reportOf(t, s, "r", time.Time{})
	if got.Compared != st.Written || got.Mismatched < 1 {
		t.Errorf("report after recovery: compared %d mismatched %d (stats %+v)", got.Compared, got.Mismatched, st)
	}
	// Nothing from the failed batch is half-written.
	if n := sampleCount(t, s, SampleFilter{Path: "$.body"}); n != 1 {
		t.Errorf("%d samples for $.body, want 1 (the failed batch's is gone)", n)
	}
}
