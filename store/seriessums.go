package store

import (
	"fmt"
	"sort"
	"time"

	"github.com/tandem-proxy/tandem/compare"
)

// SeriesSums turns a store's rows into the series Series returns, so that
// every store (this one and the fleet's) sums them by one rule and keeps
// only its queries and its histogram encoding: the minutes' counters and
// latency histograms bucket by bucket (ScanMinutes), the primary
// comparisons counted by signature, classified by the noise model when
// read (ScanVerdicts, AddVerdicts). Series finishes them. It is not safe
// for concurrent use.
type SeriesSums struct {
	stepMin  int64
	points   map[bucketKey]*seriesBucket
	verdicts []seriesVerdict
}

type bucketKey struct {
	route  string
	bucket int64 // first minute of the bucket
}

type seriesBucket struct {
	p SeriesPoint
	// minutes: ScanMinutes has read (and finished) the bucket's minutes.
	minutes bool
}

type seriesVerdict struct {
	k   bucketKey
	sig int64
	n   int64
}

// NewSeriesSums starts the sums of a series in buckets of step (one of
// SeriesSteps; a step that is not a whole number of minutes is an error).
func NewSeriesSums(step time.Duration) (*SeriesSums, error) {
	if !ValidSeriesStep(step) {
		return nil, fmt.Errorf("cannot build a series: step %v is not one of %v", step, SeriesSteps)
	}
	return &SeriesSums{stepMin: int64(step / time.Minute), points: map[bucketKey]*seriesBucket{}}, nil
}

// key is the bucket of route's minute (minutes since the Unix epoch),
// aligned to a multiple of the step since the epoch.
func (b *SeriesSums) key(route string, minute int64) bucketKey {
	return bucketKey{route, minute - ((minute%b.stepMin)+b.stepMin)%b.stepMin}
}

func (b *SeriesSums) get(k bucketKey) *seriesBucket {
	p := b.points[k]
	if p == nil {
		p = &seriesBucket{p: SeriesPoint{At: time.Unix(k.bucket*60, 0).UTC()}}
		b.points[k] = p
	}
	return p
}

// seriesFields maps a counter column of the minutes tables (named as
// colNames does) to the point field its sum adds to. matched, mismatched
// and noise are the outcomes minutes recorded before schema version 3
// kept; the classified signature counts add to them.
var seriesFields = map[string]func(p *SeriesPoint, v int64){
	colNames[colRequests]:           func(p *SeriesPoint, v int64) { p.Requests += v },
	colNames[colServedErrorsLegacy]: func(p *SeriesPoint, v int64) { p.ServedErrors.Legacy += v },
	colNames[colServedErrorsNew]:    func(p *SeriesPoint, v int64) { p.ServedErrors.New += v },
	colNames[colServedErrorsTandem]: func(p *SeriesPoint, v int64) { p.ServedErrors.Tandem += v },
	colNames[colMatched]:            func(p *SeriesPoint, v int64) { p.Matched += v },
	colNames[colMismatched]:         func(p *SeriesPoint, v int64) { p.Mismatched += v },
	colNames[colNoise]:              func(p *SeriesPoint, v int64) { p.Noise += v },
	colNames[colCompareErrors]:      func(p *SeriesPoint, v int64) { p.CompareErrors += v },
	colNames[colLegacyErrors]:       func(p *SeriesPoint, v int64) { p.LegacyErrors += v },
	colNames[colNewErrors]:          func(p *SeriesPoint, v int64) { p.NewErrors += v },
}

// ScanMinutes reads rows of (route, minute, then each counter column named
// in cols, then the legacy and the new side's encoded latency histogram),
// and adds them to their buckets. The rows of one bucket must be adjacent
// (ORDER BY route, minute), so one bucket's histograms are summed at a
// time, in one pair of count arrays reused bucket after bucket; rows that
// come back to a bucket already finished are an error, as is a column it
// does not know. addHist adds the counts of the store's encoding of a
// histogram (non-empty, of internal/latency's geometry) to counts
// (histCounts long), leaving counts unchanged on error; a histogram it
// cannot decode is skipped, as Report does.
func (b *SeriesSums) ScanMinutes(rows Rows, cols []string, addHist func(counts []int64, enc []byte) error) error {
	add := make([]func(*SeriesPoint, int64), len(cols))
	for i, c := range cols {
		if add[i] = seriesFields[c]; add[i] == nil {
			return fmt.Errorf("BUG: no series field for counter column %q", c)
		}
	}
	var route string
	var minute int64
	var bl, bn []byte
	n := make([]int64, len(cols))
	dest := []any{&route, &minute}
	for i := range n {
		dest = append(dest, &n[i])
	}
	dest = append(dest, &bl, &bn)

	var cur *seriesBucket
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
		nw, err := importCounts(hn)
		if err != nil {
			return err
		}
		cur.p.LegacyP99MS, cur.p.NewP99MS = quantileMS(l, 99), quantileMS(nw, 99)
		clear(hl)
		clear(hn)
		hasHist = false
		return nil
	}
	for rows.Next() {
		bl, bn = nil, nil
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		bk := b.get(b.key(route, minute))
		if bk != cur {
			if bk.minutes {
				return fmt.Errorf("BUG: the minutes of route %q's bucket at %v are not adjacent", route, bk.p.At)
			}
			if err := finish(); err != nil {
				return err
			}
			cur = bk
			cur.minutes = true
		}
		for i, v := range n {
			add[i](&cur.p, v)
		}
		if len(bl) > 0 || len(bn) > 0 {
			hasHist = true
			if len(bl) > 0 {
				_ = addHist(hl, bl)
			}
			if len(bn) > 0 {
				_ = addHist(hn, bn)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return finish()
}

// ScanVerdicts reads rows of (route, minute, signature id, count): the
// primary comparisons counted by signature. It keeps the counts for
// AddVerdicts, and calls need with each (route, signature id) read, for
// the store to load the signatures it classifies them by.
func (b *SeriesSums) ScanVerdicts(rows Rows, need func(route string, sig int64)) error {
	for rows.Next() {
		var route string
		var minute int64
		var c seriesVerdict
		if err := rows.Scan(&route, &minute, &c.sig, &c.n); err != nil {
			return err
		}
		c.k = b.key(route, minute)
		b.verdicts = append(b.verdicts, c)
		need(route, c.sig)
	}
	return rows.Err()
}

// AddVerdicts adds the counts ScanVerdicts read to their buckets' Matched,
// Noise or Mismatched by the outcome outcome gives their signature (the
// store's noise model as it stands now); any other outcome counts as
// compare errors (role primary records none by signature).
func (b *SeriesSums) AddVerdicts(outcome func(route string, sig int64) compare.Outcome) {
	for _, c := range b.verdicts {
		p := &b.get(c.k).p
		addVerdict(outcome(c.k.route, c.sig), c.n, &p.Matched, &p.Noise, &p.Mismatched, &p.CompareErrors)
	}
	b.verdicts = nil
}

// Series finishes the sums: each point's Compared and DiffRate, points
// oldest first, routes by name; a named route gets exactly one series,
// with no points when it has no data.
func (b *SeriesSums) Series(route string) []RouteSeries {
	byRoute := map[string][]SeriesPoint{}
	if route != "" {
		byRoute[route] = []SeriesPoint{}
	}
	for k, bk := range b.points {
		p := bk.p
		p.Compared = p.Matched + p.Mismatched + p.Noise + p.CompareErrors
		if p.Compared > 0 {
			p.DiffRate = float64(p.Mismatched) / float64(p.Compared)
		}
		byRoute[k.route] = append(byRoute[k.route], p)
	}
	out := make([]RouteSeries, 0, len(byRoute))
	for r, ps := range byRoute {
		sort.Slice(ps, func(i, j int) bool { return ps[i].At.Before(ps[j].At) })
		out = append(out, RouteSeries{Route: r, Points: ps})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	return out
}
