package pgstore_test

import (
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/pgtest"
)

// BenchmarkWrite1000: 1,000 mixed exchanges (matches, mismatches with
// samples, errors, secondaries, over two routes and four minutes) recorded
// and flushed, the SQLite store beside the PostgreSQL one in the same run.
func BenchmarkWrite1000(b *testing.B) {
	base := time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	run := func(b *testing.B, s interface {
		Record(*exchange.Exchange) bool
		Flush() error
	}) {
		for b.Loop() {
			for i := 0; i < 1000; i++ {
				for !s.Record(exch("a", i, base)) {
					time.Sleep(time.Millisecond)
				}
			}
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "exchanges/s")
	}
	b.Run("sqlite", func(b *testing.B) { run(b, openSQLite(b, nil)) })
	c := pgtest.Start(b)
	b.Run("postgres", func(b *testing.B) { run(b, openPG(b, c.NewDatabase(), "a", nil)) })
}
