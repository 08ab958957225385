package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/pgramp"
	"github.com/tandem-proxy/tandem/pgrules"
	"github.com/tandem-proxy/tandem/pgstore"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/rulestore"
)

// rulesState is the rules store an instance runs on: a rulestore.State in
// data_dir when it is alone, the fleet's pgrules.Store with fleet.database.
// The data plane follows it, the admin API and the ramp change it, Reload
// feeds it the config file's routes.
type rulesState interface {
	rulestore.Store
	Update(ifMatch int64, actor, kind, route, reason string, mutate func(*rules.Rules) error) (rules.Rules, error)
	Promote(route string, percent float64, actor, reason string) (rules.Rules, bool, error)
	Rollback(route string, actor, reason string) (rules.Rules, bool, error)
	ReplaceFromFile(routes []rules.Route) (rules.Rules, bool, error)
	FileChanged(routes []rules.Route) bool
	Recovered() string
}

var (
	_ rulesState = (*rulestore.State)(nil)
	_ rulesState = (*pgrules.Store)(nil)
)

// fleetOpenTimeout bounds start-up's work on the fleet's database
// (connecting, migrating, seeding): an instance cannot start without the
// rules, and says why instead of hanging.
const fleetOpenTimeout = 30 * time.Second

// fleetInstancesEvery is how often the live instances are read for the
// admin API, so that GET /api/v1/routes never waits on the database.
const fleetInstancesEvery = 2 * time.Second

// fleet is an instance's share of the fleet's state (fleet.database): the
// rules history, registry and noise model (pgrules, on pool) and the diff
// store (pgstore, on a pool of its own, which it closes).
type fleet struct {
	name    string
	started time.Time // when this instance joined
	pool    *pgxpool.Pool
	rules   *pgrules.Store
	ramp    *pgramp.Fleet // the ramps' leases, snapshots and fenced steps
	st      *pgstore.Store
	log     *slog.Logger

	mu        sync.Mutex
	instances []pgrules.Instance // the last read of the live instances
}

// instanceName is fleet.instance, or its default: the host of listen (the
// host name when that is a wildcard or empty) and the port ln is bound to.
func instanceName(cfg *config.Config, ln net.Listener) string {
	if cfg.Fleet.Instance != "" {
		return cfg.Fleet.Instance
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	port := ""
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	return net.JoinHostPort(host, port)
}

// openFleet connects to fleet.database and opens the rules store (seeding
// or loading the rules, sharing learner's noise) and the diff store. The
// database must be reachable at start-up; later outages do not stop
// serving (see DESIGN.md, "Fleet").
func openFleet(cfg *config.Config, name string, log *slog.Logger, learner *compare.Learner, validate rules.Validator) (_ *fleet, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), fleetOpenTimeout)
	defer cancel()
	pc, err := pgxpool.ParseConfig(cfg.Fleet.Database)
	if err != nil {
		return nil, fmt.Errorf("fleet.database: %w", err)
	}
	f := &fleet{name: name, started: time.Now(), log: log}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	if f.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return nil, fmt.Errorf("fleet.database: %w", err)
	}
	if err := f.pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("fleet.database: cannot reach PostgreSQL at start-up (an instance needs the fleet's rules to start): %w", err)
	}
	f.rules, err = pgrules.Open(ctx, f.pool, pgrules.Options{
		Instance: name,
		Seed:     cfg.Routes,
		Validate: validate,
		Logger:   log,
		Learner:  learner,
	})
	if err != nil {
		return nil, fmt.Errorf("fleet.database: %w", err)
	}
	if f.ramp, err = pgramp.New(ctx, f.pool, pgramp.Options{Instance: name, Rules: f.rules, Log: log}); err != nil {
		return nil, fmt.Errorf("fleet.database: %w", err)
	}
	f.st, err = pgstore.Open(ctx, cfg.Fleet.Database, pgstore.Options{
		Instance:            name,
		Noise:               learner,
		ComparisonRetention: time.Duration(cfg.Retention.Comparisons),
		Logger:              log,
	})
	if err != nil {
		return nil, fmt.Errorf("fleet.database: %w", err)
	}
	f.refreshInstances()
	return f, nil
}

// up reports whether this instance reaches the database: its rules store
// and its diff store both do (tandem_fleet_database_up).
func (f *fleet) up() bool { return f.rules.Up() && f.st.Up() }

// refreshInstances reads the live instances for the admin API; on a failed
// read the last list stays.
func (f *fleet) refreshInstances() {
	ins, err := f.rules.LiveInstances(0)
	if err != nil {
		return // Up says so; the list is the last one read
	}
	f.mu.Lock()
	f.instances = ins
	f.mu.Unlock()
}

// status is the fleet as GET /api/v1/routes and /api/v1/instances show it:
// from memory, never waiting on the database.
func (f *fleet) status() admin.FleetStatus {
	f.mu.Lock()
	ins := f.instances
	f.mu.Unlock()
	st := admin.FleetStatus{Database: "ok", Instance: f.name, Instances: make([]admin.InstanceStatus, 0, len(ins))}
	if !f.up() {
		st.Database = "degraded"
	}
	self := false
	for _, in := range ins {
		st.Instances = append(st.Instances, admin.InstanceStatus{Name: in.Name, StartedAt: in.StartedAt, LastSeen: in.LastSeen,
			AppliedVersion: in.AppliedVersion, Self: in.Name == f.name})
		self = self || in.Name == f.name
	}
	if !self {
		// This instance is live whatever the last read said (its first
		// heartbeat may come after that read, or the database is away):
		// listed from its own memory.
		me := admin.InstanceStatus{Name: f.name, StartedAt: f.started, LastSeen: time.Now(), AppliedVersion: f.rules.AppliedVersion(), Self: true}
		i := sort.Search(len(st.Instances), func(i int) bool { return st.Instances[i].Name >= f.name })
		st.Instances = slices.Insert(st.Instances, i, me)
	}
	return st
}

// reportsFor narrows the admin API's reads to one instance (?instance=):
// one that has data or is live; any other name is unknown.
func (f *fleet) reportsFor(name string) (admin.Reports, error) {
	f.mu.Lock()
	for _, in := range f.instances {
		if in.Name == name {
			f.mu.Unlock()
			return f.st.Instance(name), nil
		}
	}
	f.mu.Unlock()
	names, err := f.st.Instances()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == name {
			return f.st.Instance(name), nil
		}
	}
	return nil, fmt.Errorf("%w %q: not live and no data in the fleet's store", admin.ErrUnknownInstance, name)
}

// markNoise is a noise mark through the fleet: stored with its audit row
// in one transaction before it takes effect anywhere.
func (f *fleet) markNoise(route, p, reason string) error {
	err := f.rules.MarkNoise(route, p, reason, "api")
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgrules.ErrBadMark):
		return &admin.BadRequestError{Err: err}
	case errors.Is(err, pgrules.ErrUnavailable):
		return &admin.NotAppliedError{Err: err}
	}
	return err
}

// registerMetrics exports tandem_fleet_database_up, tandem_fleet_instances,
// tandem_fleet_instance_name_conflicts_total and the ramp driver's error
// counts, tandem_ramp_fleet_errors_total{kind}.
func (f *fleet) registerMetrics(ms *metrics.Set) {
	ms.NewGauge("tandem_fleet_database_up", func() float64 {
		if f.up() {
			return 1
		}
		return 0
	})
	ms.NewGauge("tandem_fleet_instances", func() float64 { return float64(f.rules.FleetInstances()) })
	ms.NewGauge("tandem_fleet_instance_name_conflicts_total", func() float64 { return float64(f.rules.NameConflicts()) })
	for _, c := range []struct {
		kind string
		get  func(pgramp.Counters) int64
	}{
		{"publish", func(c pgramp.Counters) int64 { return c.PublishErrors }},
		{"read", func(c pgramp.Counters) int64 { return c.ReadErrors }},
		{"lease", func(c pgramp.Counters) int64 { return c.LeaseErrors }},
		{"fenced", func(c pgramp.Counters) int64 { return c.Fenced }},
	} {
		ms.NewGauge(fmt.Sprintf(`tandem_ramp_fleet_errors_total{kind=%q}`, c.kind), func() float64 { return float64(c.get(f.ramp.Counters())) })
	}
}

// close releases the ramps' leases, the rules store and the pools. The diff store is the
// instance's (Instance.st) once Open succeeds, closed by Instance.Close.
func (f *fleet) close() {
	if f.ramp != nil {
		f.ramp.Close() // releases the leases: another instance drives at once
	}
	if f.rules != nil {
		f.rules.Close()
	}
	if f.pool != nil {
		f.pool.Close()
	}
}
