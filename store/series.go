package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
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
	if !ValidSeriesStep(step) {
		return nil, fmt.Errorf("cannot build a series: step %v is not one of %v", step, SeriesSteps)
	}
	out, err := s.series(route, since, int64(step/time.Minute))
	if err != nil {
		return nil, fmt.Errorf("cannot build a series from %s: %w", s.path, err)
	}
	return out, nil
}

type bucketKey struct {
	route  string
	bucket int64 // first minute of the bucket
}

func (s *Store) series(route string, since time.Time, stepMin int64) ([]RouteSeries, error) {
	ctx := context.Background()
	from := int64(math.MinInt64)
	if !since.IsZero() {
		from = minuteOf(since)
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	where, args := "minute >= ?", []any{from}
	if route != "" {
		where += " AND route = ?"
		args = append(args, route)
	}
	bucketOf := func(minute int64) int64 { return minute - ((minute%stepMin)+stepMin)%stepMin }
	points := map[bucketKey]*SeriesPoint{}
	get := func(k bucketKey) *SeriesPoint {
		p := points[k]
		if p == nil {
			p = &SeriesPoint{At: time.Unix(k.bucket*60, 0).UTC()}
			points[k] = p
		}
		return p
	}

	// Counters, and the latency histograms, minute by minute in order, so
	// one bucket's histograms are summed at a time.
	cols := []string{colNames[colRequests], colNames[colServedErrorsLegacy], colNames[colServedErrorsNew], colNames[colServedErrorsTandem],
		colNames[colMatched], colNames[colMismatched], colNames[colNoise], colNames[colCompareErrors],
		colNames[colLegacyErrors], colNames[colNewErrors]}
	rows, err := tx.QueryContext(ctx, "SELECT route, minute, "+strings.Join(cols, ", ")+", hist_legacy, hist_new FROM minutes WHERE "+
		where+" ORDER BY route, minute", args...)
	if err != nil {
		return nil, err
	}
	var cur bucketKey
	// One pair of count arrays, reused bucket after bucket.
	hl, hn := make([]int64, histCounts), make([]int64, histCounts)
	hasHist := false
	finish := func() error {
		if !hasHist {
			return nil
		}
		l, err := importCounts(hl)
		if err != nil {
			return err
		}
		n, err := importCounts(hn)
		if err != nil {
			return err
		}
		p := get(cur)
		p.LegacyP99MS, p.NewP99MS = quantileMS(l, 99), quantileMS(n, 99)
		clear(hl)
		clear(hn)
		hasHist = false
		return nil
	}
	for rows.Next() {
		var r string
		var minute int64
		var c [10]int64
		var bl, bn []byte
		dest := []any{&r, &minute}
		for i := range c {
			dest = append(dest, &c[i])
		}
		dest = append(dest, &bl, &bn)
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, err
		}
		k := bucketKey{r, bucketOf(minute)}
		if k != cur {
			if err := finish(); err != nil {
				rows.Close()
				return nil, err
			}
			cur = k
		}
		p := get(k)
		p.Requests += c[0]
		p.ServedErrors.Legacy += c[1]
		p.ServedErrors.New += c[2]
		p.ServedErrors.Tandem += c[3]
		// Outcomes as recorded, by minutes written before schema version 3.
		p.Matched += c[4]
		p.Mismatched += c[5]
		p.Noise += c[6]
		p.CompareErrors += c[7]
		p.LegacyErrors += c[8]
		p.NewErrors += c[9]
		if len(bl) > 0 || len(bn) > 0 {
			hasHist = true
			// An undecodable histogram is skipped, as Report does.
			_ = addEncoded(hl, bl)
			_ = addEncoded(hn, bn)
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, err
	}
	rows.Close()
	if err := finish(); err != nil {
		return nil, err
	}

	// Verdicts: signatures counted per bucket, classified now.
	rows, err = tx.QueryContext(ctx, "SELECT route, minute, sig, count FROM minute_sigs WHERE "+where+" AND role = ?",
		append(args[:len(args):len(args)], rolePrimary)...)
	if err != nil {
		return nil, err
	}
	type sigCount struct {
		k   bucketKey
		ref sigRef
		n   int64
	}
	var counts []sigCount
	refs := map[sigRef]bool{}
	for rows.Next() {
		var c sigCount
		var minute int64
		if err := rows.Scan(&c.ref.route, &minute, &c.ref.id, &c.n); err != nil {
			rows.Close()
			return nil, err
		}
		c.k = bucketKey{c.ref.route, bucketOf(minute)}
		counts = append(counts, c)
		refs[c.ref] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sigs, err := s.signatures(ctx, tx, refs)
	if err != nil {
		return nil, err
	}
	for _, c := range counts {
		p := get(c.k)
		switch s.classify(c.ref.route, c.ref.id, sigs) {
		case compare.OutcomeMatch:
			p.Matched += c.n
		case compare.OutcomeNoise:
			p.Noise += c.n
		case compare.OutcomeMismatch:
			p.Mismatched += c.n
		default:
			p.CompareErrors += c.n
		}
	}

	byRoute := map[string][]SeriesPoint{}
	if route != "" {
		byRoute[route] = []SeriesPoint{}
	}
	for k, p := range points {
		p.Compared = p.Matched + p.Mismatched + p.Noise + p.CompareErrors
		if p.Compared > 0 {
			p.DiffRate = float64(p.Mismatched) / float64(p.Compared)
		}
		byRoute[k.route] = append(byRoute[k.route], *p)
	}
	out := make([]RouteSeries, 0, len(byRoute))
	for r, ps := range byRoute {
		sort.Slice(ps, func(i, j int) bool { return ps[i].At.Before(ps[j].At) })
		out = append(out, RouteSeries{Route: r, Points: ps})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	return out, nil
}
