package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/pgmigrate"
	"github.com/tandem-proxy/tandem/store"
)

// Defaults of Options' zero values beyond those store's defaults give.
const (
	// DefaultBufferItems bounds the items (exchanges and counter deltas)
	// enqueued and not yet committed, the batch being retried included.
	DefaultBufferItems = 8192
	// DefaultBufferBytes bounds their estimated size (a kept sample's
	// bodies count up to SampleBodyMax each).
	DefaultBufferBytes = 64 << 20
	// DefaultCloseTimeout bounds how long Close keeps retrying a database
	// that does not answer.
	DefaultCloseTimeout = 10 * time.Second
)

const (
	maxBatch      = 1024
	maxBatchBytes = 16 << 20
	flushInterval = 100 * time.Millisecond
	minBackoff    = 100 * time.Millisecond
	maxBackoff    = 5 * time.Second
	pingEvery     = 2 * time.Second
	janitorEvery  = time.Minute
)

// Options tune a Store. Every zero value has a documented default; the
// fields shared with store.Options mean what they mean there.
type Options struct {
	// SamplesPerPath is the number of samples kept per (route, kind,
	// path), over the fleet. 0: store.DefaultSamplesPerPath (5).
	SamplesPerPath int
	// SampleBodyMax is the bytes of each body kept in a sample.
	// 0: store.DefaultSampleBodyMax (1 MiB).
	SampleBodyMax int64
	// MaxBytes caps samples and comparison rows together (the fleet's);
	// the janitor deletes the oldest past it. 0: store.DefaultMaxBytes (1 GiB).
	MaxBytes int64
	// Retention is how long samples are kept. 0: store.DefaultRetention (7 days).
	Retention time.Duration
	// ComparisonRetention is how long comparison rows are kept.
	// 0: store.DefaultComparisonRetention (24 h).
	ComparisonRetention time.Duration
	// Noise is the model reads classify with. nil: nothing is noise.
	Noise compare.NoiseModel
	// Instance is this tandem's name: every row it writes carries it, and
	// Instance(name) reads one instance's rows. "" is stored as "".
	Instance string
	// BufferItems bounds the items enqueued and not yet committed, the
	// batch being retried included (see "Writes" in the package doc).
	// 0: DefaultBufferItems (8,192).
	BufferItems int
	// BufferBytes bounds their estimated size. 0: DefaultBufferBytes (64 MiB).
	BufferBytes int64
	// CloseTimeout bounds how long Close retries a database that does
	// not take the buffer. 0: DefaultCloseTimeout (10 s).
	CloseTimeout time.Duration
	// Now is the clock for zero times and the janitor. nil: time.Now.
	Now func() time.Time
	// Logger gets one line when writes start failing and one when they
	// succeed again. nil: slog.Default().
	Logger *slog.Logger
	// NoJanitor leaves retention and the size bound to Janitor calls.
	// false: a janitor goroutine runs every minute.
	NoJanitor bool
}

func (o *Options) fill() {
	if o.SamplesPerPath <= 0 {
		o.SamplesPerPath = store.DefaultSamplesPerPath
	}
	if o.SampleBodyMax <= 0 {
		o.SampleBodyMax = store.DefaultSampleBodyMax
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = store.DefaultMaxBytes
	}
	if o.Retention <= 0 {
		o.Retention = store.DefaultRetention
	}
	if o.ComparisonRetention <= 0 {
		o.ComparisonRetention = store.DefaultComparisonRetention
	}
	if o.Noise == nil {
		o.Noise = noNoise{}
	}
	if o.BufferItems <= 0 {
		o.BufferItems = DefaultBufferItems
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = DefaultBufferBytes
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

type noNoise struct{}

func (noNoise) Noise(string, compare.Kind, string) bool { return false }
func (noNoise) Classify(_ string, sig compare.Signature) compare.Outcome {
	if len(sig) == 0 {
		return compare.OutcomeMatch
	}
	return compare.OutcomeMismatch
}

// Store is the fleet's diff store on PostgreSQL. Its methods are safe for
// concurrent use.
type Store struct {
	o    Options
	pool *pgxpool.Pool

	qmu    sync.RWMutex
	closed bool
	q      chan item

	bufItems atomic.Int64 // enqueued, not yet committed or given up
	bufBytes atomic.Int64

	// Writer state (the writer goroutine only).
	sigs  map[string]*routeSigs
	hists map[minuteKey]*minuteHists
	// incarnation names this Store's writer in store_batches; seq is the
	// number of its last batch attempt.
	incarnation string
	seq         int64
	// afterCommit, when set (tests), runs after each successful COMMIT; an
	// error it returns stands for a reply lost after the commit.
	afterCommit func() error

	parsedMu sync.Mutex
	parsed   map[int64]compare.Signature

	up          atomic.Bool
	dropped     atomic.Int64
	writeErrors atomic.Int64
	written     atomic.Int64

	closing     chan struct{}
	writerDone  chan struct{}
	stopJanitor chan struct{}
	janitorDone chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

type item struct {
	ex    *exchange.Exchange
	route string
	at    time.Time
	c     store.Counters
	size  int64
	flush chan error
}

// Open connects to the PostgreSQL database at url, creates or migrates the
// store's schema (pgmigrate component "store") and starts the writer and
// the janitor. The database must be reachable at Open; later outages are
// buffered (see "Writes").
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: bad database URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s, err := New(ctx, pool, o)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// New is Open on a pool the caller made; Close closes the pool.
func New(ctx context.Context, pool *pgxpool.Pool, o Options) (*Store, error) {
	o.fill()
	if _, err := pgmigrate.Apply(ctx, pool, component, migrations()); err != nil {
		return nil, fmt.Errorf("pgstore: cannot migrate the schema: %w", err)
	}
	s := &Store{
		o: o, pool: pool,
		q:           make(chan item, o.BufferItems+1),
		sigs:        map[string]*routeSigs{},
		hists:       map[minuteKey]*minuteHists{},
		parsed:      map[int64]compare.Signature{},
		incarnation: o.Instance + "/" + randomHex(8),
		closing:     make(chan struct{}),
		writerDone:  make(chan struct{}),
		stopJanitor: make(chan struct{}),
		janitorDone: make(chan struct{}),
	}
	s.up.Store(true)
	go s.runWriter()
	if o.NoJanitor {
		close(s.janitorDone)
	} else {
		go s.runJanitor()
	}
	return s, nil
}

// Record enqueues a finished comparison without blocking; false (and a drop
// counted) when the buffer is full or the store closed.
func (s *Store) Record(ex *exchange.Exchange) bool {
	if ex == nil {
		return false
	}
	return s.enqueue(item{ex: ex, size: s.exBytes(ex)})
}

// AddCounters enqueues a counter delta of route at at (zero: now) without
// blocking; false (and a drop) when it cannot be taken.
func (s *Store) AddCounters(route string, at time.Time, delta store.Counters) bool {
	return s.enqueue(item{route: route, at: at, c: delta, size: 256})
}

func (s *Store) exBytes(ex *exchange.Exchange) int64 {
	n := int64(1024)
	for _, r := range []*compare.Response{ex.Legacy, ex.New} {
		if r != nil {
			n += min(int64(len(r.Body)), s.o.SampleBodyMax)
		}
	}
	return n
}

func (s *Store) enqueue(it item) bool {
	s.qmu.RLock()
	defer s.qmu.RUnlock()
	if s.closed {
		s.dropped.Add(1)
		return false
	}
	if n := s.bufItems.Add(1); n > int64(s.o.BufferItems) {
		s.bufItems.Add(-1)
		s.dropped.Add(1)
		return false
	}
	if b := s.bufBytes.Add(it.size); b > s.o.BufferBytes {
		s.bufBytes.Add(-it.size)
		s.bufItems.Add(-1)
		s.dropped.Add(1)
		return false
	}
	select {
	case s.q <- it:
		return true
	default: // cannot happen: the channel holds BufferItems+1
		s.bufBytes.Add(-it.size)
		s.bufItems.Add(-1)
		s.dropped.Add(1)
		return false
	}
}

// Flush waits until everything enqueued before it is committed, or returns
// the error of the attempt that failed (the items stay buffered and are
// retried). After Close it returns store.ErrClosed.
func (s *Store) Flush() error {
	ch := make(chan error, 1)
	s.qmu.RLock()
	if s.closed {
		s.qmu.RUnlock()
		return store.ErrClosed
	}
	s.q <- item{flush: ch}
	s.qmu.RUnlock()
	return <-ch
}

// Stats returns the store's counters: Queued is what is buffered (queued
// or in the batch being retried); WriteErrors counts items given up (only
// at Close past its deadline), all as WriteErrorOther.
func (s *Store) Stats() store.StoreStats {
	st := store.StoreStats{
		Queued:      s.bufItems.Load(),
		Dropped:     s.dropped.Load(),
		WriteErrors: s.writeErrors.Load(),
		Written:     s.written.Load(),
	}
	for i, r := range store.WriteErrorReasons {
		if r == store.WriteErrorOther {
			st.WriteErrorsBy[i] = st.WriteErrors
		}
	}
	return st
}

// Up reports whether the last write or ping succeeded
// (tandem_fleet_database_up).
func (s *Store) Up() bool { return s.up.Load() }

// Close stops taking items, commits what is buffered (retrying for at most
// CloseTimeout), stops the janitor and closes the pool. Safe to call more
// than once; later calls return the first one's error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.qmu.Lock()
		s.closed = true
		close(s.closing)
		close(s.q)
		s.qmu.Unlock()
		<-s.writerDone
		close(s.stopJanitor)
		<-s.janitorDone
		if n := s.writeErrors.Load(); n > 0 {
			s.closeErr = fmt.Errorf("pgstore: %d items could not be written before the close deadline", n)
		}
		s.pool.Close()
	})
	return s.closeErr
}

var errGaveUp = errors.New("pgstore: closed before the database accepted the batch")

func bg() context.Context { return context.Background() }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
