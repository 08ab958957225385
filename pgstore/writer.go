package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jackc/pgx/v5"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/latency"
	"github.com/tandem-proxy/tandem/store"
)

// Signature ids: the store_signatures ids are ≥ 1; these are reserved.
const (
	sigMatch    int64 = 0
	sigOverflow int64 = -1
	sigError    int64 = -2
)

const (
	maxFullSignatures = 3072
	maxSignatures     = 4096
	rolePrimary       = 0
	roleSecondary     = 1
	sampleOverhead    = 256
	comparisonOverhd  = 56
)

type minuteKey struct {
	route  string
	minute int64
}

type minuteAgg struct {
	n      [nCols]int64
	hl, hn *hdrhistogram.Histogram
}

type minuteHists struct{ l, n *hdrhistogram.Histogram }

type routeSigs struct{ ids map[string]int64 }

type diffKey struct {
	route  string
	minute int64
	kind   compare.Kind
	path   string
}

type sigCountKey struct {
	route  string
	minute int64
	role   int
	sig    int64
}

func minuteOf(t time.Time) int64 {
	sec := t.Unix()
	if sec < 0 {
		return (sec - 59) / 60
	}
	return sec / 60
}

// runWriter drains the queue in batches, each committed as one
// transaction. A batch that fails is kept and retried with backoff
// (doubling from 100 ms to 5 s) while new items wait on the queue; once
// the store is closing it is retried until CloseTimeout, then given up.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	var held []item // data items of a failed batch
	// heldSeq and heldN: the failed attempt's number and how many items of
	// held it had (a retry takes more): if its COMMIT did reach the
	// database, those are in and the retry skips them.
	var heldSeq int64
	var heldN int
	backoff := minBackoff
	open := true
	var deadline time.Time
	for {
		batch := held
		backoffReset := held == nil
		held = nil
		var marks []chan error
		if len(batch) == 0 {
			if !open {
				return
			}
			select {
			case it, ok := <-s.q:
				if !ok {
					return
				}
				if it.flush != nil {
					marks = append(marks, it.flush)
				} else {
					batch = append(batch, it)
				}
			case <-ping.C:
				s.ping()
				continue
			}
		}
		// Fill: what arrives within flushInterval, up to the bounds; a
		// flush marker or closing ends the wait.
		size := int64(0)
		for _, it := range batch {
			size += it.size
		}
		// A batch being retried takes everything queued, without waiting
		// (the buffer bounds it): a Flush behind it must get its answer
		// from the next attempt, not wait for the database.
		retrying := len(batch) > 0 && !backoffReset
		limit, sizeLimit := maxBatch, int64(maxBatchBytes)
		if retrying {
			limit, sizeLimit = math.MaxInt, math.MaxInt64
		}
		wait := time.NewTimer(flushInterval)
	fill:
		for open && len(batch) < limit && size < sizeLimit {
			if len(marks) > 0 || retrying {
				select {
				case it, ok := <-s.q:
					if !ok {
						open = false
						break fill
					}
					if it.flush != nil {
						marks = append(marks, it.flush)
					} else {
						batch, size = append(batch, it), size+it.size
					}
					continue
				default:
					break fill
				}
			}
			select {
			case it, ok := <-s.q:
				if !ok {
					open = false
					break fill
				}
				if it.flush != nil {
					marks = append(marks, it.flush)
				} else {
					batch, size = append(batch, it), size+it.size
				}
			case <-wait.C:
				break fill
			case <-s.closing:
				// Take what is queued now without waiting.
				select {
				case it, ok := <-s.q:
					if !ok {
						open = false
						break fill
					}
					if it.flush != nil {
						marks = append(marks, it.flush)
					} else {
						batch, size = append(batch, it), size+it.size
					}
				default:
					break fill
				}
			}
		}
		wait.Stop()
		var err error
		if len(batch) > 0 {
			s.seq++
			err = s.applyBatch(batch, s.seq, heldSeq, heldN)
		}
		// The counts first, then the Flush answers: when Flush returns,
		// Stats already counts what it acknowledged.
		if err == nil {
			if len(batch) > 0 {
				s.written.Add(int64(len(batch)))
				s.release(batch)
				s.setUp(true, nil)
			}
			for _, m := range marks {
				m <- nil
			}
			heldSeq, heldN = 0, 0
			backoff = minBackoff
			continue
		}
		s.setUp(false, err)
		var done errCommitted
		if errors.As(err, &done) {
			// The attempt before found committed: its items are in.
			s.written.Add(int64(done.n))
			s.release(batch[:done.n])
			batch = batch[done.n:]
		}
		for _, m := range marks {
			m <- err
		}
		held, heldSeq, heldN = batch, s.seq, len(batch)
		select {
		case <-s.closing:
			if deadline.IsZero() {
				deadline = time.Now().Add(s.o.CloseTimeout)
			}
		default:
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			s.giveUp(held)
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.closing:
			if deadline.IsZero() {
				deadline = time.Now().Add(s.o.CloseTimeout)
			}
			t.Stop()
			time.Sleep(min(backoff, time.Until(deadline)))
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// giveUp counts held and everything still queued as lost (Close past its
// deadline); the queue is closed.
func (s *Store) giveUp(held []item) {
	n := int64(len(held))
	s.release(held)
	for it := range s.q {
		if it.flush != nil {
			it.flush <- errGaveUp
			continue
		}
		n++
		s.release([]item{it})
	}
	s.writeErrors.Add(n)
	s.o.Logger.Error("pgstore: closed with items the database did not take", "lost_items", n)
}

func (s *Store) release(batch []item) {
	var b int64
	for _, it := range batch {
		b += it.size
	}
	s.bufItems.Add(-int64(len(batch)))
	s.bufBytes.Add(-b)
}

func (s *Store) setUp(up bool, err error) {
	if was := s.up.Swap(up); was != up {
		if up {
			s.o.Logger.Info("pgstore: the database takes writes again", "buffered", s.bufItems.Load())
		} else {
			s.o.Logger.Error("pgstore: cannot write to the database; buffering report data", "err", err)
		}
	}
}

func (s *Store) ping() {
	ctx, cancel := context.WithTimeout(bg(), pingEvery)
	defer cancel()
	err := s.pool.Ping(ctx)
	s.setUp(err == nil, err)
}

// batchState is one attempt at a batch.
type batchState struct {
	q       *pgx.Batch
	minutes map[minuteKey]*minuteAgg
	diffs   map[diffKey]int64
	sigs    map[sigCountKey]int64
	base    map[store.SampleKey]int // committed charged samples per key, read in this attempt
	quota   *store.SampleQuota
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

// errCommitted is applyBatch's error when it found that the previous
// attempt (prevSeq), which had failed, was committed after all, and then
// failed itself: the first n items of the batch are in the database.
type errCommitted struct {
	n   int
	err error
}

func (e errCommitted) Error() string { return e.err.Error() }
func (e errCommitted) Unwrap() error { return e.err }

// applyBatch writes batch as attempt seq, in one transaction that also
// records seq in store_batches. When the attempt before failed (prevSeq,
// with its first prevN items), it first reads whether that attempt's
// COMMIT reached the database all the same (its reply lost in a network
// failure): then those items are not added again.
func (s *Store) applyBatch(batch []item, seq, prevSeq int64, prevN int) (err error) {
	ctx := bg()
	skip := 0
	defer func() {
		if err != nil {
			clear(s.hists) // merged into inside the failed attempt
			if skip > 0 {
				err = errCommitted{n: skip, err: err}
			}
		}
	}()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if prevSeq > 0 {
		var committed bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM store_batches WHERE incarnation = $1 AND seq = $2)`,
			s.incarnation, prevSeq).Scan(&committed); err != nil {
			return err
		}
		if committed {
			skip = prevN
			batch = batch[prevN:]
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO store_batches (incarnation, seq) VALUES ($1, $2)
		ON CONFLICT (incarnation) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now()`, s.incarnation, seq); err != nil {
		return err
	}
	b := &batchState{q: &pgx.Batch{}, minutes: map[minuteKey]*minuteAgg{}, diffs: map[diffKey]int64{},
		sigs: map[sigCountKey]int64{}, base: map[store.SampleKey]int{}}
	b.quota = store.NewSampleQuota(s.o.SamplesPerPath, func(k store.SampleKey) (int, error) { return b.pathCount(ctx, tx, k) })
	now := s.o.Now()
	for i := range batch {
		it := &batch[i]
		if it.ex != nil {
			if err := s.addExchange(ctx, tx, b, it.ex, now); err != nil {
				return err
			}
			continue
		}
		at := it.at
		if at.IsZero() {
			at = now
			it.at = now // a retry charges the same minute
		}
		addCounters(b.minute(it.route, at), &it.c)
	}
	if err := s.queueMinutes(ctx, tx, b); err != nil {
		return err
	}
	for k, n := range b.diffs {
		b.q.Queue(`INSERT INTO store_minute_diffs AS t (route, minute, instance, kind, path, count) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (route, minute, instance, kind, path) DO UPDATE SET count = t.count + EXCLUDED.count`,
			k.route, k.minute, s.o.Instance, string(k.kind), k.path, n)
	}
	for k, n := range b.sigs {
		b.q.Queue(`INSERT INTO store_minute_sigs AS t (route, minute, instance, role, sig, count) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (route, minute, instance, role, sig) DO UPDATE SET count = t.count + EXCLUDED.count`,
			k.route, k.minute, s.o.Instance, k.role, k.sig, n)
	}
	if err := tx.SendBatch(ctx, b.q).Close(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if s.afterCommit != nil {
		return s.afterCommit()
	}
	return nil
}

func addCounters(m *minuteAgg, c *store.Counters) {
	m.n[colRequests] += max(c.Requests, 0)
	m.n[colServedLegacy] += max(c.ServedLegacy, 0)
	m.n[colServedNew] += max(c.ServedNew, 0)
	m.n[colServedTandem] += max(c.ServedTandem, 0)
	m.n[colFallback] += max(c.Fallback, 0)
	m.n[colSent] += max(c.Sent, 0)
	m.n[colServedErrorsLegacy] += max(c.ServedErrors.Legacy, 0)
	m.n[colServedErrorsNew] += max(c.ServedErrors.New, 0)
	m.n[colServedErrorsTandem] += max(c.ServedErrors.Tandem, 0)
	for reason, v := range c.Skipped {
		if col, ok := skipCol[reason]; ok {
			m.n[col] += max(v, 0)
		}
	}
}

func sideFailed(r *compare.Response) bool { return r != nil && (r.Err != "" || r.Status >= 500) }

func (s *Store) addExchange(ctx context.Context, tx pgx.Tx, b *batchState, ex *exchange.Exchange, now time.Time) error {
	if ex.At.IsZero() {
		ex.At = now
	}
	m := b.minute(ex.Route, ex.At)
	minute := minuteOf(ex.At)
	primary, err := s.sigID(ctx, ex.Route, ex.Result.Signature())
	if err != nil {
		return err
	}
	if store.IsVerdict(ex.Result.Outcome) {
		b.sigs[sigCountKey{ex.Route, minute, rolePrimary, primary}]++
	} else {
		m.n[colCompareErrors]++
	}
	secondary := sigMatch
	if sr := ex.SecondaryResult; sr != nil {
		if secondary, err = s.sigID(ctx, ex.Route, sr.Signature()); err != nil {
			return err
		}
		if store.IsVerdict(sr.Outcome) {
			b.sigs[sigCountKey{ex.Route, minute, roleSecondary, secondary}]++
		} else {
			b.sigs[sigCountKey{ex.Route, minute, roleSecondary, sigError}]++
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
			m.hl = latency.New()
		}
		latency.Record(m.hl, ex.LegacyLatency)
	}
	if ex.New != nil && ex.NewLatency > 0 {
		if m.hn == nil {
			m.hn = latency.New()
		}
		latency.Record(m.hn, ex.NewLatency)
	}
	var keys []store.SampleKey
	seen := map[store.SampleKey]bool{}
	for _, d := range ex.Result.Diffs {
		k := store.SampleKey{Route: ex.Route, Kind: d.Kind, Path: d.Path}
		if seen[k] {
			continue
		}
		seen[k] = true
		keys = append(keys, k)
		b.diffs[diffKey{ex.Route, minute, d.Kind, d.Path}]++
	}
	sampleID, err := s.addSample(ctx, tx, b, ex, keys)
	if err != nil {
		return err
	}
	s.queueComparison(b, ex, rolePrimary, primary, ex.Result.Outcome, sampleID)
	if sr := ex.SecondaryResult; sr != nil {
		s.queueComparison(b, ex, roleSecondary, secondary, sr.Outcome, "")
	}
	return nil
}

func (s *Store) queueComparison(b *batchState, ex *exchange.Exchange, role int, sig int64, outcome compare.Outcome, sampleID string) {
	n := comparisonOverhd + int64(2*len(ex.RequestID)+len(ex.Route)+len(s.o.Instance)+len(outcome)+len(sampleID))
	b.q.Queue(`INSERT INTO store_comparisons (request_id, at, route, role, instance, sig, outcome, sample_id, bytes)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		ex.RequestID, ex.At.UnixNano(), ex.Route, role, s.o.Instance, sig, string(outcome), sampleID, n)
}

// sigID returns the shared id of route's signature sig, inserting it when
// new. The upsert runs on its own (autocommit), outside the batch's
// transaction, so an id once cached stays valid whatever the batch does,
// and two instances recording the same signature get the same id.
func (s *Store) sigID(ctx context.Context, route string, sig compare.Signature) (int64, error) {
	if len(sig) == 0 {
		return sigMatch, nil
	}
	rs := s.sigs[route]
	if rs == nil {
		rows, err := s.pool.Query(ctx, "SELECT id, sig FROM store_signatures WHERE route = $1", route)
		if err != nil {
			return 0, err
		}
		rs = &routeSigs{ids: map[string]int64{}}
		for rows.Next() {
			var id int64
			var key string
			if err := rows.Scan(&id, &key); err != nil {
				rows.Close()
				return 0, err
			}
			rs.ids[key] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		s.sigs[route] = rs
	}
	key := sig.Key()
	if id, ok := rs.ids[key]; ok {
		return id, nil
	}
	shape := false
	if len(rs.ids) >= maxFullSignatures {
		key, shape = sig.Shape().Key(), true
		if id, ok := rs.ids[key]; ok {
			return id, nil
		}
		if len(rs.ids) >= maxSignatures {
			return sigOverflow, nil
		}
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO store_signatures AS t (route, sig, shape) VALUES ($1, $2, $3)
		ON CONFLICT (route, sig) DO UPDATE SET shape = t.shape RETURNING id`, route, key, shape).Scan(&id)
	if err != nil {
		return 0, err
	}
	rs.ids[key] = id
	return id, nil
}

func newSampleID(at time.Time) string {
	return fmt.Sprintf("%016x%016x", uint64(at.UnixNano()), rand.Uint64())
}

// pathCount is the sample-keep rule's count of committed samples charged
// to k, read once in this attempt's transaction.
func (b *batchState) pathCount(ctx context.Context, tx pgx.Tx, k store.SampleKey) (int, error) {
	if n, ok := b.base[k]; ok {
		return n, nil
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM store_sample_paths WHERE route = $1 AND kind = $2 AND path = $3 AND charged`,
		k.Route, string(k.Kind), k.Path).Scan(&n); err != nil {
		return 0, err
	}
	b.base[k] = n
	return n, nil
}

// addSample queues a sample of ex when the sample-keep rule
// (store.SampleQuota) keeps it, and returns its id ("" when none is kept).
func (s *Store) addSample(ctx context.Context, tx pgx.Tx, b *batchState, ex *exchange.Exchange, keys []store.SampleKey) (string, error) {
	keys, charged, err := b.quota.Keep(ex, keys)
	if err != nil || keys == nil {
		return "", err
	}
	sm := store.SampleOf(ex, s.o.SampleBodyMax)
	id := newSampleID(ex.At)
	lb, nb := sm.Legacy.Body, sm.New.Body
	sm.Legacy.Body, sm.New.Body = nil, nil
	var paths []string
	seen := map[string]bool{}
	for _, d := range sm.Diffs {
		if !seen[d.Path] {
			seen[d.Path] = true
			paths = append(paths, d.Path)
		}
	}
	if paths == nil {
		paths = []string{}
	}
	diffs, err1 := json.Marshal(sm.Diffs)
	pj, err2 := json.Marshal(paths)
	lj, err3 := json.Marshal(sm.Legacy)
	nj, err4 := json.Marshal(sm.New)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return "", err
		}
	}
	sig := (&compare.Result{Diffs: sm.Diffs}).Signature().Key()
	size := sampleOverhead + int64(len(diffs)+len(pj)+len(lj)+len(nj)+len(lb)+len(nb)+len(sig)) +
		int64(len(ex.Route)+len(ex.RequestID)+len(ex.Method)+len(ex.Path)+len(ex.ServedBy))
	b.q.Queue(`INSERT INTO store_samples (id, instance, route, request_id, method, path, served_by, at, outcome,
		legacy_status, new_status, sig, diff_paths, diffs, legacy, new, legacy_body, new_body, bytes)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		id, s.o.Instance, ex.Route, ex.RequestID, ex.Method, ex.Path, ex.ServedBy, ex.At.UnixNano(), string(ex.Result.Outcome),
		sm.Legacy.Status, sm.New.Status, sig, string(pj), string(diffs), string(lj), string(nj), lb, nb, size)
	for i, k := range keys {
		b.q.Queue(`INSERT INTO store_sample_paths (route, kind, path, instance, sample_id, at, charged) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.Route, string(k.Kind), k.Path, s.o.Instance, id, ex.At.UnixNano(), charged[i])
	}
	return id, nil
}

// queueMinutes queues the batch's minute rows of this instance, adding the
// counters and merging the latency histograms into the row's stored ones
// (read once, then kept in memory: only this instance writes its rows).
func (s *Store) queueMinutes(ctx context.Context, tx pgx.Tx, b *batchState) error {
	cols := strings.Join(colNames[:], ", ")
	var ph, sets strings.Builder
	for i, c := range colNames {
		fmt.Fprintf(&ph, ", $%d", i+4)
		fmt.Fprintf(&sets, "%s = t.%s + EXCLUDED.%s, ", c, c, c)
	}
	q := fmt.Sprintf(`INSERT INTO store_minutes AS t (route, minute, instance, %s, hist_legacy, hist_new) VALUES ($1, $2, $3%s, $%d, $%d)
		ON CONFLICT (route, minute, instance) DO UPDATE SET %s hist_legacy = COALESCE(EXCLUDED.hist_legacy, t.hist_legacy),
		hist_new = COALESCE(EXCLUDED.hist_new, t.hist_new)`, cols, ph.String(), nCols+4, nCols+5, sets.String())
	for k, m := range b.minutes {
		var hl, hn []byte
		if m.hl != nil || m.hn != nil {
			c := s.hists[k]
			if c == nil {
				var ol, on []byte
				err := tx.QueryRow(ctx, "SELECT hist_legacy, hist_new FROM store_minutes WHERE route = $1 AND minute = $2 AND instance = $3",
					k.route, k.minute, s.o.Instance).Scan(&ol, &on)
				if err != nil && err != pgx.ErrNoRows {
					return err
				}
				c = &minuteHists{l: decodeHist(ol), n: decodeHist(on)}
				s.hists[k] = c
			}
			var err error
			if hl, err = mergeHist(&c.l, m.hl); err != nil {
				return err
			}
			if hn, err = mergeHist(&c.n, m.hn); err != nil {
				return err
			}
		}
		args := []any{k.route, k.minute, s.o.Instance}
		for _, v := range m.n {
			args = append(args, v)
		}
		args = append(args, hl, hn)
		b.q.Queue(q, args...)
	}
	for k := range s.hists {
		if _, ok := b.minutes[k]; !ok {
			delete(s.hists, k)
		}
	}
	return nil
}

// Histograms are stored in HdrHistogram's V2 compressed encoding, of
// internal/latency's geometry.
func decodeHist(b []byte) *hdrhistogram.Histogram {
	if len(b) == 0 {
		return nil
	}
	h, err := hdrhistogram.Decode(b)
	if err != nil {
		return nil // replaced by the next write rather than blocking writes
	}
	return h
}

func mergeHist(stored **hdrhistogram.Histogram, h *hdrhistogram.Histogram) ([]byte, error) {
	if h == nil {
		return nil, nil
	}
	if *stored == nil {
		*stored = h
	} else {
		(*stored).Merge(h)
	}
	return (*stored).Encode(hdrhistogram.V2CompressedEncodingCookieBase)
}
