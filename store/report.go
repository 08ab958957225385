package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/latency"
)

// RouteReport is one route's traffic and comparison summary over a window
// of whole minutes (see Report).
type RouteReport struct {
	Route string `json:"route"`
	// Since is the start of the window: the minute containing the since
	// argument, or, for a report over everything, the first minute with data.
	Since time.Time `json:"since"`

	// Traffic counters from AddCounters. Requests counts every answer the
	// route's clients got, tandem's own 502, 504 and refusals included:
	// ServedLegacy + ServedNew + ServedTandem. Requests ≥ Mirrored in every
	// window.
	Requests     int64 `json:"requests"`
	ServedLegacy int64 `json:"served_legacy"` // sent to legacy, its failures included
	ServedNew    int64 `json:"served_new"`    // sent to new, its failures included
	ServedTandem int64 `json:"served_tandem"` // answered by tandem itself: a refused body, a request it cannot forward
	// ServedErrors are the error answers clients got, by who served them:
	// the side's failure (tandem's 502/504) or its 5xx; every answer served
	// by tandem is one.
	ServedErrors ServedCounts `json:"served_errors"`
	Fallback     int64        `json:"fallback"`
	Mirrored     int64        `json:"mirrored"` // served requests whose copy went to the shadow side (Counters.Sent)

	// Comparison counts from Record: Compared = Matched + Mismatched +
	// Noise + CompareErrors. Matched, Mismatched and Noise are the recorded
	// signatures classified by the store's noise model when the report is
	// read (minutes recorded before schema version 3 add the outcomes they
	// recorded).
	Compared      int64 `json:"compared"`
	Matched       int64 `json:"matched"`
	Mismatched    int64 `json:"mismatched"` // at least one real (non-noise) difference
	Noise         int64 `json:"noise"`      // differences, all noise
	CompareErrors int64 `json:"compare_errors"`
	// LegacyErrors and NewErrors count compared exchanges whose side failed:
	// a transport error or a 5xx status. A served request that failed is
	// never compared: it is in ServedErrors.
	LegacyErrors int64 `json:"legacy_errors"`
	NewErrors    int64 `json:"new_errors"`

	// Skipped counts shadows not sent, by reason; every reason in
	// SkipReasons is present, zeros included.
	Skipped map[exchange.Outcome]int64 `json:"skipped"`
	// DiffRate is Mismatched / Compared; 0 when nothing was compared.
	DiffRate float64 `json:"diff_rate"`
	// Diffs are the differing paths grouped by (kind, path), most frequent
	// first (ties by kind, then path).
	Diffs   []PathStat `json:"diffs"`
	Latency LatencyMS  `json:"latency"`
}

// LatencyMS are latency percentiles in milliseconds over the compared
// exchanges of the window; 0 when there is no observation.
type LatencyMS struct {
	LegacyP50 float64 `json:"legacy_p50_ms"`
	LegacyP99 float64 `json:"legacy_p99_ms"`
	NewP50    float64 `json:"new_p50_ms"`
	NewP99    float64 `json:"new_p99_ms"`
}

// PathStat is one differing (kind, path) of a route.
type PathStat struct {
	Kind  compare.Kind `json:"kind"`
	Path  string       `json:"path"`
	Count int64        `json:"count"` // exchanges with a difference here
	Rate  float64      `json:"rate"`  // Count / Compared
	// Noise is whether the noise model, as it stands when the report is
	// read, calls a difference of this kind at this path noise.
	Noise bool `json:"noise"`
	// ExampleID is the newest stored sample with a difference at this
	// (kind, path), any age; "" when none is retained.
	ExampleID string `json:"example_id"`
}

func newRouteReport(route string, since time.Time) *RouteReport {
	r := &RouteReport{Route: route, Since: since, Skipped: make(map[exchange.Outcome]int64, len(SkipReasons)), Diffs: []PathStat{}}
	for _, reason := range SkipReasons {
		r.Skipped[reason] = 0
	}
	return r
}

// Report sums route's minutes from the minute containing since (zero: all
// data) to now. route "" reports every route with data, sorted by name; a
// named route gets exactly one report, zero if it has no data.
//
// Granularity is one minute: a window may start up to 59 s before since.
func (s *Store) Report(route string, since time.Time) ([]RouteReport, error) {
	out, err := s.report(route, since)
	if err != nil {
		return nil, fmt.Errorf("cannot build report from %s: %w", s.path, err)
	}
	return out, nil
}

func (s *Store) report(route string, since time.Time) ([]RouteReport, error) {
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
	acc := NewReportSums(since, s.o.Noise)
	scan := scanner(ctx, tx)

	// Counters.
	cols := make([]string, nCols)
	for i, c := range colNames {
		cols[i] = "SUM(" + c + ")"
	}
	if err := scan(func(rows Rows) error { return acc.ScanCounters(rows, colNames[:]) },
		"SELECT route, MIN(minute), "+strings.Join(cols, ", ")+" FROM minutes WHERE "+where+" GROUP BY route", args...); err != nil {
		return nil, err
	}

	// Verdicts: the comparisons counted by signature, classified by the
	// noise model as it stands now, added to the outcomes minutes written
	// before schema version 3 kept (the matched, mismatched and noise
	// columns).
	refs := map[sigRef]bool{}
	if err := scan(func(rows Rows) error {
		return acc.ScanVerdicts(rows, func(r string, id int64) { refs[sigRef{r, id}] = true })
	}, "SELECT route, MIN(minute), sig, SUM(count) FROM minute_sigs WHERE "+where+
		" AND role = ? GROUP BY route, sig", append(args[:len(args):len(args)], rolePrimary)...); err != nil {
		return nil, err
	}
	sigs, err := s.signatures(ctx, tx, refs)
	if err != nil {
		return nil, err
	}
	acc.AddVerdicts(func(r string, id int64) compare.Outcome { return s.classify(r, id, sigs) })

	// Latency: sum the minutes' histogram counts, then let the library
	// compute the percentiles.
	type hists struct{ l, n []int64 }
	hs := map[string]*hists{}
	rows, err := tx.QueryContext(ctx, "SELECT route, hist_legacy, hist_new FROM minutes WHERE "+where+
		" AND (hist_legacy IS NOT NULL OR hist_new IS NOT NULL)", args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var r string
		var bl, bn []byte
		if err := rows.Scan(&r, &bl, &bn); err != nil {
			rows.Close()
			return nil, err
		}
		h := hs[r]
		if h == nil {
			h = &hists{make([]int64, histCounts), make([]int64, histCounts)}
			hs[r] = h
		}
		// An undecodable histogram is skipped (addEncoded leaves the sums
		// alone): one bad minute must not hide the report.
		_ = addEncoded(h.l, bl)
		_ = addEncoded(h.n, bn)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for r, h := range hs {
		hl, err := importCounts(h.l)
		if err != nil {
			return nil, err
		}
		hn, err := importCounts(h.n)
		if err != nil {
			return nil, err
		}
		acc.Latency(r, hl, hn)
	}

	// Differences: counts per (kind, path), each flagged by the noise model
	// as it stands now (the stored last_noise is the record-time view and is
	// not read).
	if err := scan(acc.ScanDiffs, "SELECT route, kind, path, SUM(count) FROM minute_diffs WHERE "+
		where+" GROUP BY route, kind, path", args...); err != nil {
		return nil, err
	}

	// Example ids: the newest retained sample per (route, kind, path).
	if acc.HasDiffs() {
		q, a := "SELECT route, kind, path, sample_id, MAX(at) FROM sample_paths", []any{}
		if route != "" {
			q += " WHERE route = ?"
			a = append(a, route)
		}
		if err := scan(func(rows Rows) error {
			for rows.Next() {
				var r, kind, path, id string
				var at int64
				if err := rows.Scan(&r, &kind, &path, &id, &at); err != nil {
					return err
				}
				acc.Example(r, kind, path, id)
			}
			return rows.Err()
		}, q+" GROUP BY route, kind, path", a...); err != nil {
			return nil, err
		}
	}
	return acc.Reports(route), nil
}

// FinishReports turns per-route sums into the reports Report returns:
// Compared from its parts, DiffRate and each path's Rate, paths most frequent
// first (ties by kind, then path), routes by name. Another store (the fleet's)
// finishes its sums the same way.
func FinishReports(reps map[string]*RouteReport) []RouteReport {
	out := make([]RouteReport, 0, len(reps))
	for _, rep := range reps {
		rep.Compared = rep.Matched + rep.Mismatched + rep.Noise + rep.CompareErrors
		if rep.Compared > 0 {
			rep.DiffRate = float64(rep.Mismatched) / float64(rep.Compared)
			for i := range rep.Diffs {
				rep.Diffs[i].Rate = float64(rep.Diffs[i].Count) / float64(rep.Compared)
			}
		}
		sort.Slice(rep.Diffs, func(i, j int) bool {
			a, b := rep.Diffs[i], rep.Diffs[j]
			if a.Count != b.Count {
				return a.Count > b.Count
			}
			if a.Kind != b.Kind {
				return a.Kind < b.Kind
			}
			return a.Path < b.Path
		})
		out = append(out, *rep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	return out
}

// quantileMS is the q-th percentile of h in milliseconds (latency.Percentile,
// the same as the ramp's), 0 when h is nil or empty.
func quantileMS(h *hdrhistogram.Histogram, q float64) float64 {
	if h == nil {
		return 0
	}
	return latency.Milliseconds(latency.Percentile(h, q))
}
