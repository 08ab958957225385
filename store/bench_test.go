package store

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
)

// BenchmarkRecord measures the data plane's cost of Record, no SQLite
// involved: "accepted" enqueues into a queue with room (drained with the
// timer stopped), "full" is the refusal path, "parallel" is two
// goroutines against a drainer (reports the share refused).
func BenchmarkRecord(b *testing.B) {
	ex := exch("r", t0, compare.OutcomeMatch)
	b.Run("accepted", func(b *testing.B) {
		s := &Store{q: make(chan item, DefaultQueueSize)}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if len(s.q) == cap(s.q) {
				b.StopTimer()
				for len(s.q) > 0 {
					<-s.q
				}
				b.StartTimer()
			}
			s.Record(ex)
		}
		if s.dropped.Load() != 0 {
			b.Fatal("dropped")
		}
	})
	b.Run("full", func(b *testing.B) {
		s := &Store{q: make(chan item)} // never room
		b.ReportAllocs()
		for b.Loop() {
			s.Record(ex)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := &Store{q: make(chan item, DefaultQueueSize)}
		done := make(chan struct{})
		go func() {
			for range s.q {
			}
			close(done)
		}()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.Record(ex)
			}
		})
		b.StopTimer()
		close(s.q)
		<-done
		b.ReportMetric(float64(s.dropped.Load())/float64(b.N), "refused/op")
	})
}

func TestRecordAllocs(t *testing.T) {
	s := &Store{q: make(chan item, 1)}
	ex := exch("r", t0, compare.OutcomeMatch)
	allocs := testing.AllocsPerRun(1000, func() {
		s.Record(ex)
		<-s.q
	})
	if allocs != 0 {
		t.Errorf("Record allocates %v times, want 0", allocs)
	}
}

// benchExchanges builds n exchanges of a workload:
//   - "typical": 90% match, 8% mismatch over 50 JSON paths, 2% noise;
//     1 KiB bodies. After warm-up nearly nothing is sampled.
//   - "sample-all": every exchange a mismatch on its own path with 4 KiB
//     bodies, so every one is stored as a sample.
func benchExchanges(workload string, n int) []*exchange.Exchange {
	body := strings.Repeat("x", 1024)
	if workload == "sample-all" {
		body = strings.Repeat("x", 4096)
	}
	out := make([]*exchange.Exchange, n)
	for i := range out {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		ex := exch("r", at, compare.OutcomeMatch)
		ex.Legacy, ex.New = resp(200, body), resp(200, body)
		ex.LegacyLatency = time.Duration(5+i%20) * time.Millisecond
		ex.NewLatency = time.Duration(6+i%25) * time.Millisecond
		switch {
		case workload == "sample-all":
			ex.Result = compare.Result{Outcome: compare.OutcomeMismatch, Diffs: []compare.Difference{diff(compare.KindJSON, fmt.Sprintf("$.p%d", i), false)}}
		case i%50 < 4:
			ex.Result = compare.Result{Outcome: compare.OutcomeMismatch, Diffs: []compare.Difference{
				diff(compare.KindJSON, fmt.Sprintf("$.items[%d].width", i%50), false), diff(compare.KindStatus, "$.status", false)}}
		case i%50 == 4:
			ex.Result = compare.Result{Outcome: compare.OutcomeNoise, Diffs: []compare.Difference{diff(compare.KindJSON, "$.processed_at", true)}}
		}
		out[i] = ex
	}
	return out
}

// BenchmarkWriterThroughput measures how many exchanges per second the
// writer commits into SQLite, in batches of maxBatch, per synchronous mode
// and workload. "via-queue" goes through Record and the writer goroutine
// (the 100 ms batching included); the others call the batch writer
// directly.
func BenchmarkWriterThroughput(b *testing.B) {
	for _, syncMode := range []string{"FULL", "NORMAL"} {
		for _, workload := range []string{"typical", "sample-all"} {
			b.Run(fmt.Sprintf("sync=%s/%s", syncMode, workload), func(b *testing.B) {
				s := openTest(b, Options{synchronous: syncMode, noJanitor: true})
				exs := benchExchanges(workload, b.N)
				batch := make([]item, 0, maxBatch)
				b.ResetTimer()
				for i := 0; i < len(exs); i += maxBatch {
					batch = batch[:0]
					for _, ex := range exs[i:min(i+maxBatch, len(exs))] {
						batch = append(batch, item{ex: ex})
					}
					if _, err := s.writeBatch(batch); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
			})
		}
		b.Run(fmt.Sprintf("sync=%s/via-queue", syncMode), func(b *testing.B) {
			s := openTest(b, Options{synchronous: syncMode, noJanitor: true})
			exs := benchExchanges("typical", b.N)
			b.ResetTimer()
			for _, ex := range exs {
				for !s.Record(ex) {
					runtime.Gosched()
				}
			}
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
		})
	}
}

// BenchmarkWriterSmallBatches is the writer under steady proxy load: a
// batch of 50 matching exchanges (what 500 req/s fill in the 100 ms batch
// window) into the current minute, each with both latencies, so every batch
// rewrites the same minute row and its two histograms.
func BenchmarkWriterSmallBatches(b *testing.B) {
	s := openTest(b, Options{noJanitor: true})
	batch := make([]item, 50)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for j := range batch {
			ex := exch("r", t0.Add(time.Duration(i%50000)*time.Millisecond), compare.OutcomeMatch)
			ex.LegacyLatency = time.Duration(500+i%2000) * time.Microsecond
			ex.NewLatency = time.Duration(600+i%2500) * time.Microsecond
			batch[j] = item{ex: ex}
			i++
		}
		if _, err := s.writeBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReport7Days measures a report over a week of minutes, each with
// latency histograms and a few differing paths.
func BenchmarkReport7Days(b *testing.B) {
	s := fill7Days(b)
	b.ReportAllocs()
	for b.Loop() {
		reps, err := s.Report("", time.Time{})
		if err != nil || len(reps) != 1 || reps[0].Compared != 3*week {
			b.Fatalf("%v %v", reps, err)
		}
	}
}

// BenchmarkSeries7Days measures the UI's 7-day trend (per hour) over the
// same week, against BenchmarkReport7Days in the same run.
func BenchmarkSeries7Days(b *testing.B) {
	s := fill7Days(b)
	b.ReportAllocs()
	for b.Loop() {
		ss, err := s.Series("", time.Time{}, time.Hour)
		if err != nil || len(ss) != 1 || len(ss[0].Points) < 7*24 {
			b.Fatalf("%d series, %v", len(ss), err)
		}
	}
}

const week = 7 * 24 * 60 // minutes

func fill7Days(b *testing.B) *Store {
	s := openTest(b, Options{noJanitor: true})
	const minutes = week
	batch := make([]item, 0, maxBatch)
	for m := 0; m < minutes; m++ {
		for j := range 3 {
			ex := exch("r", t0.Add(time.Duration(m)*time.Minute+time.Duration(j)*time.Second), compare.OutcomeMismatch,
				diff(compare.KindJSON, fmt.Sprintf("$.p%d", (m+j)%20), false))
			ex.LegacyLatency = time.Duration(1+m%300) * time.Millisecond
			batch = append(batch, item{ex: ex})
		}
		if len(batch) >= maxBatch || m == minutes-1 {
			if _, err := s.writeBatch(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return s
}
