package pgrules

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/internal/pgmigrate"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/rulestore"
)

// ErrUnavailable is what a change (Apply, Update, Promote, Rollback,
// ReplaceFromFile, Record, MarkNoise) returns, wrapped, when the database
// cannot be reached or did not answer in time: nothing was changed (or, if
// the commit itself failed, the change may have been made, and the
// instance learns of it from its next poll), the rules in force stay, and
// the admin API answers 503. It is rules.ErrUnavailable.
var ErrUnavailable = rules.ErrUnavailable

// Channel is the LISTEN/NOTIFY channel; the payload is the new version.
const Channel = "tandem_rules"

// Options are a Store's settings. Instance is required.
type Options struct {
	// Instance is this instance's name (fleet.instance), unique in the
	// fleet: in the registry and in the audit events it writes.
	Instance string
	// Seed is the config file's routes: the first version when the
	// database has none, and the routes FileChanged compares.
	Seed []rules.Route
	// Validate checks routes before a version is stored, and before a
	// version another instance stored is put in force here. Nil:
	// rules.Validate with every backend name accepted.
	Validate rules.Validator
	// Now is the clock of audit events. Nil: time.Now. (last_seen in the
	// registry is the database's clock, so that instances' clocks do not
	// have to agree.)
	Now func() time.Time
	// Logger receives the outages and recoveries. Nil: slog.Default().
	Logger *slog.Logger
	// PollInterval is how often the store reads the versions it has not
	// seen (NOTIFY is not durable) and the noise marks, and how often the
	// instance's registry row is written. Zero: 1 s.
	PollInterval time.Duration
	// Timeout bounds every database operation. Zero: 5 s.
	Timeout time.Duration
	// LiveWithin is how recently an instance must have written its
	// registry row to count as live (FleetInstances, AllApplied). Zero:
	// 10 s.
	LiveWithin time.Duration
	// Learner, when set, shares its noise counts and marks through the
	// database (see the package documentation). Nil: noise stays local.
	Learner *compare.Learner
	// NoiseInterval is how often the Learner's count deltas are added to
	// the database and the fleet's totals loaded back. Zero: 5 s.
	NoiseInterval time.Duration

	// listenRetry is the listener's reconnect delay (tests). Zero: 1 s.
	listenRetry time.Duration
}

// Store is the fleet's rules store on PostgreSQL: a rulestore.Store with
// the Update, Promote, Rollback, ReplaceFromFile and FileChanged of
// rulestore.State, the instance registry and the shared noise model. It
// is safe for concurrent use. Close stops its goroutines; the pool is the
// caller's.
type Store struct {
	pool        *pgxpool.Pool
	o           Options
	log         *slog.Logger
	incarnation string // this run of the instance, for noise batches

	cur     atomic.Pointer[rules.Rules] // in force here
	applied atomic.Int64                // last version the subscribers applied
	up      atomic.Bool
	live    atomic.Int64 // live instances at the last heartbeat
	// beats and conflicts: this incarnation's heartbeats, and those that
	// found the registry row written by another process (NameConflicts).
	beats, conflicts atomic.Int64
	notifyMu         sync.Mutex // held while versions are delivered, so they go in order
	subs             []func(rules.Rules)
	refused          map[int64]bool // guarded by notifyMu: versions this instance could not validate
	digest           atomic.Pointer[string]

	noise noiseState

	poke, beat chan struct{}
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
	recovered  string
}

var _ rulestore.Store = (*Store)(nil)

// Open migrates the schema (pgmigrate, component "rules"), seeds the first
// version from o.Seed if the database has none (instances starting
// together: one seeds, the others load it), loads the version in force and
// starts following the fleet's changes: a LISTEN connection of its own,
// and a poll every PollInterval. The stored rules must validate here; if
// they do not and the config file's routes changed and validate, those
// replace them (actor "file"), as rulestore.OpenState does.
func Open(ctx context.Context, pool *pgxpool.Pool, o Options) (*Store, error) {
	if o.Instance == "" {
		return nil, errors.New("pgrules: Options.Instance is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Validate == nil {
		o.Validate = func(rs []rules.Route) []error { return rules.Validate(rs, func(string) bool { return true }) }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.LiveWithin <= 0 {
		o.LiveWithin = 10 * time.Second
	}
	if o.NoiseInterval <= 0 {
		o.NoiseInterval = 5 * time.Second
	}
	if o.listenRetry <= 0 {
		o.listenRetry = time.Second
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	s := &Store{pool: pool, o: o, log: o.Logger.With("component", "pgrules", "instance", o.Instance),
		incarnation: o.Instance + "/" + hex.EncodeToString(rnd[:]), refused: map[int64]bool{},
		poke: make(chan struct{}, 1), beat: make(chan struct{}, 1)}
	s.noise.marks = map[[2]string]string{}
	if _, err := pgmigrate.Apply(ctx, pool, Component, migrations); err != nil {
		return nil, fmt.Errorf("cannot migrate the rules schema: %w", err)
	}
	head, err := s.openHead(ctx)
	if err != nil {
		return nil, err
	}
	s.cur.Store(&head.r)
	s.digest.Store(&head.digest)
	s.up.Store(true)
	if errs := o.Validate(head.r.Routes); len(errs) > 0 {
		d := rulestore.RoutesDigest(o.Seed)
		if o.Seed == nil || d == head.digest || len(o.Validate(o.Seed)) > 0 {
			return nil, fmt.Errorf("the rules in the database (version %d) do not fit this instance's configuration: %s; fix the configuration, or change its routes so that they replace the stored ones",
				head.r.Version, joinErrs(errs))
		}
		reason := fmt.Sprintf("the config file's routes changed and stored version %d no longer validates: %s", head.r.Version, joinErrs(errs))
		ev := rules.Event{Actor: "file", Kind: rules.KindReload, Reason: reason}
		if _, _, err := s.apply(0, ev, &d, replaceWith(o.Seed)); err != nil {
			return nil, fmt.Errorf("cannot replace the stored rules with the config file's routes: %w", err)
		}
		s.recovered = reason
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(3)
	go s.followLoop()
	go s.listenLoop()
	go s.heartbeatLoop()
	if o.Learner != nil {
		s.wg.Add(1)
		go s.noiseLoop()
	}
	return s, nil
}

// Close stops following, the heartbeat and the noise sync (adding the
// Learner's last counts first, within Timeout). It does not close the pool.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		if s.o.Learner != nil {
			s.syncNoise()
		}
	})
}

type head struct {
	r      rules.Rules
	digest string
}

func seedLock() int64 {
	h := fnv.New64a()
	h.Write([]byte("tandem-rules:seed"))
	return int64(h.Sum64())
}

// openHead loads the version in force, seeding it under an advisory lock
// when there is none.
func (s *Store) openHead(ctx context.Context) (head, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return head{}, unavailable("start", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", seedLock()); err != nil {
		return head{}, unavailable("lock the seed", err)
	}
	h, found, err := readHead(ctx, tx, false)
	if err != nil {
		return head{}, err
	}
	if found {
		return h, tx.Commit(ctx)
	}
	if errs := s.o.Validate(s.o.Seed); len(errs) > 0 {
		return head{}, &rules.ValidationError{Errs: errs}
	}
	var last int64
	if err := tx.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM rules_versions").Scan(&last); err != nil {
		return head{}, unavailable("read the versions", err)
	}
	r := rules.Rules{Version: last + 1, Routes: rules.CloneRoutes(s.o.Seed)}
	_, neu := rulestore.Summarize(nil, r.Routes, "")
	ev := rules.Event{Actor: "file", Kind: rules.KindSeed, NewVersion: r.Version, New: neu,
		Reason: "first start: the config file's routes seed the rules"}
	d := rulestore.RoutesDigest(s.o.Seed)
	if err := s.commitVersion(ctx, tx, r, d, ev, false); err != nil {
		return head{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return head{}, unavailable("commit the first version", err)
	}
	s.log.Info("seeded the fleet's rules from the config file", "version", r.Version)
	return head{r: r, digest: d}, nil
}

// readHead reads the version in force, locking its row when forUpdate.
// The head row is read alone, then its version's routes: with a join,
// a head row updated by a concurrent change would be re-read with the new
// version, whose rules_versions row is not in the statement's snapshot,
// and the join would come out empty.
func readHead(ctx context.Context, tx pgx.Tx, forUpdate bool) (head, bool, error) {
	q := "SELECT version, file_digest FROM rules_head"
	if forUpdate {
		q += " FOR UPDATE"
	}
	var h head
	err := tx.QueryRow(ctx, q).Scan(&h.r.Version, &h.digest)
	if errors.Is(err, pgx.ErrNoRows) {
		return head{}, false, nil
	}
	if err != nil {
		return head{}, false, unavailable("read the rules in force", err)
	}
	var routes []byte
	if err := tx.QueryRow(ctx, "SELECT routes FROM rules_versions WHERE version = $1", h.r.Version).Scan(&routes); err != nil {
		return head{}, false, unavailable("read the rules in force", err)
	}
	if err := json.Unmarshal(routes, &h.r.Routes); err != nil {
		return head{}, false, fmt.Errorf("cannot decode rules version %d from the database: %w", h.r.Version, err)
	}
	return h, true, nil
}

// commitVersion stores r as the version in force with its audit event and
// notifies, within tx.
func (s *Store) commitVersion(ctx context.Context, tx pgx.Tx, r rules.Rules, digest string, ev rules.Event, update bool) error {
	routes, err := json.Marshal(r.Routes)
	if err != nil {
		return &rules.ValidationError{Errs: []error{fmt.Errorf("cannot encode rules: %w", err)}}
	}
	ev.Time = s.o.Now()
	ev.Instance = s.o.Instance
	id, err := s.insertAudit(ctx, tx, ev)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO rules_versions (version, routes, file_digest, audit_id) VALUES ($1, $2, $3, $4)",
		r.Version, routes, digest, id); err != nil {
		return unavailable("store the version", err)
	}
	q := "INSERT INTO rules_head (version, file_digest) VALUES ($1, $2)"
	if update {
		q = "UPDATE rules_head SET version = $1, file_digest = $2"
	}
	if _, err := tx.Exec(ctx, q, r.Version, digest); err != nil {
		return unavailable("store the version", err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, fmt.Sprint(r.Version)); err != nil {
		return unavailable("notify", err)
	}
	return nil
}

func (s *Store) insertAudit(ctx context.Context, tx pgx.Tx, ev rules.Event) (int64, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("cannot encode audit event: %w", err)
	}
	var id int64
	if err := tx.QueryRow(ctx, "INSERT INTO rules_audit (time, instance, event) VALUES ($1, $2, $3) RETURNING id",
		ev.Time, ev.Instance, b).Scan(&id); err != nil {
		return 0, unavailable("append to the audit log", err)
	}
	return id, nil
}

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: cannot %s: %w", ErrUnavailable, what, err)
}

func replaceWith(routes []rules.Route) func(*rules.Rules) error {
	return func(r *rules.Rules) error { r.Routes = rules.CloneRoutes(routes); return nil }
}

// Recovered says what Open had to repair (stored rules replaced by the
// config file's because they no longer validated here), or "".
func (s *Store) Recovered() string { return s.recovered }

// Current returns a deep copy of the rules in force on this instance (from
// memory: it never waits on the database).
func (s *Store) Current() rules.Rules { return s.cur.Load().Clone() }

// AppliedVersion is the last version this instance's Subscribe callbacks
// applied (tandem_rules_applied_version); 0 before any subscriber.
func (s *Store) AppliedVersion() int64 { return s.applied.Load() }

// Up reports whether the last database operation succeeded
// (tandem_fleet_database_up).
func (s *Store) Up() bool { return s.up.Load() }

// Update is rulestore.State.Update: ifMatch 0 skips the version check,
// otherwise it is compared with the fleet's version in force (ErrStale).
func (s *Store) Update(ifMatch int64, actor, kind, route, reason string, mutate func(*rules.Rules) error) (rules.Rules, error) {
	r, _, err := s.Apply(ifMatch, rules.Event{Actor: actor, Kind: kind, Route: route, Reason: reason}, mutate)
	return r, err
}

// Promote sets a route's serve_new to percent (kind "promote").
func (s *Store) Promote(route string, percent float64, actor, reason string) (rules.Rules, bool, error) {
	return s.Apply(0, rules.Event{Actor: actor, Kind: rules.KindPromote, Route: route, Reason: reason}, rules.SetServeNew(route, percent, nil))
}

// Rollback sets a route's serve_new to 0 (kind "rollback").
func (s *Store) Rollback(route string, actor, reason string) (rules.Rules, bool, error) {
	return s.Apply(0, rules.Event{Actor: actor, Kind: rules.KindRollback, Route: route, Reason: reason}, rules.SetServeNew(route, 0, nil))
}

// ReplaceFromFile replaces the routes with the config file's (actor
// "file", kind "reload") as a new version if they differ from the fleet's
// in force; either way they are remembered as the file's (FileChanged).
func (s *Store) ReplaceFromFile(routes []rules.Route) (rules.Rules, bool, error) {
	d := rulestore.RoutesDigest(routes)
	ev := rules.Event{Actor: "file", Kind: rules.KindReload, Reason: "the config file changed"}
	return s.apply(0, ev, &d, replaceWith(routes))
}

// FileChanged reports whether routes differ from the routes last applied
// from a config file by any instance (read from the database; from memory
// when it cannot be reached).
func (s *Store) FileChanged(routes []rules.Route) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	var d string
	if err := s.pool.QueryRow(ctx, "SELECT file_digest FROM rules_head").Scan(&d); err == nil {
		s.digest.Store(&d)
	}
	return rulestore.RoutesDigest(routes) != *s.digest.Load()
}

// Apply changes the rules by mutate as one new version of the fleet's: in
// one transaction, the version in force is read and locked, compared with
// ifMatch (0: any; else an error wrapping rules.ErrStale), mutated,
// validated (a *rules.ValidationError), stored with its audit event, and
// announced (NOTIFY tandem_rules, '<version>'); once committed it is put
// in force here, after any version of other instances this one had not
// seen yet, before Apply returns. The State fills ev's Time, Instance,
// OldVersion, NewVersion, and Old and New when empty. A mutation that
// leaves the routes as they were makes no version and no event. A database
// that cannot be reached gives an error wrapping ErrUnavailable.
func (s *Store) Apply(ifMatch int64, ev rules.Event, mutate func(*rules.Rules) error) (rules.Rules, bool, error) {
	return s.apply(ifMatch, ev, nil, mutate)
}

type delivery struct {
	r       rules.Rules
	checked bool // validated by this instance before it was stored
}

// TxHook runs first in the transaction of ApplyTx or RecordTx, before
// anything is read or written; an error it returns aborts the change and
// is returned as it is. The ramp driver's hook is pglease.Fence.
type TxHook func(ctx context.Context, tx pgx.Tx) error

// ApplyTx is Apply with before run first in its transaction: the rules
// compare-and-set, the audit row and the NOTIFY commit only if before
// returns nil, and together with what before did (pglease.Fence locks the
// lease row until the commit, so a stale ramp driver's step is refused and
// a takeover waits for the step). A nil before is Apply.
func (s *Store) ApplyTx(ifMatch int64, ev rules.Event, mutate func(*rules.Rules) error, before TxHook) (rules.Rules, bool, error) {
	return s.applyTx(ifMatch, ev, nil, mutate, before)
}

func (s *Store) apply(ifMatch int64, ev rules.Event, fileDigest *string, mutate func(*rules.Rules) error) (rules.Rules, bool, error) {
	return s.applyTx(ifMatch, ev, fileDigest, mutate, nil)
}

func (s *Store) applyTx(ifMatch int64, ev rules.Event, fileDigest *string, mutate func(*rules.Rules) error, before TxHook) (rules.Rules, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	local := s.cur.Load().Version
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.failed(unavailable("start a change", err))
	}
	defer tx.Rollback(context.Background())
	if before != nil {
		if err := before(ctx, tx); err != nil {
			return rules.Rules{}, false, err
		}
	}
	h, found, err := readHead(ctx, tx, true)
	if err != nil {
		return s.failed(err)
	}
	if !found {
		return rules.Rules{}, false, errors.New("BUG: the database holds no rules version")
	}
	if ifMatch != 0 && ifMatch != h.r.Version {
		s.up.Store(true)
		s.poked()
		return rules.Rules{}, false, fmt.Errorf("%w: If-Match is %d, the current version is %d", rules.ErrStale, ifMatch, h.r.Version)
	}
	next := h.r.Clone()
	if err := mutate(&next); err != nil {
		return rules.Rules{}, false, err
	}
	if errs := s.o.Validate(next.Routes); len(errs) > 0 {
		return rules.Rules{}, false, &rules.ValidationError{Errs: errs}
	}
	if _, err := json.Marshal(next.Routes); err != nil {
		return rules.Rules{}, false, &rules.ValidationError{Errs: []error{fmt.Errorf("cannot encode rules: %w", err)}}
	}
	d := h.digest
	if fileDigest != nil {
		d = *fileDigest
	}
	if rulestore.SameRoutes(h.r.Routes, next.Routes) {
		if d != h.digest {
			if _, err := tx.Exec(ctx, "UPDATE rules_head SET file_digest = $1", d); err != nil {
				return s.failed(unavailable("store the file's digest", err))
			}
			if err := tx.Commit(ctx); err != nil {
				return s.failed(unavailable("commit", err))
			}
			s.digest.Store(&d)
		}
		s.up.Store(true)
		s.poked()
		return h.r.Clone(), false, nil
	}
	pending, err := versionsAfter(ctx, tx, local, h.r.Version)
	if err != nil {
		return s.failed(err)
	}
	next.Version = h.r.Version + 1
	ev.OldVersion, ev.NewVersion = h.r.Version, next.Version
	if ev.Old == "" && ev.New == "" {
		ev.Old, ev.New = rulestore.Summarize(h.r.Routes, next.Routes, ev.Route)
	}
	if err := s.commitVersion(ctx, tx, next, d, ev, true); err != nil {
		return s.failed(err)
	}
	if err := tx.Commit(ctx); err != nil {
		s.poked() // it may have been committed: the poll will tell
		return s.failed(unavailable("commit the change", err))
	}
	s.up.Store(true)
	s.digest.Store(&d)
	s.deliver(append(pending, delivery{r: next, checked: true}))
	return next.Clone(), true, nil
}

func (s *Store) failed(err error) (rules.Rules, bool, error) {
	if errors.Is(err, ErrUnavailable) {
		s.up.Store(false)
	}
	return rules.Rules{}, false, err
}

// versionsAfter reads the versions after from up to to, in order.
func versionsAfter(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, from, to int64) ([]delivery, error) {
	rows, err := q.Query(ctx, "SELECT version, routes FROM rules_versions WHERE version > $1 AND version <= $2 ORDER BY version", from, to)
	if err != nil {
		return nil, unavailable("read new versions", err)
	}
	defer rows.Close()
	var out []delivery
	for rows.Next() {
		var d delivery
		var routes []byte
		if err := rows.Scan(&d.r.Version, &routes); err != nil {
			return nil, unavailable("read new versions", err)
		}
		if err := json.Unmarshal(routes, &d.r.Routes); err != nil {
			return nil, fmt.Errorf("cannot decode rules version %d from the database: %w", d.r.Version, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read new versions", err)
	}
	return out, nil
}

// deliver puts the versions in force in order, skipping those already in
// force and those this instance's validator refuses (logged once each;
// the instance's applied version stays behind, which AllApplied shows).
func (s *Store) deliver(vs []delivery) {
	s.notifyMu.Lock()
	applied := false
	for _, d := range vs {
		if d.r.Version <= s.cur.Load().Version {
			continue
		}
		if !d.checked {
			if errs := s.o.Validate(d.r.Routes); len(errs) > 0 {
				if !s.refused[d.r.Version] {
					s.refused[d.r.Version] = true
					s.log.Error("a rules version of the fleet does not fit this instance's configuration; it is not put in force here",
						"version", d.r.Version, "err", joinErrs(errs))
				}
				continue
			}
		}
		r := d.r
		s.cur.Store(&r)
		for _, f := range s.subs {
			f(r.Clone())
		}
		if len(s.subs) > 0 {
			s.applied.Store(r.Version)
		}
		applied = true
	}
	s.notifyMu.Unlock()
	if applied {
		select {
		case s.beat <- struct{}{}:
		default:
		}
	}
}

// Subscribe registers f to receive the rules after every new version put
// in force here, in version order, and calls it once at once with the
// rules in force. f runs with the notification lock held: it may call
// Current, but must not change the rules (deadlock).
func (s *Store) Subscribe(f func(rules.Rules)) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.subs = append(s.subs, f)
	cur := s.cur.Load().Clone()
	f(cur)
	s.applied.Store(cur.Version)
}

// Record appends an event that changes no rules to the fleet's audit log.
// A zero Time is set to now; Instance is set to this instance.
func (s *Store) Record(e rules.Event) error { return s.RecordTx(e, nil) }

// RecordTx is Record with before run first in its transaction (see
// ApplyTx). A nil before is Record.
func (s *Store) RecordTx(e rules.Event, before TxHook) error {
	if e.Time.IsZero() {
		e.Time = s.o.Now()
	}
	e.Instance = s.o.Instance
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		_, _, err = s.failed(unavailable("append to the audit log", err))
		return err
	}
	defer tx.Rollback(context.Background())
	if before != nil {
		if err := before(ctx, tx); err != nil {
			return err
		}
	}
	if _, err := s.insertAudit(ctx, tx, e); err != nil {
		_, _, err = s.failed(err)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		_, _, err = s.failed(unavailable("append to the audit log", err))
		return err
	}
	s.up.Store(true)
	return nil
}

// Events returns the fleet's audit events at or after since (zero: all),
// in the order they were written; limit > 0 keeps only the newest limit.
func (s *Store) Events(since time.Time, limit int) ([]rules.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	q := "SELECT event FROM rules_audit WHERE time >= $1 ORDER BY id DESC"
	args := []any{since}
	if limit > 0 {
		q += " LIMIT $2"
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		_, _, err = s.failed(unavailable("read the audit log", err))
		return nil, err
	}
	defer rows.Close()
	var out []rules.Event
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, unavailable("read the audit log", err)
		}
		var e rules.Event
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("cannot decode an audit event: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read the audit log", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

func (s *Store) poked() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

func joinErrs(errs []error) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}
