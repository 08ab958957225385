package store

import (
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/tandem-proxy/tandem/compare"
)

// Rows is the part of a query's result ReportSums reads: *sql.Rows and
// pgx.Rows both have it. The caller closes the rows.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ReportSums turns a store's rows into the reports Report returns, so that
// every store (this one and the fleet's) sums them by one rule and keeps
// only its queries: the counters and their first minute (ScanCounters),
// the primary comparisons counted by signature, classified by the noise
// model when read (ScanVerdicts, AddVerdicts), latency (Latency), the
// differing paths (ScanDiffs) and their newest samples (Example). Reports
// finishes them. It is not safe for concurrent use.
type ReportSums struct {
	since       time.Time
	windowStart time.Time
	noise       compare.NoiseModel
	reps        map[string]*RouteReport
	diffs       map[SampleKey]int // index of a path in its report's Diffs
	verdicts    []verdictCount
}

type verdictCount struct {
	route string
	sig   int64
	n     int64
}

// NewReportSums starts the sums of a report over the minutes from the one
// containing since (zero: all data), reading noise with noise (nil:
// nothing is noise).
func NewReportSums(since time.Time, noise compare.NoiseModel) *ReportSums {
	if noise == nil {
		noise = noNoise{}
	}
	b := &ReportSums{since: since, noise: noise, reps: map[string]*RouteReport{}, diffs: map[SampleKey]int{}}
	if !since.IsZero() {
		b.windowStart = time.Unix(minuteOf(since)*60, 0).UTC()
	}
	return b
}

// Route returns route's sums, a zero report (every skip reason present)
// on first use.
func (b *ReportSums) Route(route string) *RouteReport {
	rep := b.reps[route]
	if rep == nil {
		rep = newRouteReport(route, b.windowStart)
		b.reps[route] = rep
	}
	return rep
}

// firstMinute notes that route has data in minute (minutes since the Unix
// epoch): a report over all data starts at the first such minute.
func (b *ReportSums) firstMinute(route string, minute int64) *RouteReport {
	rep := b.Route(route)
	if f := time.Unix(minute*60, 0).UTC(); b.since.IsZero() && (rep.Since.IsZero() || f.Before(rep.Since)) {
		rep.Since = f
	}
	return rep
}

// counterFields maps a counter column of the minutes tables (both stores
// name them as colNames does) to the report field its sum adds to.
// matched, mismatched and noise are the outcomes minutes recorded before
// schema version 3 kept; the classified signature counts add to them.
var counterFields = func() map[string]func(r *RouteReport, v int64) {
	m := map[string]func(r *RouteReport, v int64){
		colNames[colRequests]:           func(r *RouteReport, v int64) { r.Requests += v },
		colNames[colServedLegacy]:       func(r *RouteReport, v int64) { r.ServedLegacy += v },
		colNames[colServedNew]:          func(r *RouteReport, v int64) { r.ServedNew += v },
		colNames[colServedTandem]:       func(r *RouteReport, v int64) { r.ServedTandem += v },
		colNames[colFallback]:           func(r *RouteReport, v int64) { r.Fallback += v },
		colNames[colSent]:               func(r *RouteReport, v int64) { r.Mirrored += v },
		colNames[colServedErrorsLegacy]: func(r *RouteReport, v int64) { r.ServedErrors.Legacy += v },
		colNames[colServedErrorsNew]:    func(r *RouteReport, v int64) { r.ServedErrors.New += v },
		colNames[colServedErrorsTandem]: func(r *RouteReport, v int64) { r.ServedErrors.Tandem += v },
		colNames[colMatched]:            func(r *RouteReport, v int64) { r.Matched += v },
		colNames[colMismatched]:         func(r *RouteReport, v int64) { r.Mismatched += v },
		colNames[colNoise]:              func(r *RouteReport, v int64) { r.Noise += v },
		colNames[colCompareErrors]:      func(r *RouteReport, v int64) { r.CompareErrors += v },
		colNames[colLegacyErrors]:       func(r *RouteReport, v int64) { r.LegacyErrors += v },
		colNames[colNewErrors]:          func(r *RouteReport, v int64) { r.NewErrors += v },
	}
	for reason, col := range skipCol {
		m[colNames[col]] = func(r *RouteReport, v int64) { r.Skipped[reason] += v }
	}
	return m
}()

// ScanCounters reads rows of (route, first minute, then the sum of each
// counter column named in cols), one row per route, and adds them to the
// route's report. A column it does not know is an error.
func (b *ReportSums) ScanCounters(rows Rows, cols []string) error {
	add := make([]func(*RouteReport, int64), len(cols))
	for i, c := range cols {
		if add[i] = counterFields[c]; add[i] == nil {
			return fmt.Errorf("BUG: no report field for counter column %q", c)
		}
	}
	var route string
	var first int64
	n := make([]int64, len(cols))
	dest := []any{&route, &first}
	for i := range n {
		dest = append(dest, &n[i])
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		rep := b.firstMinute(route, first)
		for i, v := range n {
			add[i](rep, v)
		}
	}
	return rows.Err()
}

// ScanVerdicts reads rows of (route, first minute, signature id, count):
// the primary comparisons of the window counted by signature. It keeps the
// counts for AddVerdicts, and calls need with each (route, signature id)
// read, for the store to load the signatures it classifies them by.
func (b *ReportSums) ScanVerdicts(rows Rows, need func(route string, sig int64)) error {
	for rows.Next() {
		var c verdictCount
		var first int64
		if err := rows.Scan(&c.route, &first, &c.sig, &c.n); err != nil {
			return err
		}
		b.verdicts = append(b.verdicts, c)
		need(c.route, c.sig)
		b.firstMinute(c.route, first)
	}
	return rows.Err()
}

// AddVerdicts adds the counts ScanVerdicts read to Matched, Noise or
// Mismatched by the outcome outcome gives their signature (the store's
// noise model as it stands now); any other outcome counts as compare
// errors (role primary records none by signature).
func (b *ReportSums) AddVerdicts(outcome func(route string, sig int64) compare.Outcome) {
	for _, c := range b.verdicts {
		rep := b.Route(c.route)
		addVerdict(outcome(c.route, c.sig), c.n, &rep.Matched, &rep.Noise, &rep.Mismatched, &rep.CompareErrors)
	}
	b.verdicts = nil
}

// addVerdict adds n comparisons of outcome o to matched, noise or
// mismatched; any other outcome counts as compare errors.
func addVerdict(o compare.Outcome, n int64, matched, noise, mismatched, compareErrors *int64) {
	switch o {
	case compare.OutcomeMatch:
		*matched += n
	case compare.OutcomeNoise:
		*noise += n
	case compare.OutcomeMismatch:
		*mismatched += n
	default:
		*compareErrors += n
	}
}

// Latency sets route's percentiles from the window's summed histograms of
// each side (nil or empty: 0).
func (b *ReportSums) Latency(route string, legacy, new *hdrhistogram.Histogram) {
	lat := &b.Route(route).Latency
	lat.LegacyP50, lat.LegacyP99 = quantileMS(legacy, 50), quantileMS(legacy, 99)
	lat.NewP50, lat.NewP99 = quantileMS(new, 50), quantileMS(new, 99)
}

// ScanDiffs reads rows of (route, kind, path, count), one per differing
// (kind, path) of a route, into the route's Diffs, each flagged by the
// noise model as it stands now.
func (b *ReportSums) ScanDiffs(rows Rows) error {
	for rows.Next() {
		var r, kind, path string
		var count int64
		if err := rows.Scan(&r, &kind, &path, &count); err != nil {
			return err
		}
		rep := b.Route(r)
		b.diffs[SampleKey{r, compare.Kind(kind), path}] = len(rep.Diffs)
		rep.Diffs = append(rep.Diffs, PathStat{Kind: compare.Kind(kind), Path: path, Count: count,
			Noise: b.noise.Noise(r, compare.Kind(kind), path)})
	}
	return rows.Err()
}

// HasDiffs reports whether ScanDiffs read any path (only then are example
// samples worth a query).
func (b *ReportSums) HasDiffs() bool { return len(b.diffs) > 0 }

// Example sets id, the newest retained sample with a difference at (route,
// kind, path), as that path's ExampleID; a path ScanDiffs did not read is
// ignored.
func (b *ReportSums) Example(route, kind, path, id string) {
	if i, ok := b.diffs[SampleKey{route, compare.Kind(kind), path}]; ok {
		b.reps[route].Diffs[i].ExampleID = id
	}
}

// Reports finishes the sums (FinishReports); a named route gets exactly
// one report, zeros when it has no data.
func (b *ReportSums) Reports(route string) []RouteReport {
	if route != "" {
		b.Route(route)
	}
	return FinishReports(b.reps)
}
