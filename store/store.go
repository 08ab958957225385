package store

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
)

// Defaults for the zero values of Options.
const (
	DefaultSamplesPerPath = 5
	DefaultSampleBodyMax  = 1 << 20
	DefaultMaxBytes       = 1 << 30
	DefaultRetention      = 7 * 24 * time.Hour
	DefaultQueueSize      = 4096
	// DefaultComparisonRetention is how long per-request comparison rows
	// are kept (Options.ComparisonRetention, retention.comparisons).
	DefaultComparisonRetention = 24 * time.Hour
)

const (
	maxBatch       = 1024                   // items per transaction
	maxBatchBytes  = 16 << 20               // body bytes per transaction, so a retry after a full disk stays small
	flushInterval  = 100 * time.Millisecond // longest wait to fill a batch
	pollInterval   = 10 * time.Millisecond  // how often a filling batch looks at the queue
	failureBackoff = time.Second            // pause after a failed transaction
	janitorEvery   = time.Minute            // janitor ticker
)

// ErrNotFound is returned by Sample for an unknown (or expired) id.
var ErrNotFound = errors.New("store: sample not found")

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("store: closed")

// Options tune a Store. Every zero value has a documented default.
type Options struct {
	// SamplesPerPath is the number of samples kept per (route, kind, path).
	// 0 means DefaultSamplesPerPath (5).
	SamplesPerPath int
	// SampleBodyMax is the number of bytes of each response body kept in a
	// sample. 0 means DefaultSampleBodyMax (1 MiB).
	SampleBodyMax int64
	// MaxBytes caps the total size of stored samples (bodies, headers,
	// differences); the janitor deletes the oldest samples past it.
	// 0 means DefaultMaxBytes (1 GiB).
	MaxBytes int64
	// Retention is how long samples are kept. 0 means DefaultRetention (7 days).
	Retention time.Duration
	// ComparisonRetention is how long the per-request comparison rows
	// (Comparisons) are kept; they also count against MaxBytes.
	// 0 means DefaultComparisonRetention (24 h).
	ComparisonRetention time.Duration
	// Noise is the noise model Report and Comparisons classify recorded
	// signatures with when they read them (see "Noise" in the package doc).
	// nil means a model under which nothing is noise: every difference is
	// a mismatch.
	Noise compare.NoiseModel
	// Instance is this tandem's name, written on every comparison row
	// (Comparison.Instance). "" is stored as "".
	Instance string
	// QueueSize bounds the write queue; Record and AddCounters return false
	// when it is full. 0 means DefaultQueueSize (4096).
	QueueSize int
	// Now is the clock, used when an Exchange or a counter delta has a zero
	// time and by the janitor. nil means time.Now.
	Now func() time.Time
	// Logger receives one line when writes start failing (a full or broken
	// disk under data_dir) and one when they succeed again, never one per
	// failed batch. nil means slog.Default().
	Logger *slog.Logger

	// Test hooks and tuning, unexported.
	beforeBatch func()        // called by the writer before committing each batch
	synchronous string        // PRAGMA synchronous; "" means FULL
	noJanitor   bool          // do not start the janitor goroutine
	backoff     time.Duration // pause after a failed transaction; 0 means failureBackoff
}

func (o *Options) fill() {
	if o.SamplesPerPath <= 0 {
		o.SamplesPerPath = DefaultSamplesPerPath
	}
	if o.SampleBodyMax <= 0 {
		o.SampleBodyMax = DefaultSampleBodyMax
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.ComparisonRetention <= 0 {
		o.ComparisonRetention = DefaultComparisonRetention
	}
	if o.Noise == nil {
		o.Noise = noNoise{}
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.backoff <= 0 {
		o.backoff = failureBackoff
	}
	if o.synchronous == "" {
		o.synchronous = "FULL"
	}
}

// Skip reasons: the closed set of Counters.Skipped keys (and of
// RouteReport.Skipped), shadow outcomes each with a column of its own. Other
// keys are ignored. Error is kept for the report's shape; the data plane
// counts a sent copy that failed as mirrored, not skipped.
var SkipReasons = []exchange.Outcome{exchange.Sampling, exchange.QueueFull, exchange.BreakerOpen, exchange.TooLarge, exchange.SpoolFull, exchange.Error}

// Counters are traffic counters kept by the data plane. The caller flushes
// deltas (not totals) every few seconds with AddCounters.
type Counters struct {
	// Requests counts every answer the route's clients got: ServedLegacy +
	// ServedNew + ServedTandem. ServedLegacy and ServedNew count the
	// requests sent to that side, its failures (tandem's 502 and 504)
	// included; ServedTandem those tandem answered itself, no backend at
	// fault (a refused body, a request it cannot forward).
	Requests, ServedLegacy, ServedNew, ServedTandem, Fallback int64
	// ServedErrors counts the error answers clients got, by who served them:
	// a failed exchange or a 5xx for legacy and new, every answer for tandem.
	ServedErrors ServedCounts
	// Skipped counts shadows not sent, by reason (SkipReasons); other keys
	// are ignored. Negative values anywhere are ignored.
	Skipped map[exchange.Outcome]int64
	// Sent counts the served requests whose copy was handed to the shadow
	// side; reports call it Mirrored. It is never more than Requests in the
	// same delta.
	Sent int64
}

// ServedCounts are counts by who answered the client.
type ServedCounts struct {
	Legacy int64 `json:"legacy"`
	New    int64 `json:"new"`
	Tandem int64 `json:"tandem"`
}

// Total is the sum of the three.
func (c ServedCounts) Total() int64 { return c.Legacy + c.New + c.Tandem }

// StoreStats are the store's own counters, exported by the caller as metrics.
type StoreStats struct {
	Queued      int64 // items on the queue now
	Dropped     int64 // Record/AddCounters calls refused: queue full (or store closed)
	WriteErrors int64 // items lost because their transaction failed
	// WriteErrorsBy splits WriteErrors by reason, indexed like
	// WriteErrorReasons.
	WriteErrorsBy [len(WriteErrorReasons)]int64
	Written       int64 // items committed
}

// Write error reasons: the closed set of StoreStats.WriteErrorsBy.
const (
	WriteErrorDiskFull = "disk_full" // SQLITE_FULL or ENOSPC: data_dir has no room
	WriteErrorIO       = "io"        // SQLITE_IOERR and the like: the disk failed the write
	WriteErrorOther    = "other"     // anything else (a locked or corrupt file, a bug)
)

// WriteErrorReasons lists the write error reasons in WriteErrorsBy's order.
var WriteErrorReasons = [...]string{WriteErrorDiskFull, WriteErrorIO, WriteErrorOther}

// Store is the diff store. Its methods are safe for concurrent use.
type Store struct {
	path string
	o    Options

	// queue: senders hold qmu.RLock; Close takes qmu.Lock to close q.
	qmu    sync.RWMutex
	closed bool
	q      chan item

	// wmu serialises the writer's and the janitor's use of wdb (one
	// connection) and the cache below.
	wmu        sync.Mutex
	wdb        *sql.DB
	stmts      writeStmts
	pathCounts map[SampleKey]int // charged samples per key; a cache of sample_paths
	// hists holds the latency histograms of the minute rows the last batch
	// wrote, as committed, so the next batch merges into them instead of
	// reading and decoding the stored ones again. Cleared when a batch fails.
	hists map[minuteKey]*minuteHists

	// sigs caches the signatures table per route for the writer (wmu);
	// cleared when a batch fails.
	sigs map[string]*routeSigs

	rdb *sql.DB // readers: Report, Samples, Sample, Comparisons

	// parsed caches decoded signatures for readers: an id never changes
	// its signature, so entries stay valid.
	parsedMu sync.Mutex
	parsed   map[sigRef]compare.Signature

	sampleBytes atomic.Int64 // approximate total of samples.bytes
	compBytes   atomic.Int64 // approximate total of comparisons.bytes
	dropped     atomic.Int64
	writeErrors atomic.Int64
	writeErrBy  [len(WriteErrorReasons)]atomic.Int64
	written     atomic.Int64

	janitorKick chan struct{}
	closing     chan struct{} // closed when Close starts: ends the writer's backoff
	stop        chan struct{} // closed after the writer is done: stops the janitor
	writerDone  chan struct{}
	janitorDone chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

// item is one queue entry: an exchange, a counter delta, or a flush marker.
type item struct {
	ex    *exchange.Exchange
	route string
	at    time.Time
	c     Counters
	flush chan error
}

// Record enqueues a finished comparison without blocking. It returns false,
// and counts a drop, when the queue is full or the store is closed.
func (s *Store) Record(ex *exchange.Exchange) bool {
	if ex == nil {
		return false
	}
	return s.enqueue(item{ex: ex})
}

// AddCounters enqueues a delta of route's traffic counters observed at at
// (zero: now) without blocking. It returns false, and counts a drop, when
// the queue is full or the store is closed.
func (s *Store) AddCounters(route string, at time.Time, delta Counters) bool {
	return s.enqueue(item{route: route, at: at, c: delta})
}

func (s *Store) enqueue(it item) bool {
	s.qmu.RLock()
	if s.closed {
		s.qmu.RUnlock()
		s.dropped.Add(1)
		return false
	}
	select {
	case s.q <- it:
		s.qmu.RUnlock()
		return true
	default:
		s.qmu.RUnlock()
		s.dropped.Add(1)
		return false
	}
}

// Flush waits until everything enqueued before the call is committed (or
// has failed) and returns the error of the transaction it ended, if that
// failed. Unlike Record it blocks, on a full queue too; it is for shutdown
// paths and tests. After Close it returns ErrClosed.
func (s *Store) Flush() error {
	ch := make(chan error, 1)
	s.qmu.RLock()
	if s.closed {
		s.qmu.RUnlock()
		return ErrClosed
	}
	s.q <- item{flush: ch}
	s.qmu.RUnlock()
	return <-ch
}

// Stats returns the store's counters.
func (s *Store) Stats() StoreStats {
	return StoreStats{
		Queued:        int64(len(s.q)),
		Dropped:       s.dropped.Load(),
		WriteErrors:   s.writeErrors.Load(),
		WriteErrorsBy: s.writeErrorsBy(),
		Written:       s.written.Load(),
	}
}

func (s *Store) writeErrorsBy() (by [len(WriteErrorReasons)]int64) {
	for i := range by {
		by[i] = s.writeErrBy[i].Load()
	}
	return by
}

// Close stops accepting items, commits what is queued, stops the janitor and
// closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.qmu.Lock()
		s.closed = true
		close(s.q)
		s.qmu.Unlock()
		<-s.writerDone
		close(s.stop)
		<-s.janitorDone

		s.wmu.Lock()
		defer s.wmu.Unlock()
		var errs []error
		s.stmts.close()
		if err := s.wdb.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := s.rdb.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("cannot close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }
