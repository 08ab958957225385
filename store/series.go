package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tandem-proxy/tandem/compare"
)

// Series steps: the bucket widths Series accepts. Every one is a whole
// number of minutes, the store's granularity.
var SeriesSteps = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 24 * time.Hour}

// RouteSeries is one route's trend: its stored minutes summed per bucket
// of Step.
type RouteSeries struct {
	Route string `json:"route"`
	// Points are the buckets with data, oldest first; a bucket without a
	// stored minute is left out (the reader draws a gap).
	Points []SeriesPoint `json:"points"`
}

// SeriesPoint is one bucket of a RouteSeries: the fields of RouteReport
// of the same names over the bucket's minutes, the verdicts classified by
// the noise model as it stands when read.
type SeriesPoint struct {
	// At is the bucket's start, a multiple of the step since the Unix
	// epoch (UTC).
	At            time.Time    `json:"at"`
	Requests      int64        `json:"requests"`
	ServedErrors  ServedCounts `json:"served_errors"`
	Compared      int64        `json:"compared"`
	Matched       int64        `json:"matched"`
	Mismatched    int64        `json:"mismatched"`
	Noise         int64        `json:"noise"`
	CompareErrors int64        `json:"compare_errors"`
	LegacyErrors  int64        `json:"legacy_errors"`
	NewErrors     int64        `json:"new_errors"`
	// DiffRate is Mismatched / Compared; 0 when nothing was compared.
	DiffRate float64 `json:"diff_rate"`
	// LegacyP99MS and NewP99MS are each side's 99th latency percentile in
	// the bucket, in milliseconds; 0 without an observation.
	LegacyP99MS float64 `json:"legacy_p99_ms"`
	NewP99MS    float64 `json:"new_p99_ms"`
}

// ValidSeriesStep reports whether step is one of SeriesSteps.
func ValidSeriesStep(step time.Duration) bool {
	for _, s := range SeriesSteps {
		if s == step {
			return true
		}
	}
	return false
}

// Series sums route's minutes from the one containing since (zero: all
// data) into buckets of step (one of SeriesSteps), aligned to multiples of
// step since the Unix epoch, so the first bucket may start before since.
// route "" gives every route with data, by name; a named route gets
// exactly one series, with no points when it has no data.
func (s *Store) Series(route string, since time.Time, step time.Duration) ([]RouteSeries, error) {
	acc, err := NewSeriesSums(step)
	if err != nil {
		return nil, err
	}
	if err := s.series(acc, route, since); err != nil {
		return nil, fmt.Errorf("cannot build a series from %s: %w", s.path, err)
	}
	return acc.Series(route), nil
}

// seriesCols are the counter columns Series reads (SeriesSums maps them).
var seriesCols = []string{colNames[colRequests], colNames[colServedErrorsLegacy], colNames[colServedErrorsNew], colNames[colServedErrorsTandem],
	colNames[colMatched], colNames[colMismatched], colNames[colNoise], colNames[colCompareErrors],
	colNames[colLegacyErrors], colNames[colNewErrors]}

func (s *Store) series(acc *SeriesSums, route string, since time.Time) error {
	ctx := context.Background()
	from := int64(math.MinInt64)
	if !since.IsZero() {
		from = minuteOf(since)
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	where, args := "minute >= ?", []any{from}
	if route != "" {
		where += " AND route = ?"
		args = append(args, route)
	}
	scan := scanner(ctx, tx)

	// Counters, and the latency histograms, minute by minute in order, so
	// one bucket's histograms are summed at a time.
	if err := scan(func(rows Rows) error { return acc.ScanMinutes(rows, seriesCols, addEncoded) },
		"SELECT route, minute, "+strings.Join(seriesCols, ", ")+", hist_legacy, hist_new FROM minutes WHERE "+
			where+" ORDER BY route, minute", args...); err != nil {
		return err
	}

	// Verdicts: signatures counted per bucket, classified now.
	refs := map[sigRef]bool{}
	if err := scan(func(rows Rows) error {
		return acc.ScanVerdicts(rows, func(r string, id int64) { refs[sigRef{r, id}] = true })
	}, "SELECT route, minute, sig, count FROM minute_sigs WHERE "+where+" AND role = ?",
		append(args[:len(args):len(args)], rolePrimary)...); err != nil {
		return err
	}
	sigs, err := s.signatures(ctx, tx, refs)
	if err != nil {
		return err
	}
	acc.AddVerdicts(func(r string, id int64) compare.Outcome { return s.classify(r, id, sigs) })
	return nil
}

// scanner returns a function that runs a query q in tx and lets read take
// its rows (ReportSums' and SeriesSums' scans).
func scanner(ctx context.Context, tx *sql.Tx) func(read func(Rows) error, q string, args ...any) error {
	return func(read func(Rows) error, q string, args ...any) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		return read(rows)
	}
}
