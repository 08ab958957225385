package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jackc/pgx/v5"
	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/internal/latency"
	"github.com/tandem-proxy/tandem/store"
)

// view reads the store's tables, every instance's rows summed (instance
// "") or one instance's.
type view struct {
	s        *Store
	instance string
	one      bool
}

var _ admin.Reports = view{}

// Instance is a read view of the rows instance name wrote (?instance=).
func (s *Store) Instance(name string) admin.Reports { return view{s: s, instance: name, one: true} }

func (s *Store) all() view { return view{s: s} }

// Report sums the fleet's minutes (every instance) as store.Store.Report does.
func (s *Store) Report(route string, since time.Time) ([]store.RouteReport, error) {
	return s.all().Report(route, since)
}

// Series is store.Store.Series over every instance's minutes.
func (s *Store) Series(route string, since time.Time, step time.Duration) ([]store.RouteSeries, error) {
	return s.all().Series(route, since, step)
}

// Samples lists every instance's samples, newest first.
func (s *Store) Samples(f store.SampleFilter) ([]store.SampleSummary, error) {
	return s.all().Samples(f)
}

// Sample returns one sample (of any instance), or store.ErrNotFound.
func (s *Store) Sample(id string) (*store.Sample, error) { return s.all().Sample(id) }

// Comparisons returns every instance's retained comparisons of requestID.
func (s *Store) Comparisons(requestID string) ([]store.Comparison, error) {
	return s.all().Comparisons(requestID)
}

// Instances lists the instances with rows in the store (minutes,
// comparisons or samples), by name.
func (s *Store) Instances() ([]string, error) {
	rows, err := s.pool.Query(bg(), `SELECT instance FROM store_minutes UNION SELECT instance FROM store_comparisons
		UNION SELECT instance FROM store_samples ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: cannot list instances: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: cannot list instances: %w", err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// cond builds a WHERE clause with numbered placeholders.
type cond struct {
	parts []string
	args  []any
}

// add appends c, whose "?" is the next placeholder, with its value.
func (w *cond) add(c string, v any) {
	w.args = append(w.args, v)
	w.parts = append(w.parts, strings.Replace(c, "?", "$"+strconv.Itoa(len(w.args)), 1))
}

func (w *cond) sql() string {
	if len(w.parts) == 0 {
		return "TRUE"
	}
	return strings.Join(w.parts, " AND ")
}

func (v view) minutesWhere(route string, since time.Time) cond {
	var w cond
	if !since.IsZero() {
		w.add("minute >= ?", minuteOf(since))
	}
	if route != "" {
		w.add("route = ?", route)
	}
	if v.one {
		w.add("instance = ?", v.instance)
	}
	return w
}

func (v view) readTx(ctx context.Context) (pgx.Tx, error) {
	return v.s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
}

// scanner returns a function that runs a query q in tx and lets read take
// its rows (store.ReportSums' and store.SeriesSums' scans).
func scanner(ctx context.Context, tx pgx.Tx) func(read func(store.Rows) error, q string, args ...any) error {
	return func(read func(store.Rows) error, q string, args ...any) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		return read(rows)
	}
}

func (v view) Report(route string, since time.Time) ([]store.RouteReport, error) {
	out, err := v.report(route, since)
	if err != nil {
		return nil, fmt.Errorf("pgstore: cannot build report: %w", err)
	}
	return out, nil
}

func sums() string {
	parts := make([]string, nCols)
	for i, c := range colNames {
		parts[i] = "SUM(" + c + ")::BIGINT"
	}
	return strings.Join(parts, ", ")
}

func (v view) report(route string, since time.Time) ([]store.RouteReport, error) {
	ctx := bg()
	tx, err := v.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	w := v.minutesWhere(route, since)
	acc := store.NewReportSums(since, v.s.o.Noise)
	scan := scanner(ctx, tx)
	if err := scan(func(rows store.Rows) error { return acc.ScanCounters(rows, colNames[:]) },
		"SELECT route, MIN(minute), "+sums()+" FROM store_minutes WHERE "+w.sql()+" GROUP BY route", w.args...); err != nil {
		return nil, err
	}

	ids := map[int64]bool{}
	if err := scan(func(rows store.Rows) error {
		return acc.ScanVerdicts(rows, func(_ string, id int64) { ids[id] = true })
	}, "SELECT route, MIN(minute), sig, SUM(count)::BIGINT FROM store_minute_sigs WHERE "+w.sql()+
		" AND role = 0 GROUP BY route, sig", w.args...); err != nil {
		return nil, err
	}
	sigs, err := v.s.signatures(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	acc.AddVerdicts(func(r string, id int64) compare.Outcome { return v.s.classify(r, id, sigs) })

	hs := map[string]*[2]*hdrhistogram.Histogram{}
	rows, err := tx.Query(ctx, "SELECT route, hist_legacy, hist_new FROM store_minutes WHERE "+w.sql()+
		" AND (hist_legacy IS NOT NULL OR hist_new IS NOT NULL)", w.args...)
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
			h = &[2]*hdrhistogram.Histogram{latency.New(), latency.New()}
			hs[r] = h
		}
		addHist(h[0], bl)
		addHist(h[1], bn)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for r, h := range hs {
		acc.Latency(r, h[0], h[1])
	}

	if err := scan(acc.ScanDiffs, "SELECT route, kind, path, SUM(count)::BIGINT FROM store_minute_diffs WHERE "+w.sql()+
		" GROUP BY route, kind, path", w.args...); err != nil {
		return nil, err
	}
	if acc.HasDiffs() {
		var pw cond
		if route != "" {
			pw.add("route = ?", route)
		}
		if v.one {
			pw.add("instance = ?", v.instance)
		}
		if err := scan(func(rows store.Rows) error {
			for rows.Next() {
				var r, kind, path, id string
				if err := rows.Scan(&r, &kind, &path, &id); err != nil {
					return err
				}
				acc.Example(r, kind, path, id)
			}
			return rows.Err()
		}, "SELECT DISTINCT ON (route, kind, path) route, kind, path, sample_id FROM store_sample_paths WHERE "+
			pw.sql()+" ORDER BY route, kind, path, at DESC, sample_id DESC", pw.args...); err != nil {
			return nil, err
		}
	}
	return acc.Reports(route), nil
}

// addHist merges the encoded histogram b into h; an undecodable one is
// skipped so one bad minute does not hide the report.
func addHist(h *hdrhistogram.Histogram, b []byte) bool {
	if d := decodeHist(b); d != nil {
		h.Merge(d)
		return true
	}
	return false
}

func quantileMS(h *hdrhistogram.Histogram, q float64) float64 {
	if h == nil || h.TotalCount() == 0 {
		return 0
	}
	return latency.Milliseconds(latency.Percentile(h, q))
}

// signatures returns the stored signatures of ids (> 0), cached: an id
// never changes its signature.
func (s *Store) signatures(ctx context.Context, tx pgx.Tx, ids map[int64]bool) (map[int64]compare.Signature, error) {
	out := make(map[int64]compare.Signature, len(ids))
	var missing []int64
	s.parsedMu.Lock()
	for id := range ids {
		if sig, ok := s.parsed[id]; ok {
			out[id] = sig
		} else if id > 0 {
			missing = append(missing, id)
		}
	}
	s.parsedMu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, "SELECT id, sig FROM store_signatures WHERE id = ANY($1)", missing)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var key string
		if err := rows.Scan(&id, &key); err != nil {
			return nil, err
		}
		sig, err := compare.ParseSignature(key)
		if err != nil {
			s.o.Logger.Warn("pgstore: a stored signature cannot be read; its comparisons read as mismatches", "id", id, "err", err)
			continue
		}
		out[id] = sig
		s.parsedMu.Lock()
		s.parsed[id] = sig
		s.parsedMu.Unlock()
	}
	return out, rows.Err()
}

func (s *Store) classify(route string, id int64, sigs map[int64]compare.Signature) compare.Outcome {
	switch id {
	case sigMatch:
		return compare.OutcomeMatch
	case sigError:
		return compare.OutcomeError
	}
	sig, ok := sigs[id]
	if !ok {
		return compare.OutcomeMismatch
	}
	return s.o.Noise.Classify(route, sig)
}

func (v view) Series(route string, since time.Time, step time.Duration) ([]store.RouteSeries, error) {
	acc, err := store.NewSeriesSums(step)
	if err != nil {
		return nil, err
	}
	if err := v.series(acc, route, since); err != nil {
		return nil, fmt.Errorf("pgstore: cannot build a series: %w", err)
	}
	return acc.Series(route), nil
}

// seriesCols are the counter columns Series reads (store.SeriesSums maps
// them); the fleet's minutes have no recorded outcomes to add.
var seriesCols = []string{colNames[colRequests], colNames[colServedErrorsLegacy], colNames[colServedErrorsNew],
	colNames[colServedErrorsTandem], colNames[colCompareErrors], colNames[colLegacyErrors], colNames[colNewErrors]}

func (v view) series(acc *store.SeriesSums, route string, since time.Time) error {
	ctx := bg()
	tx, err := v.readTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	w := v.minutesWhere(route, since)
	scan := scanner(ctx, tx)
	// Every instance's rows of a minute, minute by minute in order, so one
	// bucket's histograms are summed at a time.
	if err := scan(func(rows store.Rows) error { return acc.ScanMinutes(rows, seriesCols, addHistCounts) },
		"SELECT route, minute, "+strings.Join(seriesCols, ", ")+", hist_legacy, hist_new FROM store_minutes WHERE "+
			w.sql()+" ORDER BY route, minute", w.args...); err != nil {
		return err
	}
	ids := map[int64]bool{}
	if err := scan(func(rows store.Rows) error {
		return acc.ScanVerdicts(rows, func(_ string, id int64) { ids[id] = true })
	}, "SELECT route, minute, sig, SUM(count)::BIGINT FROM store_minute_sigs WHERE "+w.sql()+
		" AND role = 0 GROUP BY route, minute, sig", w.args...); err != nil {
		return err
	}
	sigs, err := v.s.signatures(ctx, tx, ids)
	if err != nil {
		return err
	}
	acc.AddVerdicts(func(r string, id int64) compare.Outcome { return v.s.classify(r, id, sigs) })
	return nil
}

// addHistCounts adds the counts of the encoded histogram b to counts, of
// internal/latency's geometry (store.SeriesSums' decoding); one of another
// geometry is merged into that geometry first, as Merge would.
func addHistCounts(counts []int64, b []byte) error {
	h := decodeHist(b)
	if h == nil {
		return errors.New("undecodable latency histogram")
	}
	snap := h.Export()
	if snap.LowestTrackableValue != latency.Lowest || snap.HighestTrackableValue != latency.Highest ||
		snap.SignificantFigures != latency.Digits || len(snap.Counts) != len(counts) {
		m := latency.New()
		m.Merge(h)
		snap = m.Export()
	}
	if len(snap.Counts) != len(counts) {
		return fmt.Errorf("latency histogram of %d counts, want %d", len(snap.Counts), len(counts))
	}
	for i, c := range snap.Counts {
		counts[i] += c
	}
	return nil
}

func (v view) Samples(f store.SampleFilter) ([]store.SampleSummary, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = store.DefaultSampleLimit
	}
	limit = min(limit, store.MaxSampleLimit)
	var w cond
	if f.Route != "" {
		w.add("route = ?", f.Route)
	}
	switch {
	case strings.HasPrefix(f.Path, "$"):
		w.add("id IN (SELECT sample_id FROM store_sample_paths WHERE path = ?)", f.Path)
	case f.Path != "":
		w.add("starts_with(path, ?)", f.Path)
	}
	if !f.Since.IsZero() {
		w.add("at >= ?", f.Since.UnixNano())
	}
	if v.one {
		w.add("instance = ?", v.instance)
	}
	w.args = append(w.args, limit)
	rows, err := v.s.pool.Query(bg(), `SELECT id, route, request_id, method, path, served_by, at, outcome, legacy_status, new_status, diff_paths, sig
		FROM store_samples WHERE `+w.sql()+` ORDER BY at DESC, id DESC LIMIT $`+strconv.Itoa(len(w.args)), w.args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: cannot list samples: %w", err)
	}
	defer rows.Close()
	out := []store.SampleSummary{}
	for rows.Next() {
		var x store.SampleSummary
		var at int64
		var outcome, paths, sig string
		if err := rows.Scan(&x.ID, &x.Route, &x.RequestID, &x.Method, &x.Path, &x.ServedBy, &at, &outcome,
			&x.LegacyStatus, &x.NewStatus, &paths, &sig); err != nil {
			return nil, fmt.Errorf("pgstore: cannot list samples: %w", err)
		}
		x.At = time.Unix(0, at).UTC()
		if err := json.Unmarshal([]byte(paths), &x.DiffPaths); err != nil {
			return nil, fmt.Errorf("pgstore: cannot decode sample %s: %w", x.ID, err)
		}
		x.Outcome = v.s.readOutcome(x.Route, compare.Outcome(outcome), sig)
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: cannot list samples: %w", err)
	}
	return out, nil
}

// readOutcome is a sample's outcome as the noise model reads its
// signature now; one recorded as a compare error stays one.
func (s *Store) readOutcome(route string, recorded compare.Outcome, key string) compare.Outcome {
	if !store.IsVerdict(recorded) {
		return recorded
	}
	sig, err := compare.ParseSignature(key)
	if err != nil {
		return compare.OutcomeMismatch
	}
	return s.o.Noise.Classify(route, sig)
}

func (v view) Sample(id string) (*store.Sample, error) {
	var w cond
	w.add("id = ?", id)
	if v.one {
		w.add("instance = ?", v.instance)
	}
	var x store.Sample
	var at int64
	var outcome, sig, diffs, legacy, nw string
	var lb, nb []byte
	err := v.s.pool.QueryRow(bg(), `SELECT id, route, request_id, method, path, served_by, at, outcome, sig,
		diffs, legacy, new, legacy_body, new_body FROM store_samples WHERE `+w.sql(), w.args...).
		Scan(&x.ID, &x.Route, &x.RequestID, &x.Method, &x.Path, &x.ServedBy, &at, &outcome, &sig, &diffs, &legacy, &nw, &lb, &nb)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: cannot read sample %s: %w", id, err)
	}
	x.At = time.Unix(0, at).UTC()
	if err := errors.Join(json.Unmarshal([]byte(diffs), &x.Diffs), json.Unmarshal([]byte(legacy), &x.Legacy), json.Unmarshal([]byte(nw), &x.New)); err != nil {
		return nil, fmt.Errorf("pgstore: cannot decode sample %s: %w", id, err)
	}
	for i := range x.Diffs {
		d := &x.Diffs[i]
		d.Noise = v.s.o.Noise.Noise(x.Route, d.Kind, d.Path)
	}
	x.Outcome = v.s.readOutcome(x.Route, compare.Outcome(outcome), sig)
	x.Legacy.Body, x.New.Body = lb, nb
	return &x, nil
}

func (v view) Comparisons(requestID string) ([]store.Comparison, error) {
	out, err := v.comparisons(requestID)
	if err != nil {
		return nil, fmt.Errorf("pgstore: cannot read the comparisons of request %q: %w", requestID, err)
	}
	return out, nil
}

func (v view) comparisons(requestID string) ([]store.Comparison, error) {
	out := []store.Comparison{}
	if requestID == "" {
		return out, nil
	}
	ctx := bg()
	tx, err := v.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	var w cond
	w.add("c.request_id = ?", requestID)
	w.add("c.at >= ?", v.s.o.Now().Add(-v.s.o.ComparisonRetention).UnixNano())
	if v.one {
		w.add("c.instance = ?", v.instance)
	}
	rows, err := tx.Query(ctx, `SELECT c.at, c.route, c.role, c.instance, c.sig, c.outcome, COALESCE(s.id, '')
		FROM store_comparisons c LEFT JOIN store_samples s ON s.id = c.sample_id AND c.sample_id != ''
		WHERE `+w.sql()+` ORDER BY c.at, c.seq`, w.args...)
	if err != nil {
		return nil, err
	}
	type row struct {
		c   store.Comparison
		sig int64
	}
	var got []row
	ids := map[int64]bool{}
	for rows.Next() {
		var r row
		var at int64
		var role int16
		var outcome string
		if err := rows.Scan(&at, &r.c.Route, &role, &r.c.Instance, &r.sig, &outcome, &r.c.SampleID); err != nil {
			rows.Close()
			return nil, err
		}
		r.c.At = time.Unix(0, at).UTC()
		r.c.RequestID = requestID
		r.c.Against = store.AgainstNew
		if role == roleSecondary {
			r.c.Against = store.AgainstSecondary
		}
		r.c.Outcome = compare.Outcome(outcome)
		got = append(got, r)
		ids[r.sig] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sigs, err := v.s.signatures(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	for _, r := range got {
		out = append(out, store.ReadNow(r.c, sigs[r.sig], v.s.o.Noise,
			func() compare.Outcome { return v.s.classify(r.c.Route, r.sig, sigs) }))
	}
	return out, nil
}
