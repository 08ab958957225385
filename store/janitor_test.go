package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
)

// Samples past Retention are deleted, and a full path takes samples again.
func TestJanitorRetention(t *testing.T) {
	s := openTest(t, Options{SamplesPerPath: 1, Retention: 24 * time.Hour, noJanitor: true})
	a := diff(compare.KindJSON, "$.a", false)
	record(t, s, exch("r", t0, compare.OutcomeMismatch, a))
	record(t, s, exch("r", t0.Add(time.Hour), compare.OutcomeMismatch, a)) // $.a is full
	record(t, s, exch("r", t0.Add(2*time.Hour), compare.OutcomeMismatch, diff(compare.KindJSON, "$.b", false)))
	flush(t, s)
	if n := sampleCount(t, s, SampleFilter{}); n != 2 {
		t.Fatalf("%d samples, want 2", n)
	}

	if err := s.Janitor(t0.Add(24 * time.Hour)); err != nil { // nothing older than 24 h yet
		t.Fatal(err)
	}
	if n := sampleCount(t, s, SampleFilter{}); n != 2 {
		t.Fatalf("after a janitor with nothing to do: %d samples, want 2", n)
	}
	if err := s.Janitor(t0.Add(25 * time.Hour)); err != nil { // the $.a sample expires
		t.Fatal(err)
	}
	if n, nb := sampleCount(t, s, SampleFilter{Path: "$.a"}), sampleCount(t, s, SampleFilter{Path: "$.b"}); n != 0 || nb != 1 {
		t.Fatalf("after expiry: $.a %d, $.b %d samples; want 0, 1", n, nb)
	}
	if id := reportOf(t, s, "r", time.Time{}).Diffs[0].ExampleID; id != "" {
		t.Errorf("expired example id %q still reported", id)
	}
	// Aggregates are not expired.
	if got := reportOf(t, s, "r", time.Time{}); got.Mismatched != 3 {
		t.Errorf("mismatched %d after janitor, want 3", got.Mismatched)
	}

	record(t, s, exch("r", t0.Add(26*time.Hour), compare.OutcomeMismatch, a))
	flush(t, s)
	if n := sampleCount(t, s, SampleFilter{Path: "$.a"}); n != 1 {
		t.Fatalf("$.a takes new samples after expiry: %d, want 1", n)
	}
}

// The oldest samples go while their total exceeds MaxBytes.
func TestJanitorMaxBytes(t *testing.T) {
	const body = 4000
	s := openTest(t, Options{MaxBytes: 20_000, noJanitor: true})
	for i := range 10 {
		ex := exch("r", sec(i), compare.OutcomeMismatch, diff(compare.KindJSON, fmt.Sprintf("$.p%d", i), false))
		ex.Legacy = resp(200, strings.Repeat("l", body))
		record(t, s, ex)
	}
	flush(t, s)
	if got := s.sampleBytes.Load(); got < 10*body {
		t.Fatalf("sample bytes %d, want ≥ %d", got, 10*body)
	}
	if err := s.Janitor(sec(10)); err != nil {
		t.Fatal(err)
	}
	l, err := s.Samples(SampleFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	if err := s.rdb.QueryRow("SELECT COALESCE(SUM(bytes), 0) FROM samples").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total > 20_000 || len(l) < 3 || len(l) > 4 {
		t.Fatalf("after janitor: %d samples, %d bytes; want 3-4 samples ≤ 20000 bytes", len(l), total)
	}
	if got := s.sampleBytes.Load(); got != total {
		t.Errorf("tracked sample bytes %d, stored %d", got, total)
	}
	// The newest survive.
	for i, smp := range l {
		if want := sec(9 - i); !smp.At.Equal(want) {
			t.Errorf("sample %d at %v, want %v", i, smp.At, want)
		}
	}
	var orphans int
	if err := s.rdb.QueryRow("SELECT COUNT(*) FROM sample_paths WHERE sample_id NOT IN (SELECT id FROM samples)").Scan(&orphans); err != nil || orphans != 0 {
		t.Errorf("%d orphan sample_paths rows (%v)", orphans, err)
	}
}

// Passing MaxBytes kicks the janitor goroutine without waiting for its tick.
func TestJanitorKickedBySize(t *testing.T) {
	done := make(chan struct{})
	s := openTest(t, Options{MaxBytes: 10_000})
	for i := range 5 {
		ex := exch("r", sec(i), compare.OutcomeMismatch, diff(compare.KindJSON, fmt.Sprintf("$.p%d", i), false))
		ex.Legacy = resp(200, strings.Repeat("l", 4000))
		record(t, s, ex)
	}
	flush(t, s)
	go func() {
		defer close(done)
		for s.sampleBytes.Load() > 10_000 {
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("sample bytes still %d > 10000", s.sampleBytes.Load())
	}
}
