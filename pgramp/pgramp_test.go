package pgramp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tandem-proxy/tandem/internal/pgtest"
	"github.com/tandem-proxy/tandem/pglease"
	"github.com/tandem-proxy/tandem/pgrules"
	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/rules"
)

// Short timings, the production design's (see pglease's tests): a dead
// driver is replaced within ttl + renew (+ a round trip and a sync). The
// trust window (ttl - margin) and liveWithin stay long enough that a
// renewal or heartbeat delayed by a loaded CI machine (the whole suite
// under -race on two cores) does not move the lease or drop an instance
// from the live set in tests that are about something else.
const (
	ttl        = 3 * time.Second
	renew      = 300 * time.Millisecond
	margin     = 500 * time.Millisecond
	syncEvery  = 100 * time.Millisecond
	tickEvery  = 100 * time.Millisecond
	poll       = 100 * time.Millisecond
	liveWithin = 3 * time.Second
	route      = "images"
)

func seed(hold time.Duration, minCompared int64) []rules.Route {
	r := rules.DefaultRoute()
	r.Name, r.Legacy, r.New = route, "legacy", "new"
	r.Ramp = &rules.Ramp{Steps: []float64{25, 50, 100}, Hold: rules.Duration(hold), MinCompared: minCompared,
		MaxDiffRate: 0.05, MaxErrorRate: 0.05, MaxLatencyRatio: 2}
	return []rules.Route{r}
}

// node is one tandem instance as far as the ramp goes: its own pool,
// pgrules Store, Fleet and Controller, ticking.
type node struct {
	name  string
	pool  *pgxpool.Pool
	rules *pgrules.Store
	fleet *Fleet
	ctl   *ramp.Controller

	stopTick chan struct{}
	ticking  sync.WaitGroup
	runDone  chan struct{}
	once     sync.Once
}

type nodeOpts struct {
	seed     []rules.Route
	validate rules.Validator
}

func startNode(t *testing.T, url, name string, o nodeOpts) *node {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.Default().With("test_instance", name)
	rs, err := pgrules.Open(ctx, pool, pgrules.Options{Instance: name, Seed: o.seed, Validate: o.validate,
		PollInterval: poll, LiveWithin: liveWithin, Logger: log})
	if err != nil {
		pool.Close()
		t.Fatalf("open %s: %v", name, err)
	}
	rs.Subscribe(func(rules.Rules) {}) // the data plane: applied versions count
	f, err := New(ctx, pool, Options{Instance: name, Rules: rs, Log: log,
		TTL: ttl, RenewEvery: renew, Margin: margin, SyncEvery: syncEvery, LiveWithin: liveWithin})
	if err != nil {
		rs.Close()
		pool.Close()
		t.Fatal(err)
	}
	n := &node{name: name, pool: pool, rules: rs, fleet: f, stopTick: make(chan struct{}), runDone: make(chan struct{})}
	n.ctl = ramp.New(ramp.Options{State: rs, Fleet: f, Log: log})
	go func() { defer close(n.runDone); f.Run(ctx) }()
	n.ticking.Add(1)
	go func() { defer n.ticking.Done(); n.ctl.Run(n.stopTick, tickEvery) }()
	t.Cleanup(n.stop)
	return n
}

// stop shuts the node down cleanly (the leases are released).
func (n *node) stop() {
	n.once.Do(func() {
		close(n.stopTick)
		n.ticking.Wait()
		n.fleet.Close()
		<-n.runDone
		n.rules.Close()
		n.pool.Close()
	})
}

// crash stops the node as kill -9 would: its connections go first, so
// nothing more reaches the database (no release, no heartbeat); its lease
// stays until it expires and its registry row until it is no longer live.
func (n *node) crash() {
	n.once.Do(func() {
		close(n.stopTick)
		n.ticking.Wait()
		n.pool.Close()
		n.fleet.Close()
		<-n.runDone
		n.rules.Close()
	})
}

func (n *node) route() *rules.Route {
	cur := n.rules.Current()
	for i := range cur.Routes {
		if cur.Routes[i].Name == route {
			return &cur.Routes[i]
		}
	}
	return nil
}

func (n *node) serveNew() float64 { return n.route().ServeNew }

func (n *node) status() *ramp.Status { return n.ctl.Status(n.route()) }

// anchoredAt reports whether the node's last tick judged the gates at
// percent (its window then belongs to that step).
func (n *node) anchoredAt(percent float64) bool {
	s := n.status()
	return s != nil && s.Last != nil && s.Last.FromPercent == percent && len(s.Last.Gates) > 0
}

// feed adds k matching comparisons (both sides 1 ms) to the node's window.
func (n *node) feed(k int) {
	for range k {
		n.ctl.Add(ramp.Observation{Route: route, Start: time.Now(), Compared: true, LegacyOK: true,
			LegacyLatency: time.Millisecond, NewLatency: time.Millisecond})
	}
}

func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// stable fails the test if cond turns false within d.
func stable(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if !cond() {
			t.Fatalf("%s: broke within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func database(t *testing.T) string {
	t.Helper()
	return pgtest.Start(t).NewDatabase()
}

// rampEvents returns the audit log's ramp events of the route, as
// "kind to" ("ramp_step 25", "ramp_done 100").
func rampEvents(t *testing.T, n *node) []string {
	t.Helper()
	evs, err := n.rules.Events(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Route == route && strings.HasPrefix(e.Kind, "ramp_") {
			out = append(out, fmt.Sprintf("%s %v", e.Kind, e.Details["to_percent"]))
		}
	}
	return out
}

// drivenBy waits until every node's status names driver as the driver.
func drivenBy(t *testing.T, d time.Duration, driver string, nodes ...*node) {
	t.Helper()
	within(t, d, "every instance shows "+driver+" as the driver", func() bool {
		for _, n := range nodes {
			if s := n.status(); s == nil || s.Driver != driver {
				return false
			}
		}
		return true
	})
}

func gateSamples(s *ramp.Status) int64 {
	if s == nil || s.Last == nil {
		return -1
	}
	for _, g := range s.Last.Gates {
		if g.Name == ramp.GateDiffRate {
			return g.Samples
		}
	}
	return -1
}

// Three instances, each seeing a third of the comparisons; a gate that
// needs 300 passes only on the fleet's sum. The ramp steps once per gate
// pass, every step once in the audit log, and every instance shows the
// same merged gates.
func TestRampStepsOnFleetTotals(t *testing.T) {
	url := database(t)
	hold := 300 * time.Millisecond
	o := nodeOpts{seed: seed(hold, 300)}
	a := startNode(t, url, "a", o)
	drivenBy(t, 5*time.Second, "a", a)
	b := startNode(t, url, "b", o)
	c := startNode(t, url, "c", o)
	nodes := []*node{a, b, c}
	drivenBy(t, 5*time.Second, "a", nodes...)

	for _, n := range nodes {
		within(t, 3*time.Second, n.name+" judges the gates at 0%", func() bool { return n.anchoredAt(0) })
	}
	// Two thirds of the samples: every instance shows 200 of 300, none steps.
	a.feed(100)
	b.feed(100)
	within(t, 3*time.Second, "every instance shows the two instances' 200 comparisons", func() bool {
		for _, n := range nodes {
			if gateSamples(n.status()) != 200 {
				return false
			}
		}
		return true
	})
	stable(t, hold+5*tickEvery, "no step on 200 of the 300 comparisons needed", func() bool { return a.serveNew() == 0 })
	if s := c.status(); !strings.Contains(s.Last.Reason, "driven by a") || s.Driver != "a" {
		t.Fatalf("c's status: driver %q, reason %q", s.Driver, s.Last.Reason)
	}

	prev := 0.0
	for _, want := range []float64{25, 50, 100} {
		if prev > 0 {
			for _, n := range nodes {
				within(t, 3*time.Second, fmt.Sprintf("%s judges the gates at %v%%", n.name, prev), func() bool { return n.anchoredAt(prev) })
			}
			a.feed(100)
			b.feed(100)
		}
		c.feed(100)
		for _, n := range nodes {
			within(t, 5*time.Second, fmt.Sprintf("%s serves %v%%", n.name, want), func() bool { return n.serveNew() == want })
		}
		prev = want
	}
	for _, n := range nodes {
		within(t, 3*time.Second, n.name+" judges the gates at 100%", func() bool { return n.anchoredAt(100) })
	}
	a.feed(100)
	b.feed(100)
	c.feed(100)
	within(t, 5*time.Second, "ramp_done recorded", func() bool {
		evs := rampEvents(t, a)
		return len(evs) > 0 && strings.HasPrefix(evs[len(evs)-1], "ramp_done")
	})
	time.Sleep(hold + 5*tickEvery) // nothing more may come
	got := strings.Join(rampEvents(t, a), ", ")
	if want := "ramp_step 25, ramp_step 50, ramp_step 100, ramp_done 100"; got != want {
		t.Fatalf("audit log's ramp events: %s, want %s", got, want)
	}
	for _, n := range nodes {
		if n.serveNew() != 100 {
			t.Fatalf("%s: serve_new %v", n.name, n.serveNew())
		}
	}
	if s := a.status(); s.State != ramp.StateDone {
		t.Fatalf("the driver's state is %s, want %s", s.State, ramp.StateDone)
	}
}

// After the driver records ramp_done, every instance shows the ramp done
// (GET /api/v1/routes' state, tandem_ramp_state), not only the driver:
// ramp_done changes no rules, so the others read it from the audit log.
func TestEveryInstanceShowsRampDone(t *testing.T) {
	url := database(t)
	hold := 300 * time.Millisecond
	rs := seed(hold, 100)
	rs[0].ServeNew = 100 // at the last step: the next decision is done
	o := nodeOpts{seed: rs}
	a := startNode(t, url, "a", o)
	drivenBy(t, 5*time.Second, "a", a)
	b := startNode(t, url, "b", o)
	nodes := []*node{a, b}
	drivenBy(t, 5*time.Second, "a", nodes...)
	for _, n := range nodes {
		within(t, 3*time.Second, n.name+" judges the gates at 100%", func() bool { return n.anchoredAt(100) })
	}
	a.feed(50)
	b.feed(50)
	within(t, 5*time.Second, "ramp_done recorded", func() bool { return strings.Join(rampEvents(t, a), ", ") == "ramp_done 100" })
	for _, n := range nodes {
		within(t, 3*time.Second, n.name+" shows the ramp done", func() bool { return n.status().State == ramp.StateDone })
	}
	stable(t, hold+5*tickEvery, "done once, shown done everywhere", func() bool {
		return strings.Join(rampEvents(t, a), ", ") == "ramp_done 100" && a.status().State == ramp.StateDone && b.status().State == ramp.StateDone
	})
}

// The driver dies (kill -9) mid-hold: another instance drives within
// TTL + RenewEvery (+ a sync and a tick), the step is not repeated, and
// the hold counts from when the step began, not from the takeover.
func TestDriverCrashTakenOver(t *testing.T) {
	url := database(t)
	hold := 3 * time.Second
	o := nodeOpts{seed: seed(hold, 200)}
	a := startNode(t, url, "a", o)
	drivenBy(t, 5*time.Second, "a", a)
	b := startNode(t, url, "b", o)
	c := startNode(t, url, "c", o)
	nodes := []*node{a, b, c}
	drivenBy(t, 5*time.Second, "a", nodes...)

	// Step to 25% (the seed is older than the hold by now, or soon).
	for _, n := range nodes {
		within(t, 3*time.Second, n.name+" judges the gates at 0%", func() bool { return n.anchoredAt(0) })
		n.feed(100)
	}
	for _, n := range nodes {
		within(t, hold+5*time.Second, n.name+" serves 25%", func() bool { return n.serveNew() == 25 })
	}
	stepAt := time.Now()
	for _, n := range nodes {
		within(t, 3*time.Second, n.name+" judges the gates at 25%", func() bool { return n.anchoredAt(25) })
	}
	b.feed(100)
	c.feed(100)
	since := a.status().StepSince
	time.Sleep(300 * time.Millisecond)

	crashAt := time.Now()
	a.crash()
	var next string
	took := within(t, ttl+renew+syncEvery+time.Second, "another instance drives", func() bool {
		for _, n := range []*node{b, c} {
			if s := n.status(); s.Driver != "" && s.Driver != "a" {
				next = s.Driver
				return true
			}
		}
		return false
	})
	t.Logf("takeover %v after the crash (bound ttl+renew = %v)", took, ttl+renew)
	driver := b
	if next == "c" {
		driver = c
	}
	// It acts once it trusts its term: at once, or, when its acquisition's
	// reply came too late to trust (a loaded machine), after that term
	// expires unused and it takes the next (pglease: at most ttl + renew).
	acting := within(t, ttl+renew+2*time.Second, "the new driver judged the gates at 25%", func() bool {
		s := driver.status()
		return s.Last != nil && len(s.Last.Gates) > 0 && !strings.Contains(s.Last.Reason, "driven by")
	})
	if d := driver.status().StepSince.Sub(since); d < -200*time.Millisecond || d > 200*time.Millisecond {
		t.Fatalf("the new driver's step began at %v, the old driver's at %v: the hold restarted", driver.status().StepSince, since)
	}
	within(t, hold+2*time.Second, "the new driver advances to 50%", func() bool { return b.serveNew() == 50 && c.serveNew() == 50 })
	advanced := time.Since(stepAt)
	// Restarted when the new driver began to act, the hold would end after
	// crashAt + takeover + acting + hold.
	if restart := crashAt.Add(took).Add(acting).Add(hold).Sub(stepAt); advanced >= restart {
		t.Fatalf("advanced %v after the step (a restarted hold: %v)", advanced, restart)
	}
	if advanced < hold-500*time.Millisecond {
		t.Fatalf("advanced %v after the step, before the hold %v", advanced, hold)
	}
	time.Sleep(5 * tickEvery)
	if got, want := strings.Join(rampEvents(t, b), ", "), "ramp_step 25, ramp_step 50"; got != want {
		t.Fatalf("audit log's ramp events: %s, want %s", got, want)
	}
}

// An instance that has not applied the last version (its validator
// refuses it) holds the ramp while it is live; once it is gone, the step
// is taken.
func TestNoStepBeforeEveryInstanceApplied(t *testing.T) {
	url := database(t)
	hold := 300 * time.Millisecond
	o := nodeOpts{seed: seed(hold, 100)}
	a := startNode(t, url, "a", o)
	drivenBy(t, 5*time.Second, "a", a)
	b := startNode(t, url, "b", o)
	refusing := o
	refusing.validate = func(rs []rules.Route) []error {
		errs := rules.Validate(rs, func(string) bool { return true })
		for _, r := range rs {
			if r.ServeNew > 25 {
				errs = append(errs, fmt.Errorf("route %q: serve_new %v refused here", r.Name, r.ServeNew))
			}
		}
		return errs
	}
	c := startNode(t, url, "c", refusing)
	drivenBy(t, 5*time.Second, "a", a, b, c)

	for _, step := range []float64{0, 25} {
		for _, n := range []*node{a, b} {
			within(t, 3*time.Second, fmt.Sprintf("%s judges the gates at %v%%", n.name, step), func() bool { return n.anchoredAt(step) })
			n.feed(100)
		}
		next := map[float64]float64{0: 25, 25: 50}[step]
		within(t, hold+5*time.Second, fmt.Sprintf("a serves %v%%", next), func() bool { return a.serveNew() == next })
	}
	if c.serveNew() != 25 {
		t.Fatalf("c serves %v, want 25 (it refuses 50)", c.serveNew())
	}
	v := a.rules.Current().Version
	for _, n := range []*node{a, b} {
		within(t, 3*time.Second, n.name+" judges the gates at 50%", func() bool { return n.anchoredAt(50) })
		n.feed(100)
	}
	within(t, hold+3*time.Second, "a waits for c to apply the version", func() bool {
		s := a.status()
		return s.Last != nil && strings.Contains(s.Last.Reason, fmt.Sprintf("not every live instance has applied rules version %d", v))
	})
	stable(t, hold+time.Second, "no step while c is behind", func() bool { return a.serveNew() == 50 })
	if got, want := strings.Join(rampEvents(t, a), ", "), "ramp_step 25, ramp_step 50"; got != want {
		t.Fatalf("audit log's ramp events: %s, want %s", got, want)
	}
	c.stop()
	within(t, liveWithin+hold+3*time.Second, "the step once c is no longer live", func() bool { return a.serveNew() == 100 })
}

// A driver whose term has ended (here: its lease expired and was taken
// over) is refused by the database: its Apply and Record write nothing.
func TestStaleDriverFenced(t *testing.T) {
	url := database(t)
	o := nodeOpts{seed: seed(time.Hour, 1)}
	a := startNode(t, url, "a", o)
	drivenBy(t, 5*time.Second, "a", a)
	b := startNode(t, url, "b", o)
	old, mine := a.fleet.Lead(route)
	if !mine || old.Driver != "a" {
		t.Fatalf("a's term %+v, mine %v", old, mine)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// The term ends in the database behind a's back (a pause longer than
	// the TTL looks the same from there); someone takes a new one.
	if _, err := conn.Exec(context.Background(), "UPDATE lease_leases SET expires_at = now() WHERE name = $1", LeaseName(route)); err != nil {
		t.Fatal(err)
	}
	var cur ramp.Term
	within(t, 3*time.Second, "a new term", func() bool {
		for _, n := range []*node{a, b} {
			if t, mine := n.fleet.Lead(route); mine && t.Epoch > old.Epoch {
				cur = t
				return true
			}
		}
		return false
	})
	before := a.rules.Current().Version
	nEvents := len(rampEvents(t, a))
	ev := rules.Event{Actor: "ramp", Kind: "ramp_step", Route: route, Reason: "stale"}
	_, _, err = a.fleet.Apply(old, 0, ev, rules.SetServeNew(route, 25, nil))
	if !errors.Is(err, ramp.ErrFenced) || !errors.Is(err, pglease.ErrFenced) {
		t.Fatalf("stale Apply: %v, want ErrFenced", err)
	}
	if err := a.fleet.Record(old, rules.Event{Actor: "ramp", Kind: "ramp_done", Route: route}); !errors.Is(err, ramp.ErrFenced) {
		t.Fatalf("stale Record: %v, want ErrFenced", err)
	}
	time.Sleep(2 * poll)
	if v := a.rules.Current().Version; v != before || a.serveNew() != 0 || len(rampEvents(t, a)) != nEvents {
		t.Fatalf("a stale write got through: version %d (was %d), serve_new %v, ramp events %v", v, before, a.serveNew(), rampEvents(t, a))
	}
	if a.fleet.Counters().Fenced != 2 {
		t.Fatalf("counters %+v, want 2 fenced", a.fleet.Counters())
	}
	// The term in force writes.
	holder := map[string]*node{"a": a, "b": b}[cur.Driver]
	if _, changed, err := holder.fleet.Apply(cur, 0, ev, rules.SetServeNew(route, 25, nil)); err != nil || !changed {
		t.Fatalf("Apply of the term in force: changed %v, %v", changed, err)
	}
}
