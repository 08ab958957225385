package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/proxy"
	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/rulestore"
	"github.com/tandem-proxy/tandem/store"
)

// Intervals of the periodic jobs.
const (
	flushEvery = time.Second // counters to the store
	tickEvery  = time.Second // ramp decisions
	saveEvery  = time.Minute // noise.json
)

// Options are an instance's settings beyond the config file. Every zero
// value has a meaning.
type Options struct {
	// ConfigPath is the file cfg was loaded from: Reload re-reads it and a
	// watcher reloads on its changes. Empty: no reload, no watcher.
	ConfigPath string
	// Logger receives every line. Nil: slog.Default().
	Logger *slog.Logger
	// AccessLog is the share of requests (0..1) logged, one line each.
	// Zero: none.
	AccessLog float64
	// Store is the diff store; the instance owns it from Open on and
	// closes it in Close (also when Open fails after taking it). Nil: the
	// SQLite store at <data_dir>/store.db (store.Open).
	Store DiffStore
}

// Instance is one running tandem: its data plane, admin listener, state and
// periodic work. Open, then Run (once), then Close.
type Instance struct {
	cfg   *config.Config
	path  string
	log   *slog.Logger
	token string

	ms      *metrics.Set
	state   rulesState // a rulestore.State, or the fleet's rules
	fleet   *fleet     // nil unless fleet.database is set
	st      DiffStore
	px      *proxy.Server
	ad      *admin.Server
	ctl     *ramp.Controller
	noise   *noiseFile
	rates   *diffRateGauges
	reloads *reloadMetrics
	ln, aln net.Listener

	reloadMu sync.Mutex // one Reload at a time
	jobs     jobs

	mu      sync.Mutex
	ran     bool // Run was called
	closed  bool
	stopped bool // the data plane was shut down
}

// Open builds an instance from cfg and starts listening on cfg.Listen and
// cfg.Admin.Listen; nothing is served until Run. On error, everything it
// made is released.
func Open(cfg *config.Config, o Options) (_ *Instance, err error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	in := &Instance{cfg: cfg, path: o.ConfigPath, log: log, ms: metrics.NewSet(), st: o.Store}
	defer func() {
		if err != nil {
			in.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data_dir: %w", err)
	}
	token, src, err := admin.ResolveToken(cfg.Admin.TokenFile, cfg.DataDir, true)
	if err != nil {
		return nil, err
	}
	in.token = token
	if src == admin.FromGenerated {
		// The token itself never goes to the log: logs are shipped, kept and
		// read by people who must not be able to change routing.
		log.Info("generated an admin token; read it from the file (mode 0600)", "file", filepath.Join(cfg.DataDir, "admin.token"))
	}

	// Bound first: the default fleet.instance is the port listen is bound to.
	if in.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", cfg.Listen, err)
	}
	if in.aln, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
		return nil, fmt.Errorf("cannot listen on admin %s: %w", cfg.Admin.Listen, err)
	}
	if host, _, _ := net.SplitHostPort(cfg.Admin.Listen); !isLoopback(host) {
		log.Warn("admin listener is not on loopback: anyone who can reach it and holds the token can change routing", "listen", cfg.Admin.Listen)
	}
	if cfg.Fleet.Database != "" && o.Store != nil {
		return nil, errors.New("app: Options.Store and fleet.database are both set; the fleet's diff store is the database")
	}

	bs := map[string]*backends.Backend{}
	for name, bc := range cfg.Backends {
		bo := backendOptions(cfg, bc)
		bo.OnBreakerChange = func(backend string, from, to backends.State) {
			log.Warn("breaker state change", "backend", backend, "from", from.String(), "to", to.String())
			if to == backends.StateOpen && in.ctl != nil {
				in.ctl.BreakerOpened(backend, time.Now())
			}
		}
		b, err := backends.New(name, bo)
		if err != nil {
			return nil, err
		}
		bs[name] = b
	}
	known := func(n string) bool { return bs[n] != nil }
	// A version is stored only if the data plane can put it in force: once
	// the proxy exists, its compilation (a dry run) is part of the check.
	// Before, at start, proxy.New compiles the stored rules and Open fails
	// if it cannot.
	validate := func(rs []rules.Route) []error {
		errs := rules.Validate(rs, known)
		if len(errs) == 0 && in.px != nil {
			if err := in.px.CheckRules(rs); err != nil {
				errs = append(errs, fmt.Errorf("the data plane cannot put these rules in force: %w", err))
			}
		}
		return errs
	}
	learner := compare.NewLearner()
	if cfg.Fleet.Database != "" {
		name := instanceName(cfg, in.ln)
		in.log = log.With("instance", name)
		log = in.log
		if in.fleet, err = openFleet(cfg, name, log, learner, validate); err != nil {
			return nil, err
		}
		in.state, in.st = in.fleet.rules, in.fleet.st
		log.Info("joined the fleet", "rules_version", in.state.Current().Version)
	} else {
		st, err := rulestore.OpenState(cfg.DataDir, cfg.Routes, validate, nil)
		if err != nil {
			return nil, err
		}
		in.state = st
	}
	state := in.state
	if msg := state.Recovered(); msg != "" {
		log.Warn("rules state recovered", "detail", msg)
	}
	if state.FileChanged(cfg.Routes) {
		if r, changed, err := state.ReplaceFromFile(cfg.Routes); err != nil {
			return nil, fmt.Errorf("cannot apply the config file's routes: %w", err)
		} else if changed {
			log.Info("config file routes applied", "version", r.Version)
		}
	}

	in.reloads = &reloadMetrics{
		ok:     in.ms.NewCounter(`tandem_rules_reload_total{result="ok"}`),
		failed: in.ms.NewCounter(`tandem_rules_reload_total{result="error"}`),
	}

	if in.fleet == nil {
		// Alone, the noise model is kept in data_dir; a fleet's is in the
		// database (pgrules shares the learner's counts and marks).
		in.noise = &noiseFile{path: filepath.Join(cfg.DataDir, "noise.json"), learner: learner, log: log}
		if err := in.noise.load(); err != nil {
			log.Warn("learned noise not restored", "err", err)
		}
	}

	if in.st == nil {
		// Through a *store.Store: a failed Open must leave in.st a nil
		// interface, not one holding a nil pointer that Close would call.
		sq, err := store.Open(filepath.Join(cfg.DataDir, "store.db"), store.Options{
			Logger:              log,
			Noise:               learner, // noise is applied when the store is read
			ComparisonRetention: time.Duration(cfg.Retention.Comparisons),
			Instance:            cfg.Listen, // fleet.instance's default, for now the only name
		})
		if err != nil {
			return nil, err
		}
		in.st = sq
	}
	st := in.st

	var rampFleet ramp.Fleet // nil alone: the Controller drives its own ramps
	if in.fleet != nil {
		rampFleet = in.fleet.ramp
	}
	in.ctl = ramp.New(ramp.Options{
		State:       state,
		Fleet:       rampFleet,
		BreakerOpen: func(b string) bool { return bs[b] != nil && bs[b].BreakerState() == backends.StateOpen },
		// The gates classify comparisons with the noise model as it stands
		// when they are evaluated (noise applied at read time).
		Noise: learner,
		// Every request served by new counts for the error gate, mirrored
		// or not; in.px is set below, before any tick or request.
		ServedNew: func(route string) (int64, int64) {
			c := in.px.Counters()[route]
			return c.ServedNew, c.Errors.New
		},
		Log: log,
	})
	cur := state.Current()
	po := proxyOptions(cfg)
	po.Backends = bs
	po.Logger = log
	po.Learner = learner
	po.Rules = &cur
	po.Observer = observers{storeObserver{st}, in.ctl}
	po.Metrics = in.ms
	po.AccessLog = o.AccessLog
	px, err := proxy.New(po)
	if err != nil {
		return nil, err
	}
	in.px = px
	px.Follow(state)
	state.Subscribe(in.rulesChanged)
	registerStoreMetrics(in.ms, st)
	in.ms.NewGauge("tandem_rules_applied_version", func() float64 { return float64(px.RulesVersion()) })
	if in.fleet != nil {
		in.fleet.registerMetrics(in.ms)
	}
	registerRampMetrics(in.ms, state.Current, in.ctl)
	in.rates = &diffRateGauges{ms: in.ms, st: st, log: log, fleet: in.fleet != nil, routes: func() []string {
		var names []string
		for _, r := range state.Current().Routes {
			names = append(names, r.Name)
		}
		return names
	}}
	in.rates.refresh() // at start-up: the gauges exist before any traffic

	deps := admin.Deps{
		Token: token,
		Rules: state,
		ParseRules: func(b []byte) (rules.Rules, []error) {
			return rules.ParseRulesFor(b, known)
		},
		Reports: st,
		Routes:  func() []admin.RouteStatus { return in.rates.fill(routeStatus(state, px, in.ctl)) },
		// Heat maps decode under the comparisons' budget.
		DecodeBudget: px.DecodeBudget(),
		Metrics:      in.ms,
		MarkNoise:    in.markNoise,
	}
	if in.fleet != nil {
		deps.Fleet, deps.ReportsFor = in.fleet.status, in.fleet.reportsFor
	}
	in.ad = admin.New(deps)
	return in, nil
}

// rulesChanged exports the routes' serve_new gauges of a rules version the
// data plane has put in force (it follows the state first).
func (in *Instance) rulesChanged(r rules.Rules) {
	if in.px.RulesVersion() != r.Version {
		return // not in force: Follow logged why
	}
	for _, rt := range r.Routes {
		name := rt.Name
		in.ms.GetOrCreateGauge(fmt.Sprintf(`tandem_serve_new_percent{route=%q}`, name), func() float64 {
			for _, x := range in.state.Current().Routes {
				if x.Name == name {
					return x.ServeNew
				}
			}
			return 0
		})
	}
	in.log.Info("rules in force", "version", r.Version, "routes", len(r.Routes))
}

// markNoise marks a path as noise for a route (POST
// /api/v1/routes/{name}/noise): persisted and audited before it takes
// effect (noiseFile.mark). A mark that cannot be persisted is refused with
// an admin.NotAppliedError (503) and changes nothing.
func (in *Instance) markNoise(route, p, reason string) error {
	if in.fleet != nil {
		return in.fleet.markNoise(route, p, reason)
	}
	ev := rules.Event{Actor: "api", Kind: "noise", Route: route, Reason: reason, New: "noise " + p}
	err := in.noise.mark(route, p, reason, func() error { return in.state.Record(ev) })
	var me *markError
	if !errors.As(err, &me) {
		return err
	}
	if me.bad {
		return &admin.BadRequestError{Err: me.err}
	}
	in.log.Warn("noise mark not applied: it cannot be persisted", "route", route, "path", p, "err", me.err)
	if me.audited {
		// The audit entry is written; say in the log that it did not apply.
		withdrawn := rules.Event{Actor: "tandem", Kind: "noise", Route: route, Old: "noise " + p, New: "not applied",
			Reason: "the mark above could not be saved: " + me.err.Error()}
		if err := in.state.Record(withdrawn); err != nil {
			in.log.Error("the audit log records a noise mark that was not applied", "route", route, "path", p, "err", err)
		}
	}
	return &admin.NotAppliedError{Err: me.err}
}

// Run serves until ctx is done or a listener fails, then shuts down: the
// data plane drains within shutdown_timeout, the jobs stop (the counters
// are flushed once more, after the drain), the admin listener closes and
// the noise is saved. It returns the listener's error, if one failed. Run
// may be called once; Close must still be called.
func (in *Instance) Run(ctx context.Context) error {
	in.mu.Lock()
	if in.ran || in.closed {
		in.mu.Unlock()
		return errors.New("cannot run: the instance already ran or is closed")
	}
	in.ran = true
	in.mu.Unlock()

	errCh := make(chan error, 2)
	go func() { errCh <- in.px.Serve(in.ln) }()
	go func() { errCh <- in.ad.Serve(in.aln) }()
	flusher := &counterFlusher{px: in.px, st: in.st, last: map[string]proxy.RouteCounters{}}
	in.jobs.start(&job{name: "counter-flush", interval: flushEvery, run: flusher.flush, final: flusher.flush})
	in.jobs.start(&job{name: "ramp-tick", interval: tickEvery, run: in.ctl.Tick})
	reportEvery := diffRateEvery
	if in.fleet != nil {
		reportEvery = fleetReportEvery
	}
	in.jobs.start(&job{name: "report-gauge", interval: reportEvery, run: in.rates.refresh})
	if in.noise != nil {
		in.jobs.start(&job{name: "noise-save", interval: saveEvery, run: func() {
			if err := in.noise.save(); err != nil {
				in.log.Warn("learned noise not saved", "err", err)
			}
		}})
	}
	if in.fleet != nil {
		in.jobs.start(&job{name: "fleet-instances", interval: fleetInstancesEvery, run: in.fleet.refreshInstances})
		go in.fleet.ramp.Run(context.Background()) // ends in fleet.close
	}
	stopWatch := func() {}
	if in.path != "" {
		stopWatch = watchConfig(in.path, in.log, in.Reload)
	}
	cur := in.state.Current()
	in.log.Info("tandem started", "listen", in.ln.Addr().String(), "admin", in.aln.Addr().String(),
		"routes", len(cur.Routes), "rules_version", cur.Version)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errCh:
		runErr = fmt.Errorf("listener failed: %w", err)
	}
	in.log.Info("shutting down", "timeout", in.cfg.ShutdownTimeout.String())
	stopWatch()
	sctx, cancel := context.WithTimeout(context.Background(), in.cfg.ShutdownTimeout.D())
	defer cancel()
	err := in.px.Shutdown(sctx)
	in.mu.Lock()
	in.stopped = true
	in.mu.Unlock()
	in.jobs.stopAll() // after the drain: the final numbers
	in.ad.Shutdown()
	if in.noise != nil {
		if err := in.noise.save(); err != nil {
			in.log.Warn("learned noise not saved", "err", err)
		}
	}
	if err != nil {
		in.log.Warn("shutdown incomplete", "err", err)
	}
	return runErr
}

// Close releases what Open made and Run did not: the listeners and the data
// plane of an instance that never ran, and the diff store. It is safe to
// call more than once and on a partly opened instance.
func (in *Instance) Close() error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return nil
	}
	in.closed = true
	ran, stopped := in.ran, in.stopped
	in.mu.Unlock()
	if !ran {
		for _, l := range []net.Listener{in.ln, in.aln} {
			if l != nil {
				l.Close()
			}
		}
		if in.px != nil && !stopped {
			ctx, cancel := context.WithTimeout(context.Background(), in.cfg.ShutdownTimeout.D())
			in.px.Shutdown(ctx)
			cancel()
		}
	}
	var err error
	if in.st != nil {
		if err = in.st.Close(); err != nil {
			in.log.Warn("store close", "err", err)
		}
	}
	if in.fleet != nil {
		in.fleet.close() // after the store: its last flush reaches the database
	}
	if ran {
		in.log.Info("tandem stopped")
	}
	return err
}

// Addr is the client listener's address.
func (in *Instance) Addr() string { return in.ln.Addr().String() }

// AdminAddr is the admin listener's address.
func (in *Instance) AdminAddr() string { return in.aln.Addr().String() }

// Token is the admin API's bearer token.
func (in *Instance) Token() string { return in.token }

// Proxy is the data plane.
func (in *Instance) Proxy() *proxy.Server { return in.px }

// State is the rules store: the instance's own, or the fleet's.
func (in *Instance) State() rulestore.Store { return in.state }

// InstanceName is the instance's name in the fleet; "" when it is alone.
func (in *Instance) InstanceName() string {
	if in.fleet == nil {
		return ""
	}
	return in.fleet.name
}

// Store is the diff store.
func (in *Instance) Store() DiffStore { return in.st }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
