package pgramp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tandem-proxy/tandem/internal/pgmigrate"
	"github.com/tandem-proxy/tandem/pglease"
	"github.com/tandem-proxy/tandem/pgrules"
	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/rules"
)

// Component is this package's name in internal/pgmigrate's ledger.
const Component = "ramp"

// Migrations create the snapshot table: one row per route and instance,
// the instance's window for the route's current step, upserted every tick.
var Migrations = []pgmigrate.Migration{
	{Version: 1, SQL: `CREATE TABLE ramp_snapshots (
	route TEXT NOT NULL,
	instance TEXT NOT NULL,
	step_key TEXT NOT NULL,
	snapshot JSONB NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (route, instance)
)`},
}

// LeaseName is the pglease name of route's ramp.
func LeaseName(route string) string { return "ramp:" + route }

// Options of a Fleet. Instance and Rules are required.
type Options struct {
	// Instance is this instance's name (fleet.instance): the lease holder
	// and the snapshots' instance. It must be the pgrules Store's.
	Instance string
	// Rules is the instance's fleet rules store: the ramped routes, the
	// registry (live instances, applied versions), the rules history, and
	// the fenced compare-and-set.
	Rules *pgrules.Store
	// Log receives lease changes and database errors. Nil: slog.Default().
	Log *slog.Logger
	// TTL, RenewEvery and Margin are the leases' (pglease.Config). Zero:
	// pglease's defaults (10 s, 3 s, TTL/5): a dead driver is replaced
	// within TTL + RenewEvery.
	TTL, RenewEvery, Margin time.Duration
	// SyncEvery is how often Run starts and stops electors as routes gain
	// or lose a ramp, and reads who holds each lease (Status' driver).
	// Zero: 1 s.
	SyncEvery time.Duration
	// Timeout bounds every database operation. Zero: 2 s.
	Timeout time.Duration
	// LiveWithin is how recently an instance must have written its
	// registry row for its snapshots to count. Zero: 10 s (pgrules'
	// default; keep it equal to the Store's LiveWithin).
	LiveWithin time.Duration
}

// Fleet is ramp.Fleet on PostgreSQL. Safe for concurrent use.
type Fleet struct {
	pool   *pgxpool.Pool
	o      Options
	log    *slog.Logger
	leases *pglease.Store

	ctx    context.Context // ended by Close
	cancel context.CancelFunc
	runWG  sync.WaitGroup

	mu       sync.Mutex
	electors map[string]*elector      // by route
	holders  map[string]pglease.Token // by route, as last read

	publishErrors, readErrors, leaseErrors, fenced atomic.Int64
	down                                           atomic.Bool
}

type elector struct {
	e      *pglease.Elector
	cancel context.CancelFunc
	done   chan struct{}
}

var _ ramp.Fleet = (*Fleet)(nil)

// New migrates the ramp's tables (components "ramp" and pglease's
// "lease") and returns a Fleet. Start Run in a goroutine; Close on
// shutdown, before the pool.
func New(ctx context.Context, pool *pgxpool.Pool, o Options) (*Fleet, error) {
	if o.Instance == "" || o.Rules == nil {
		return nil, errors.New("pgramp: Options.Instance and Options.Rules are required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.SyncEvery <= 0 {
		o.SyncEvery = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.LiveWithin <= 0 {
		o.LiveWithin = 10 * time.Second
	}
	// The lease settings are checked here, not when the first route ramps.
	if _, err := pglease.NewElector(&pglease.Store{}, leaseConfig(o, "check")); err != nil {
		return nil, err
	}
	if _, err := pgmigrate.Apply(ctx, pool, Component, Migrations); err != nil {
		return nil, fmt.Errorf("pgramp: cannot migrate: %w", err)
	}
	leases, err := pglease.New(ctx, pool)
	if err != nil {
		return nil, err
	}
	f := &Fleet{pool: pool, o: o, log: o.Log.With("component", "pgramp", "instance", o.Instance), leases: leases,
		electors: map[string]*elector{}, holders: map[string]pglease.Token{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f, nil
}

func leaseConfig(o Options, route string) pglease.Config {
	return pglease.Config{Holder: o.Instance, Names: []string{LeaseName(route)}, TTL: o.TTL, RenewEvery: o.RenewEvery, Margin: o.Margin}
}

// Run keeps one lease elector per ramped route (started when a route
// gains a ramp, stopped — releasing the lease — when it loses it) and
// reads who holds each lease, every SyncEvery, until ctx is done or Close
// is called; it then stops the electors (releasing the leases held) and
// returns.
func (f *Fleet) Run(ctx context.Context) {
	f.runWG.Add(1)
	defer f.runWG.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(f.ctx, cancel)
	defer stop()
	t := time.NewTicker(f.o.SyncEvery)
	defer t.Stop()
	for ctx.Err() == nil {
		f.sync(ctx)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	f.mu.Lock()
	els := f.electors
	f.electors = map[string]*elector{}
	f.mu.Unlock()
	for _, e := range els {
		e.cancel()
	}
	for _, e := range els {
		<-e.done
	}
}

// Close stops Run (releasing the leases held) and waits for it. It does
// not close the pool.
func (f *Fleet) Close() {
	f.cancel()
	f.runWG.Wait()
}

// sync starts and stops electors to match the ramped routes and reads the
// lease holders.
func (f *Fleet) sync(ctx context.Context) {
	want := map[string]bool{}
	for _, r := range f.o.Rules.Current().Routes {
		if r.Ramp != nil && r.New != "" {
			want[r.Name] = true
		}
	}
	f.mu.Lock()
	var stopping []*elector
	for route, e := range f.electors {
		if !want[route] {
			stopping = append(stopping, e)
			delete(f.electors, route)
			delete(f.holders, route)
		}
	}
	for route := range want {
		if f.electors[route] != nil {
			continue
		}
		cfg := leaseConfig(f.o, route)
		cfg.Logf = func(format string, args ...any) {
			f.leaseErrors.Add(1)
			f.log.Warn("ramp lease", "route", route, "err", fmt.Sprintf(format, args...))
		}
		cfg.OnChange = func(ev pglease.Event) {
			if ev.Held {
				f.log.Info("this instance drives the ramp", "route", route, "term", ev.Token.Epoch)
				f.mu.Lock()
				f.holders[route] = ev.Token
				f.mu.Unlock()
			} else {
				f.log.Info("this instance no longer drives the ramp", "route", route, "term", ev.Token.Epoch)
				f.mu.Lock()
				if f.holders[route] == ev.Token {
					delete(f.holders, route)
				}
				f.mu.Unlock()
			}
		}
		el, err := pglease.NewElector(f.leases, cfg)
		if err != nil { // checked in New; cannot happen
			f.log.Error("cannot start the ramp's lease elector", "route", route, "err", err)
			continue
		}
		ectx, cancel := context.WithCancel(ctx)
		e := &elector{e: el, cancel: cancel, done: make(chan struct{})}
		f.electors[route] = e
		go func() { defer close(e.done); el.Run(ectx) }()
	}
	f.mu.Unlock()
	for _, e := range stopping {
		e.cancel()
		<-e.done
	}
	for route := range want {
		rctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
		tok, _, ok, err := f.leases.Current(rctx, LeaseName(route))
		cancel()
		if err != nil {
			f.readErrors.Add(1)
			continue
		}
		f.mu.Lock()
		if ok {
			f.holders[route] = tok
		} else {
			delete(f.holders, route)
		}
		f.mu.Unlock()
	}
}

// Lead returns route's term: this instance's while it holds the lease and
// trusts it (pglease.Elector.Held), else the holder as last read. Memory
// only.
func (f *Fleet) Lead(route string) (ramp.Term, bool) {
	f.mu.Lock()
	e, h := f.electors[route], f.holders[route]
	f.mu.Unlock()
	if e != nil {
		if tok, ok := e.e.Held(LeaseName(route)); ok {
			return ramp.Term{Route: route, Driver: tok.Holder, Epoch: tok.Epoch}, true
		}
	}
	return ramp.Term{Route: route, Driver: h.Holder, Epoch: h.Epoch}, false
}

// StepKey derives route's step key from the fleet's rules history
// (pgrules.Store.ServeNewSince).
func (f *Fleet) StepKey(route string, cur rules.Rules) (ramp.StepKey, time.Duration, error) {
	var pct *float64
	for i := range cur.Routes {
		if cur.Routes[i].Name == route {
			pct = &cur.Routes[i].ServeNew
		}
	}
	if pct == nil {
		return ramp.StepKey{}, 0, fmt.Errorf("pgramp: rules version %d has no route %q", cur.Version, route)
	}
	since, age, err := f.o.Rules.ServeNewSince(route, cur.Version)
	if err != nil {
		f.readFailed(err)
		return ramp.StepKey{}, 0, err
	}
	return ramp.StepKey{Route: route, Threshold: rules.Threshold(*pct), Since: since}, age, nil
}

// Publish upserts this instance's snapshot of route.
func (f *Fleet) Publish(route string, s ramp.Snapshot) error {
	s.Instance = f.o.Instance
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("pgramp: cannot encode the snapshot: %w", err)
	}
	ctx, cancel := context.WithTimeout(f.ctx, f.o.Timeout)
	defer cancel()
	_, err = f.pool.Exec(ctx, `INSERT INTO ramp_snapshots (route, instance, step_key, snapshot, updated_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (route, instance) DO UPDATE SET step_key = EXCLUDED.step_key, snapshot = EXCLUDED.snapshot, updated_at = now()`,
		route, f.o.Instance, s.Key.String(), b)
	if err != nil {
		f.publishErrors.Add(1)
		f.failed("publish the ramp window", err)
		return fmt.Errorf("%w: pgramp: cannot publish the window of %s: %w", rules.ErrUnavailable, route, err)
	}
	f.recovered()
	return nil
}

// Snapshots reads route's snapshots of key from the live instances.
func (f *Fleet) Snapshots(route string, key ramp.StepKey) ([]ramp.Snapshot, error) {
	live, err := f.o.Rules.LiveInstances(f.o.LiveWithin)
	if err != nil {
		f.readFailed(err)
		return nil, err
	}
	isLive := map[string]bool{}
	for _, in := range live {
		isLive[in.Name] = true
	}
	ctx, cancel := context.WithTimeout(f.ctx, f.o.Timeout)
	defer cancel()
	rows, err := f.pool.Query(ctx, `SELECT instance, snapshot FROM ramp_snapshots WHERE route = $1 AND step_key = $2 ORDER BY instance`,
		route, key.String())
	if err != nil {
		f.readFailed(err)
		return nil, fmt.Errorf("%w: pgramp: cannot read the windows of %s: %w", rules.ErrUnavailable, route, err)
	}
	var out []ramp.Snapshot
	for rows.Next() {
		var name string
		var b []byte
		if err := rows.Scan(&name, &b); err != nil {
			rows.Close()
			f.readFailed(err)
			return nil, fmt.Errorf("%w: pgramp: cannot read the windows of %s: %w", rules.ErrUnavailable, route, err)
		}
		if !isLive[name] {
			continue
		}
		var s ramp.Snapshot
		if err := json.Unmarshal(b, &s); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgramp: cannot decode the window of %s published by %s: %w", route, name, err)
		}
		s.Instance = name
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		f.readFailed(err)
		return nil, fmt.Errorf("%w: pgramp: cannot read the windows of %s: %w", rules.ErrUnavailable, route, err)
	}
	f.recovered()
	return out, nil
}

// AllApplied is pgrules.Store.AllApplied.
func (f *Fleet) AllApplied(version int64) (bool, error) {
	ok, err := f.o.Rules.AllApplied(version)
	if err != nil {
		f.readFailed(err)
	}
	return ok, err
}

func token(t ramp.Term) pglease.Token {
	return pglease.Token{Name: LeaseName(t.Route), Holder: t.Driver, Epoch: t.Epoch}
}

// fence is the hook that makes a rules change a step of term t: Fence
// first in the change's transaction.
func (f *Fleet) fence(t ramp.Term) pgrules.TxHook {
	tok := token(t)
	return func(ctx context.Context, tx pgx.Tx) error {
		err := pglease.Fence(ctx, tx, tok)
		if errors.Is(err, pglease.ErrFenced) {
			f.fenced.Add(1)
			return fmt.Errorf("%w: %w", ramp.ErrFenced, err)
		}
		return err
	}
}

// Apply is the rules compare-and-set on ifMatch with its audit row, in
// one transaction that begins with pglease.Fence(t): refused (ErrFenced)
// unless t is the term in force.
func (f *Fleet) Apply(t ramp.Term, ifMatch int64, ev rules.Event, mutate func(*rules.Rules) error) (rules.Rules, bool, error) {
	return f.o.Rules.ApplyTx(ifMatch, ev, mutate, f.fence(t))
}

// Record appends ev to the audit log in a transaction that begins with
// pglease.Fence(t).
func (f *Fleet) Record(t ramp.Term, ev rules.Event) error {
	return f.o.Rules.RecordTx(ev, f.fence(t))
}

// Counters are a Fleet's error counts since New.
type Counters struct {
	// PublishErrors and ReadErrors count failed publishes and reads (the
	// ramp waited); LeaseErrors failed lease round trips; Fenced the
	// writes refused because their term was stale.
	PublishErrors, ReadErrors, LeaseErrors, Fenced int64
}

// Counters returns the error counts.
func (f *Fleet) Counters() Counters {
	return Counters{PublishErrors: f.publishErrors.Load(), ReadErrors: f.readErrors.Load(),
		LeaseErrors: f.leaseErrors.Load(), Fenced: f.fenced.Load()}
}

func (f *Fleet) readFailed(err error) {
	f.readErrors.Add(1)
	f.failed("read the fleet's ramp state", err)
}

// failed logs the first error of an outage; recovered its end.
func (f *Fleet) failed(what string, err error) {
	if !f.down.Swap(true) {
		f.log.Warn("the ramp waits: cannot "+what, "err", err)
	}
}

func (f *Fleet) recovered() {
	if f.down.Swap(false) {
		f.log.Info("the ramp's database reads and writes work again")
	}
}
