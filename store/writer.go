package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	sqlite3 "modernc.org/sqlite/lib"
)

type minuteKey struct {
	route  string
	minute int64
}

type minuteAgg struct {
	n      [nCols]int64
	hl, hn *hdrhistogram.Histogram
}

type diffKey struct {
	route  string
	minute int64
	kind   compare.Kind
	path   string
}

type diffAgg struct {
	count, lastAt int64
	lastNoise     bool
}

// maxPathCache bounds the writer's cache of per-path sample counts.
const maxPathCache = 100_000

// runWriter is the store's one writer goroutine: it drains the queue in
// batches of up to maxBatch items, or what arrives within flushInterval of
// the first, and commits each batch as one transaction. It returns when the
// queue is closed and drained.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	batch := make([]item, 0, maxBatch)
	var ep failureEpisode
	for {
		first, ok := <-s.q
		if !ok {
			return
		}
		batch = append(batch[:0], first)
		open := true
		size := s.itemBytes(&first)
		if first.flush == nil {
			// Fill the batch by polling the queue every pollInterval rather
			// than waking for each item: under load items arrive thousands
			// of times a second, and a wake-up per item costs the proxy's
			// hot cores more than the transaction it feeds.
			deadline := time.Now().Add(flushInterval)
		fill:
			for len(batch) < maxBatch && size < maxBatchBytes {
				select {
				case it, ok := <-s.q:
					if !ok {
						open = false
						break fill
					}
					batch = append(batch, it)
					size += s.itemBytes(&it)
					if it.flush != nil {
						break fill
					}
				default:
					wait := time.Until(deadline)
					if wait <= 0 {
						break fill
					}
					select {
					case <-time.After(min(wait, pollInterval)):
					case <-s.closing:
						// Closing: take what is queued now, without waiting.
						deadline = time.Time{}
					}
				}
			}
		}
		if h := s.o.beforeBatch; h != nil {
			h()
		}
		n, err := s.writeBatch(batch)
		ep.note(s, n, err)
		for i := range batch {
			if batch[i].flush != nil {
				batch[i].flush <- err
			}
			batch[i] = item{} // drop references
		}
		if !open {
			return
		}
		if err != nil {
			select {
			case <-time.After(s.o.backoff):
			case <-s.closing:
			}
			// A failed transaction (a full disk) can leave the WAL holding
			// space it no longer needs; hand it back before trying again.
			s.checkpoint()
		}
	}
}

// itemBytes estimates the sample bytes an item may write.
func (s *Store) itemBytes(it *item) int {
	if it.ex == nil {
		return 256
	}
	n := 1024
	for _, r := range []*compare.Response{it.ex.Legacy, it.ex.New} {
		if r != nil {
			n += int(min(int64(len(r.Body)), s.o.SampleBodyMax))
		}
	}
	return n
}

// checkpoint truncates the WAL, best effort.
func (s *Store) checkpoint() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wdb.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
}

// failureEpisode is the writer's memory of a run of failed batches, so
// that a full disk is logged once when it starts and once when it ends
// rather than once a second, or never.
type failureEpisode struct {
	failing bool
	since   time.Time
	lost    int64 // items lost since the episode began
	batches int64 // failed batches since the episode began
}

// note records the outcome of a batch of n data items (n == 0: only flush
// markers, which prove nothing either way).
func (e *failureEpisode) note(s *Store, n int64, err error) {
	switch {
	case n == 0:
	case err != nil:
		e.lost += n
		e.batches++
		if !e.failing {
			e.failing, e.since = true, time.Now()
			s.o.Logger.Error("cannot write to the diff store: comparisons, samples and report counters are being lost until writes succeed again",
				"path", s.path, "reason", writeErrorReason(err), "err", err)
		}
	case e.failing:
		s.o.Logger.Info("diff store writes succeed again", "path", s.path,
			"failed_for", time.Since(e.since).Round(time.Millisecond).String(), "lost_items", e.lost, "failed_batches", e.batches)
		*e = failureEpisode{}
	}
}

// writeErrorReason classifies a failed transaction's error (WriteErrorReasons).
func writeErrorReason(err error) string {
	var se interface{ Code() int }
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // primary result code of an extended one
		case sqlite3.SQLITE_FULL: // SQLite's unix VFS maps ENOSPC here
			return WriteErrorDiskFull
		case sqlite3.SQLITE_IOERR:
			return WriteErrorIO
		}
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return WriteErrorDiskFull
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.EROFS):
		return WriteErrorIO
	}
	return WriteErrorOther
}

func reasonIndex(reason string) int {
	for i, r := range WriteErrorReasons {
		if r == reason {
			return i
		}
	}
	panic("BUG: unknown write error reason " + reason)
}

// writeBatch commits the data items of batch in one transaction and keeps
// the counters; it returns how many data items the batch held. On failure
// the batch is lost and counted in WriteErrors (and WriteErrorsBy).
func (s *Store) writeBatch(batch []item) (int64, error) {
	var n int64
	for i := range batch {
		if batch[i].flush == nil {
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.applyBatch(batch); err != nil {
		s.writeErrors.Add(n)
		s.writeErrBy[reasonIndex(writeErrorReason(err))].Add(n)
		clear(s.pathCounts) // it may hold counts read inside the failed transaction
		clear(s.hists)      // and histograms merged into it
		clear(s.sigs)       // and signatures inserted in it
		return n, fmt.Errorf("cannot write %d items to %s: %w", n, s.path, err)
	}
	s.written.Add(n)
	return n, nil
}

// batchState accumulates one batch before it is written.
type batchState struct {
	minutes    map[minuteKey]*minuteAgg
	diffs      map[diffKey]*diffAgg
	quota      *SampleQuota // the samples charged to a key in this batch
	sigs       map[sigCountKey]int64
	addedBytes int64
	// addedCompBytes is the estimated size of the comparison rows written.
	addedCompBytes int64
	// comps holds the arguments of comparison rows not inserted yet.
	comps []any
}

type sigCountKey struct {
	route  string
	minute int64
	role   int
	sig    int64
}

func (b *batchState) sigCount(route string, minute int64, role int, sig int64) {
	b.sigs[sigCountKey{route, minute, role, sig}]++
}

func (b *batchState) minute(route string, at time.Time) *minuteAgg {
	k := minuteKey{route, minuteOf(at)}
	m := b.minutes[k]
	if m == nil {
		m = &minuteAgg{}
		b.minutes[k] = m
	}
	return m
}

// minuteOf is the UTC minute number of t (minutes since the Unix epoch).
func minuteOf(t time.Time) int64 {
	sec := t.Unix()
	if sec < 0 {
		return (sec - 59) / 60
	}
	return sec / 60
}

func (s *Store) applyBatch(batch []item) (err error) {
	ctx := context.Background()
	if len(s.pathCounts) > maxPathCache {
		clear(s.pathCounts)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	ts := s.stmts.in(ctx, tx)
	b := &batchState{
		minutes: map[minuteKey]*minuteAgg{},
		diffs:   map[diffKey]*diffAgg{},
		quota:   NewSampleQuota(s.o.SamplesPerPath, s.pathCount(ctx, ts)),
		sigs:    map[sigCountKey]int64{},
		comps:   make([]any, 0, comparisonsPerInsert*comparisonCols),
	}
	now := s.o.Now()
	for i := range batch {
		it := &batch[i]
		switch {
		case it.flush != nil:
		case it.ex != nil:
			if err := s.addExchange(ctx, ts, b, it.ex, now); err != nil {
				return err
			}
		default:
			at := it.at
			if at.IsZero() {
				at = now
			}
			addCounters(b.minute(it.route, at), &it.c)
		}
	}
	if err := s.writeMinutes(ctx, ts, b); err != nil {
		return err
	}
	for k, d := range b.diffs {
		if _, err := ts.upsertDiff.ExecContext(ctx, k.route, k.minute, string(k.kind), k.path, d.count, d.lastAt, boolInt(d.lastNoise)); err != nil {
			return err
		}
	}
	if err := s.writeComparisons(ctx, ts, b); err != nil {
		return err
	}
	for k, n := range b.sigs {
		if _, err := ts.upsertSigCount.ExecContext(ctx, k.route, k.minute, k.role, k.sig, n); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for k, n := range b.quota.pending {
		s.pathCounts[k] += n
	}
	comp := s.compBytes.Add(b.addedCompBytes)
	if total := s.sampleBytes.Add(b.addedBytes) + comp; total > s.o.MaxBytes {
		select {
		case s.janitorKick <- struct{}{}:
		default:
		}
	}
	return nil
}

func addCounters(m *minuteAgg, c *Counters) {
	// Negative deltas are a caller's bug; counters never go backwards.
	m.n[colRequests] += max(c.Requests, 0)
	m.n[colServedLegacy] += max(c.ServedLegacy, 0)
	m.n[colServedNew] += max(c.ServedNew, 0)
	m.n[colFallback] += max(c.Fallback, 0)
	m.n[colSent] += max(c.Sent, 0)
	m.n[colServedTandem] += max(c.ServedTandem, 0)
	m.n[colServedErrorsLegacy] += max(c.ServedErrors.Legacy, 0)
	m.n[colServedErrorsNew] += max(c.ServedErrors.New, 0)
	m.n[colServedErrorsTandem] += max(c.ServedErrors.Tandem, 0)
	for reason, v := range c.Skipped {
		if col, ok := skipCol[reason]; ok {
			m.n[col] += max(v, 0)
		}
	}
}

// sideFailed reports whether a side failed: a transport error or a 5xx.
func sideFailed(r *compare.Response) bool {
	return r != nil && (r.Err != "" || r.Status >= 500)
}

func (s *Store) addExchange(ctx context.Context, ts *writeStmts, b *batchState, ex *exchange.Exchange, now time.Time) error {
	if ex.At.IsZero() {
		ex.At = now
	}
	m := b.minute(ex.Route, ex.At)
	minute := minuteOf(ex.At)
	// The verdict is kept as the comparison's signature, classified when
	// read; the minutes table's matched, mismatched and noise columns are
	// no longer written (see schemaVersion). Compare errors are never
	// classified: they stay a column of their own.
	primarySig, err := s.sigID(ctx, ts, ex.Route, ex.Result.Signature())
	if err != nil {
		return err
	}
	if IsVerdict(ex.Result.Outcome) {
		b.sigCount(ex.Route, minute, rolePrimary, primarySig)
	} else {
		m.n[colCompareErrors]++
	}
	secondarySig := sigMatch
	if sr := ex.SecondaryResult; sr != nil {
		if secondarySig, err = s.sigID(ctx, ts, ex.Route, sr.Signature()); err != nil {
			return err
		}
		if IsVerdict(sr.Outcome) {
			b.sigCount(ex.Route, minute, roleSecondary, secondarySig)
		} else {
			b.sigCount(ex.Route, minute, roleSecondary, sigError)
		}
	}
	if sideFailed(ex.Legacy) {
		m.n[colLegacyErrors]++
	}
	if sideFailed(ex.New) {
		m.n[colNewErrors]++
	}
	if ex.Legacy != nil && ex.LegacyLatency > 0 {
		if m.hl == nil {
			m.hl = batchHist()
		}
		recordLatency(m.hl, ex.LegacyLatency)
	}
	if ex.New != nil && ex.NewLatency > 0 {
		if m.hn == nil {
			m.hn = batchHist()
		}
		recordLatency(m.hn, ex.NewLatency)
	}

	at := ex.At.UnixNano()
	keys := make([]SampleKey, 0, len(ex.Result.Diffs)+1)
	seen := make(map[SampleKey]bool, len(ex.Result.Diffs))
	for _, d := range ex.Result.Diffs {
		k := SampleKey{ex.Route, d.Kind, d.Path}
		if seen[k] {
			continue
		}
		seen[k] = true
		keys = append(keys, k)
		dk := diffKey{ex.Route, minute, d.Kind, d.Path}
		a := b.diffs[dk]
		if a == nil {
			a = &diffAgg{}
			b.diffs[dk] = a
		}
		a.count++
		if at >= a.lastAt {
			a.lastAt, a.lastNoise = at, d.Noise
		}
	}

	sampleID, err := s.addSample(ctx, ts, b, ex, keys)
	if err != nil {
		return err
	}
	if err := s.addComparison(ctx, ts, b, ex, rolePrimary, primarySig, ex.Result.Outcome, sampleID); err != nil {
		return err
	}
	if sr := ex.SecondaryResult; sr != nil {
		return s.addComparison(ctx, ts, b, ex, roleSecondary, secondarySig, sr.Outcome, "")
	}
	return nil
}

// isVerdict reports whether o is a comparison's verdict, as opposed to a
// compare error (or an outcome the store does not know, counted as one).
// IsVerdict reports whether o is a comparison's verdict (match, mismatch
// or noise), which the noise model may read again, rather than an error.
func IsVerdict(o compare.Outcome) bool {
	return o == compare.OutcomeMatch || o == compare.OutcomeMismatch || o == compare.OutcomeNoise
}

// comparisonOverhead is what a comparisons row costs beyond its strings
// (the integers, SQLite's record and page overhead and the two index
// entries), measured as 112 bytes a row of 16-byte request ids, route "images" and
// instance "127.0.0.1:8080" over 20,000 rows (TestComparisonBytes).
const comparisonOverhead = 56

// comparisonBytes estimates the bytes a comparisons row takes in the file:
// the request id is in the row and in its index.
func comparisonBytes(requestID, route, instance, outcome, sampleID string) int64 {
	return comparisonOverhead + int64(2*len(requestID)+len(route)+len(instance)+len(outcome)+len(sampleID))
}

// addComparison queues ex's comparison row for role; writeComparisons
// inserts the batch's rows.
func (s *Store) addComparison(ctx context.Context, ts *writeStmts, b *batchState, ex *exchange.Exchange, role int, sig int64, outcome compare.Outcome, sampleID string) error {
	n := comparisonBytes(ex.RequestID, ex.Route, s.o.Instance, string(outcome), sampleID)
	b.comps = append(b.comps, ex.RequestID, ex.At.UnixNano(), ex.Route, role, s.o.Instance, sig, string(outcome), sampleID, n)
	b.addedCompBytes += n
	if len(b.comps) == cap(b.comps) {
		return s.writeComparisons(ctx, ts, b)
	}
	return nil
}

// writeComparisons inserts the queued comparison rows, several to a
// statement (comparisonInserts): a statement a row costs about a third more
// writer time.
func (s *Store) writeComparisons(ctx context.Context, ts *writeStmts, b *batchState) error {
	args := b.comps
	for i, n := range comparisonInserts {
		for len(args) >= n*comparisonCols {
			if _, err := ts.insertComparisons[i].ExecContext(ctx, args[:n*comparisonCols]...); err != nil {
				return err
			}
			args = args[n*comparisonCols:]
		}
	}
	clear(b.comps)
	b.comps = b.comps[:0]
	return nil
}

// pathCount is the sample-keep rule's count of committed samples charged
// to a key: cached in s.pathCounts, read in the batch's transaction on
// first sight (then nothing for the key is inserted yet).
func (s *Store) pathCount(ctx context.Context, ts *writeStmts) func(SampleKey) (int, error) {
	return func(k SampleKey) (int, error) {
		if n, ok := s.pathCounts[k]; ok {
			return n, nil
		}
		var n int
		if err := ts.countPath.QueryRowContext(ctx, k.Route, string(k.Kind), k.Path).Scan(&n); err != nil {
			return 0, err
		}
		s.pathCounts[k] = n
		return n, nil
	}
}

// addSample stores a sample of ex when the sample-keep rule (SampleQuota)
// keeps it, and returns its id ("" when none was stored).
func (s *Store) addSample(ctx context.Context, ts *writeStmts, b *batchState, ex *exchange.Exchange, keys []SampleKey) (string, error) {
	at := ex.At.UnixNano()
	keys, charged, err := b.quota.Keep(ex, keys)
	if err != nil || keys == nil {
		return "", err
	}
	row, err := s.buildSample(ex)
	if err != nil {
		return "", err
	}
	if _, err := ts.insertSample.ExecContext(ctx,
		row.id, ex.Route, ex.RequestID, ex.Method, ex.Path, ex.ServedBy, at, string(ex.Result.Outcome),
		row.diffPaths, row.diffs, row.legacy, row.new, row.legacyBody, row.newBody, row.bytes); err != nil {
		return "", err
	}
	for i, k := range keys {
		if _, err := ts.insertSamplePath.ExecContext(ctx, k.Route, string(k.Kind), k.Path, row.id, at, boolInt(charged[i])); err != nil {
			return "", err
		}
	}
	b.addedBytes += row.bytes
	return row.id, nil
}

// writeMinutes upserts the batch's minute rows, merging its latency
// histograms into the stored ones.
func (s *Store) writeMinutes(ctx context.Context, ts *writeStmts, b *batchState) error {
	sel, ups := ts.selectHists, ts.upsertMinute
	args := make([]any, 0, nCols+4)
	for k, m := range b.minutes {
		var hl, hn any
		if m.hl != nil || m.hn != nil {
			c := s.hists[k]
			if c == nil {
				var ol, on []byte
				err := sel.QueryRowContext(ctx, k.route, k.minute).Scan(&ol, &on)
				if err != nil && err != sql.ErrNoRows {
					return err
				}
				c = &minuteHists{l: decodeStored(ol), n: decodeStored(on)}
				s.hists[k] = c
			}
			hl, hn = c.l.merge(m.hl), c.n.merge(m.hn)
		}
		args = append(args[:0], k.route, k.minute)
		for _, v := range m.n {
			args = append(args, v)
		}
		args = append(args, hl, hn)
		if _, err := ups.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	// Keep only this batch's minutes: the next batch mostly writes the same
	// ones, and a late exchange for an older minute reads its row again.
	for k := range s.hists {
		if _, ok := b.minutes[k]; !ok {
			delete(s.hists, k)
		}
	}
	return nil
}

// minuteHists are one minute row's latency histograms as stored.
type minuteHists struct{ l, n storedHist }

// storedHist is a stored histogram, decoded; h is nil while the row has none.
type storedHist struct{ h *hdrhistogram.Histogram }

// decodeStored decodes a stored histogram. One that cannot be decoded is
// replaced by the next write rather than blocking writes.
func decodeStored(b []byte) storedHist {
	h, err := decodeHist(b)
	if err != nil {
		return storedHist{}
	}
	return storedHist{h}
}

// merge adds h to the stored histogram and returns the new encoding, or nil
// (keep the stored value) when h is nil. h is the batch's and is not used
// again, so it becomes the stored one when there was none.
func (s *storedHist) merge(h *hdrhistogram.Histogram) any {
	if h == nil {
		return nil
	}
	if s.h == nil {
		s.h = h
	} else {
		s.h.Merge(h)
		spareHists.Put(h)
	}
	return encodeHist(s.h)
}

// spareHists recycles batch histograms once merged: each is 25 KiB of counts.
var spareHists = sync.Pool{New: func() any { return newHist() }}

// batchHist returns an empty histogram for one batch's latencies of a minute.
func batchHist() *hdrhistogram.Histogram {
	h := spareHists.Get().(*hdrhistogram.Histogram)
	h.Reset()
	return h
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sampleRow is a sample ready to insert.
type sampleRow struct {
	id                  string
	diffPaths           string
	diffs, legacy, new  []byte
	legacyBody, newBody []byte
	bytes               int64
}

// sampleOverhead is what a sample row costs beyond its variable parts.
const sampleOverhead = 256

func newSampleID(at time.Time) string {
	return fmt.Sprintf("%016x%016x", uint64(at.UnixNano()), rand.Uint64())
}

func (s *Store) buildSample(ex *exchange.Exchange) (*sampleRow, error) {
	r := &sampleRow{id: newSampleID(ex.At)}
	diffs := redactDiffs(ex.Result.Diffs)
	for i := range diffs {
		diffs[i].Legacy = scrubString(diffs[i].Legacy, ex.Secrets)
		diffs[i].New = scrubString(diffs[i].New, ex.Secrets)
	}
	paths := make([]string, 0, len(diffs))
	seen := map[string]bool{}
	for _, d := range diffs {
		if !seen[d.Path] {
			seen[d.Path] = true
			paths = append(paths, d.Path)
		}
	}
	var err error
	if r.diffs, err = json.Marshal(diffs); err != nil {
		return nil, err
	}
	pj, err := json.Marshal(paths)
	if err != nil {
		return nil, err
	}
	r.diffPaths = string(pj)
	var ls, ns SideSample
	ls, r.legacyBody = sideSample(ex.Legacy, ex.LegacyLatency, s.o.SampleBodyMax)
	ns, r.newBody = sideSample(ex.New, ex.NewLatency, s.o.SampleBodyMax)
	scrubSide(&ls, ex.Secrets)
	scrubSide(&ns, ex.Secrets)
	r.legacyBody = scrubBytes(r.legacyBody, ex.Secrets)
	r.newBody = scrubBytes(r.newBody, ex.Secrets)
	if r.legacy, err = json.Marshal(ls); err != nil {
		return nil, err
	}
	if r.new, err = json.Marshal(ns); err != nil {
		return nil, err
	}
	r.bytes = sampleOverhead + int64(len(r.diffs)+len(r.diffPaths)+len(r.legacy)+len(r.new)+len(r.legacyBody)+len(r.newBody)) +
		int64(len(ex.Route)+len(ex.RequestID)+len(ex.Method)+len(ex.Path)+len(ex.ServedBy))
	return r, nil
}
