package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fsnotify/fsnotify"
	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/proxy"
	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/store"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", "serve -config FILE", stderr)
	path := fs.String("config", "tandem.yaml", "configuration file")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	accessLog := fs.Float64("access-log", 0, "share of requests to log, one line each (0 = none, 0.01 = 1%, 1 = all)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if *accessLog < 0 || *accessLog > 1 {
		fmt.Fprintf(stderr, "tandem serve: -access-log must be within 0..1, not %v\n", *accessLog)
		return 2
	}
	log, err := newLogger(*logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tandem serve: %v\n", err)
		return 2
	}
	cfg, errs := config.Load(*path)
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		}
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := serve(*path, cfg, log, sigs, nil, serveOptions{accessLog: *accessLog}); err != nil {
		fmt.Fprintf(stderr, "tandem serve: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("invalid -log-format %q: want text or json", format)
}

// running is what serve has started; ready is called once it listens.
type running struct {
	Addr, AdminAddr, Token string
	Proxy                  *proxy.Server
	State                  *rules.State
	Store                  *store.Store
}

// serve runs tandem until SIGTERM/SIGINT arrives on sigs (SIGHUP reloads the
// config file), then shuts down within cfg.ShutdownTimeout.
// serveOptions are serve's command-line settings beyond the config file.
type serveOptions struct {
	accessLog float64 // share of requests logged
}

func serve(path string, cfg *config.Config, log *slog.Logger, sigs <-chan os.Signal, ready func(*running), so serveOptions) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("cannot create data_dir: %w", err)
	}
	token, src, err := admin.ResolveToken(cfg.Admin.TokenFile, cfg.DataDir, true)
	if err != nil {
		return err
	}
	if src == admin.FromGenerated {
		// The token itself never goes to the log: logs are shipped, kept and
		// read by people who must not be able to change routing.
		log.Info("generated an admin token; read it from the file (mode 0600)", "file", filepath.Join(cfg.DataDir, "admin.token"))
	}

	var ctl *ramp.Controller
	bs := map[string]*backends.Backend{}
	for name, bc := range cfg.Backends {
		bo := backendOptions(cfg, bc)
		bo.OnBreakerChange = func(backend string, from, to backends.State) {
			log.Warn("breaker state change", "backend", backend, "from", from.String(), "to", to.String())
			if to == backends.StateOpen && ctl != nil {
				ctl.BreakerOpened(backend, time.Now())
			}
		}
		b, err := backends.New(name, bo)
		if err != nil {
			return err
		}
		bs[name] = b
	}
	validate := func(rs []rules.Route) []error {
		return rules.Validate(rs, func(n string) bool { return bs[n] != nil })
	}
	state, err := rules.OpenState(cfg.DataDir, cfg.Routes, validate, nil)
	if err != nil {
		return err
	}
	if msg := state.Recovered(); msg != "" {
		log.Warn("rules state recovered", "detail", msg)
	}
	if state.FileChanged(cfg.Routes) {
		if r, changed, err := state.ReplaceFromFile(cfg.Routes); err != nil {
			return fmt.Errorf("cannot apply the config file's routes: %w", err)
		} else if changed {
			log.Info("config file routes applied", "version", r.Version)
		}
	}

	// This serve's own metrics (the proxy's among them), exported by its
	// admin listener only, so that several serves in one process (tests)
	// never read each other's state.
	ms := metrics.NewSet()
	rm := &reloadMetrics{
		ok:     ms.NewCounter(`tandem_rules_reload_total{result="ok"}`),
		failed: ms.NewCounter(`tandem_rules_reload_total{result="error"}`),
	}

	learner := compare.NewLearner()
	noise := &noiseFile{path: filepath.Join(cfg.DataDir, "noise.json"), learner: learner}
	if err := noise.load(); err != nil {
		log.Warn("learned noise not restored", "err", err)
	}

	st, err := store.Open(filepath.Join(cfg.DataDir, "store.db"), store.Options{Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()

	ctl = ramp.New(state, func(b string) bool { return bs[b] != nil && bs[b].BreakerState() == backends.StateOpen }, log, nil)
	cur := state.Current()
	po := proxyOptions(cfg)
	po.Backends = bs
	po.Logger = log
	po.Learner = learner
	po.Rules = &cur
	po.Observer = observers{storeObserver{st}, ctl}
	po.Metrics = ms
	po.AccessLog = so.accessLog
	px, err := proxy.New(po)
	if err != nil {
		return err
	}
	state.Subscribe(func(r rules.Rules) {
		if err := px.SetRules(r.Version, r.Routes); err != nil {
			log.Error("rules not applied to the data plane", "version", r.Version, "err", err)
			return
		}
		for _, rt := range r.Routes {
			name := rt.Name
			ms.GetOrCreateGauge(fmt.Sprintf(`tandem_serve_new_percent{route=%q}`, name), func() float64 {
				for _, x := range state.Current().Routes {
					if x.Name == name {
						return x.ServeNew
					}
				}
				return 0
			})
		}
		log.Info("rules in force", "version", r.Version, "routes", len(r.Routes))
	})
	registerStoreMetrics(ms, st)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", cfg.Listen, err)
	}
	aln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("cannot listen on admin %s: %w", cfg.Admin.Listen, err)
	}
	if host, _, _ := net.SplitHostPort(cfg.Admin.Listen); !isLoopback(host) {
		log.Warn("admin listener is not on loopback: anyone who can reach it and holds the token can change routing", "listen", cfg.Admin.Listen)
	}
	ad := admin.New(admin.Deps{
		Token: token,
		Rules: state,
		ParseRules: func(b []byte) (rules.Rules, []error) {
			return rules.ParseRulesFor(b, func(n string) bool { return bs[n] != nil })
		},
		Reports: st,
		Routes:  func() []admin.RouteStatus { return routeStatus(state, px, ctl) },
		// Heat maps decode under the comparisons' budget.
		DecodeBudget: px.DecodeBudget(),
		Metrics:      ms,
		MarkNoise: func(route, p, reason string) error {
			if err := learner.Mark(route, p, reason); err != nil {
				return &admin.BadRequestError{Err: err}
			}
			if err := noise.save(); err != nil {
				return err
			}
			return state.Record(rules.Event{Actor: "api", Kind: "noise", Route: route, Reason: reason, New: "noise " + p})
		},
	})

	stop := make(chan struct{})
	done := make(chan struct{})
	errCh := make(chan error, 2)
	go func() { errCh <- px.Serve(ln) }()
	go func() { errCh <- ad.Serve(aln) }()
	go func() { defer close(done); background(stop, px, st, noise, ctl) }()
	watchStop := watchConfig(path, log, func() { reload(path, state, log, rm) })

	log.Info("tandem started", "listen", ln.Addr().String(), "admin", aln.Addr().String(),
		"routes", len(cur.Routes), "rules_version", cur.Version)
	if ready != nil {
		ready(&running{Addr: ln.Addr().String(), AdminAddr: aln.Addr().String(), Token: token, Proxy: px, State: state, Store: st})
	}

wait:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(path, state, log, rm)
				continue
			}
			break wait
		case err := <-errCh:
			return fmt.Errorf("listener failed: %w", err)
		}
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	watchStop()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	err = px.Shutdown(ctx)
	close(stop)
	<-done
	ad.Shutdown()
	if err := noise.save(); err != nil {
		log.Warn("learned noise not saved", "err", err)
	}
	if cerr := st.Close(); cerr != nil {
		log.Warn("store close", "err", cerr)
	}
	if err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	log.Info("tandem stopped")
	return nil
}

// background runs the periodic work: counter flushes to the store, ramp
// ticks and noise snapshots, until stop is closed.
func background(stop <-chan struct{}, px *proxy.Server, st *store.Store, noise *noiseFile, ctl *ramp.Controller) {
	last := map[string]proxy.RouteCounters{}
	flush := time.NewTicker(time.Second)
	tick := time.NewTicker(time.Second)
	save := time.NewTicker(time.Minute)
	defer flush.Stop()
	defer tick.Stop()
	defer save.Stop()
	for {
		select {
		case <-stop:
			flushCounters(px, st, last) // after the proxy has drained: the final numbers
			return
		case <-flush.C:
			flushCounters(px, st, last)
		case <-tick.C:
			ctl.Tick()
		case <-save.C:
			noise.save()
		}
	}
}

// flushCounters sends the counters' growth since the last flush to the store.
// Requests, the served counts, their errors and Sent (mirrored) come from one
// snapshot of the route's answer cells (proxy.RouteCounters), so every delta,
// and so every window of the report, has Sent ≤ Requests.
func flushCounters(px *proxy.Server, st *store.Store, last map[string]proxy.RouteCounters) {
	now := time.Now()
	for route, c := range px.Counters() {
		p := last[route]
		d := store.Counters{
			Requests:     c.Requests() - p.Requests(),
			ServedLegacy: c.ServedLegacy - p.ServedLegacy,
			ServedNew:    c.ServedNew - p.ServedNew,
			ServedTandem: c.ServedTandem - p.ServedTandem,
			ServedErrors: store.ServedCounts{
				Legacy: c.Errors.Legacy - p.Errors.Legacy,
				New:    c.Errors.New - p.Errors.New,
				Tandem: c.Errors.Tandem - p.Errors.Tandem,
			},
			Fallback: c.Fallback - p.Fallback,
			Sent:     c.Mirrored - p.Mirrored,
			Skipped:  map[exchange.Outcome]int64{},
		}
		for _, o := range exchange.Outcomes {
			if o.Skipped() { // a shadow that was sent and failed is mirrored, not skipped
				d.Skipped[o] = c.Shadow[o] - p.Shadow[o]
			}
		}
		if d.Requests == 0 && d.Sent == 0 && d.Fallback == 0 && sumMap(d.Skipped) == 0 {
			continue
		}
		if st.AddCounters(route, now, d) {
			last[route] = c
		}
	}
}

func sumMap(m map[exchange.Outcome]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// reload re-reads the config file and replaces the routes if they changed.
// An invalid file changes nothing: the errors are logged, counted and audited.
func reload(path string, state *rules.State, log *slog.Logger, m *reloadMetrics) {
	cfg, errs := config.Load(path)
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
			log.Error("config reload refused", "file", path, "err", e)
		}
		m.failed.Inc()
		state.Record(rules.Event{Actor: "file", Kind: "reload_error", Reason: "invalid config file; the previous rules stay in force",
			Details: map[string]any{"errors": msgs}})
		return
	}
	if !state.FileChanged(cfg.Routes) {
		m.ok.Inc()
		return
	}
	r, changed, err := state.ReplaceFromFile(cfg.Routes)
	if err != nil {
		m.failed.Inc()
		log.Error("config reload refused", "file", path, "err", err)
		var ve *rules.ValidationError
		details := map[string]any{"error": err.Error()}
		if errors.As(err, &ve) {
			details["errors"] = fmt.Sprint(ve.Errs)
		}
		state.Record(rules.Event{Actor: "file", Kind: "reload_error", Reason: "the previous rules stay in force", Details: details})
		return
	}
	m.ok.Inc()
	if changed {
		log.Info("config reloaded", "file", path, "version", r.Version)
	}
}

// reloadMetrics count config reloads by result.
type reloadMetrics struct{ ok, failed *metrics.Counter }

// watchConfig calls onChange when the config file changes on disk (editors
// replace files by rename, so the directory is watched). It returns a stop
// function. Without fsnotify support, SIGHUP still reloads.
func watchConfig(path string, log *slog.Logger, onChange func()) func() {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("config file watching unavailable; use SIGHUP to reload", "err", err)
		return func() {}
	}
	abs, _ := filepath.Abs(path)
	if err := w.Add(filepath.Dir(abs)); err != nil {
		log.Warn("config file watching unavailable; use SIGHUP to reload", "err", err)
		w.Close()
		return func() {}
	}
	stop := make(chan struct{})
	go func() {
		var debounce <-chan time.Time
		for {
			select {
			case <-stop:
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == abs && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					debounce = time.After(200 * time.Millisecond)
				}
			case <-debounce:
				onChange()
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config watch error", "err", err)
			}
		}
	}()
	return func() { close(stop); w.Close() }
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
