// A ramp across a fleet end to end (issue 20, DESIGN.md "Fleet", "One ramp
// driver"): three real `tandem serve` processes on one PostgreSQL database
// (internal/pgtest), one route with a ramp, bounded load spread over them.
// The gates need more comparisons than any one instance makes during a
// step, so only the fleet's totals pass them; one instance drives; a
// stopped instance that has not applied the last version holds the next
// step back; kill -9 of the driver hands the ramp to another instance
// within 15 s, which continues the hold where it was.

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tandem-proxy/tandem/internal/pgtest"
	"github.com/tandem-proxy/tandem/rules"
)

const (
	// rampMinCompared is the route's min_compared. The load below sends
	// each instance at most 25 requests a second (all mirrored, so as many
	// comparisons) and a step lasts a few seconds: no instance reaches it
	// alone within a step, three (or two) together do.
	rampMinCompared = 200
	// liveWithin is pgrules' LiveWithin: an instance whose registry row is
	// older no longer counts (nor holds a step back).
	liveWithin = 10 * time.Second
	// takeoverWithin is the contract's bound for another instance to drive
	// after the driver dies.
	takeoverWithin = 15 * time.Second
	// rampRoute is route up: matching backends, every request mirrored,
	// and the ramp.
	rampRoute = "    legacy: legacy\n    new: new\n    mirror: 100\n    sticky: header:X-User-Id\n" +
		"    compare: {ignore_headers: [X-Backend]}\n" +
		"    ramp: {steps: [10, 25, 50, 100], hold: 2s, min_compared: 200, max_diff_rate: 0.05, max_error_rate: 0.05, max_latency_ratio: 100}"
)

// rampSteps are rampRoute's ramp steps.
var rampSteps = []float64{10, 25, 50, 100}

// rampBackend answers the same JSON whatever the side (so every comparison
// matches and the gates pass) and names itself in X-Backend, which the
// route does not compare.
func rampBackend(t *testing.T, name string) string {
	return startLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend", name)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path": %q, "ok": true}`, r.URL.Path)
	}))
}

// rampLoad sends GET /item/... to each instance at its own rate (changed
// live; 0 pauses it), sticky keys cycling over 1000 users, bounded in time
// and count, and counts every answer that is not a backend's.
type rampLoad struct {
	cs           []*child
	period       []atomic.Int64 // ns between two requests to instance i; 0: paused
	busy         []sync.Mutex   // held while a request to instance i is in flight
	sent, failed atomic.Int64
	mu           sync.Mutex
	firstFail    string
	stop         chan struct{}
	once         sync.Once
	wg           sync.WaitGroup
}

func startRampLoad(cs []*child, perSec float64, bound time.Duration) *rampLoad {
	l := &rampLoad{cs: cs, period: make([]atomic.Int64, len(cs)), busy: make([]sync.Mutex, len(cs)), stop: make(chan struct{})}
	deadline := time.Now().Add(bound)
	for i := range cs {
		l.rate(i, perSec)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; n < 5000 && time.Now().Before(deadline); {
				select {
				case <-l.stop:
					return
				default:
				}
				p := time.Duration(l.period[i].Load())
				if p == 0 {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				next := time.Now().Add(p)
				l.busy[i].Lock()
				if l.period[i].Load() != 0 {
					st, by, err := served(cs[i].s.addr, fmt.Sprintf("/item/%d/%d", i, n), fmt.Sprintf("user-%d", (n*7+i)%1000), "")
					l.sent.Add(1)
					if err != nil || st != 200 || (by != "legacy" && by != "new") {
						l.failed.Add(1)
						l.mu.Lock()
						if l.firstFail == "" {
							l.firstFail = fmt.Sprintf("request %d through instance %d: status %d, backend %q, %v", n, i, st, by, err)
						}
						l.mu.Unlock()
					}
					n++
				}
				l.busy[i].Unlock()
				time.Sleep(time.Until(next))
			}
		}()
	}
	return l
}

// rate sets instance i's request rate.
func (l *rampLoad) rate(i int, perSec float64) {
	l.period[i].Store(int64(float64(time.Second) / perSec))
}

// pause stops sending to instance i and returns once no request to it is
// in flight.
func (l *rampLoad) pause(i int) {
	l.period[i].Store(0)
	l.busy[i].Lock()
	l.busy[i].Unlock() //nolint:staticcheck // waits for the request in flight
}

func (l *rampLoad) close() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// metricSample is one scrape of an instance's /metrics: the rules version
// its data plane had in force and the comparisons it had made, read at
// some moment between start and end.
type metricSample struct {
	start, end time.Time
	applied    int64
	compared   int64
}

// rampPoller scrapes every instance's /metrics every 100 ms (skipping those
// switched off: stopped or killed), with timestamps.
type rampPoller struct {
	cs      []*child
	off     []atomic.Bool
	dead    []atomic.Bool // killed: its last sample is its final count
	hc      *http.Client
	mu      sync.Mutex
	samples [][]metricSample
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func startRampPoller(cs []*child, bound time.Duration) *rampPoller {
	p := &rampPoller{cs: cs, off: make([]atomic.Bool, len(cs)), dead: make([]atomic.Bool, len(cs)),
		hc: &http.Client{Timeout: time.Second}, samples: make([][]metricSample, len(cs)),
		stop: make(chan struct{}), done: make(chan struct{})}
	deadline := time.Now().Add(bound)
	go func() {
		defer close(p.done)
		for time.Now().Before(deadline) {
			for i := range cs {
				if !p.off[i].Load() {
					p.scrape(i)
				}
			}
			select {
			case <-p.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return p
}

// scrape records one sample of instance i; false when it did not answer.
func (p *rampPoller) scrape(i int) (metricSample, bool) {
	start := time.Now()
	m, err := readMetrics(p.hc, p.cs[i].s.admin)
	if err != nil {
		return metricSample{}, false
	}
	s := metricSample{start: start, end: time.Now(), applied: int64(m["tandem_rules_applied_version"]),
		compared: metricSum(m, `tandem_compare_total{route="up",`)}
	p.mu.Lock()
	p.samples[i] = append(p.samples[i], s)
	p.mu.Unlock()
	return s, true
}

func (p *rampPoller) close() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
}

func (p *rampPoller) of(i int) []metricSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]metricSample(nil), p.samples[i]...)
}

// comparedAtMost is an upper bound of instance i's comparisons at t: the
// first sample begun at or after t (or, killed, its final one); false when
// there is none.
func (p *rampPoller) comparedAtMost(i int, t time.Time) (int64, bool) {
	ss := p.of(i)
	for _, s := range ss {
		if !s.start.Before(t) {
			return s.compared, true
		}
	}
	if p.dead[i].Load() && len(ss) > 0 {
		return ss[len(ss)-1].compared, true
	}
	return 0, false
}

// comparedAtLeast is a lower bound of instance i's comparisons at t: the
// last sample ended at or before t (0 before the first).
func (p *rampPoller) comparedAtLeast(i int, t time.Time) int64 {
	var n int64
	for _, s := range p.of(i) {
		if !s.end.After(t) && s.compared > n {
			n = s.compared
		}
	}
	return n
}

// fleetRampView is a route's ramp as GET /api/v1/routes shows it.
type fleetRampView struct {
	ServeNew float64 `json:"serve_new"`
	Ramp     *struct {
		Driver      string    `json:"driver"`
		StepSince   time.Time `json:"step_since"`
		HeldSeconds float64   `json:"held_seconds"`
		State       string    `json:"state"`
		Last        *struct {
			Action      string  `json:"action"`
			FromPercent float64 `json:"from_percent"`
			Reason      string  `json:"reason"`
		} `json:"last_decision"`
		Gates []struct {
			Name    string `json:"name"`
			Samples int64  `json:"samples"`
		} `json:"gates"`
	} `json:"ramp"`
}

func rampOf(t *testing.T, c *child, name string) fleetRampView {
	t.Helper()
	var out struct{ Routes []fleetRampView }
	c.getJSON("/api/v1/routes", &out)
	if len(out.Routes) != 1 || out.Routes[0].Ramp == nil {
		t.Fatalf("GET /api/v1/routes through %s: %+v, want route up with a ramp", name, out.Routes)
	}
	return out.Routes[0]
}

func (v fleetRampView) reason() string {
	if v.Ramp.Last == nil {
		return ""
	}
	return v.Ramp.Last.Reason
}

func (v fleetRampView) samples(gate string) int64 {
	for _, g := range v.Ramp.Gates {
		if g.Name == gate {
			return g.Samples
		}
	}
	return 0
}

// rampEvents are route up's ramp_* events, oldest first.
func rampEvents(c *child) []rules.Event {
	var out []rules.Event
	for _, e := range c.events() {
		if e.Route == "up" && strings.HasPrefix(e.Kind, "ramp_") {
			out = append(out, e)
		}
	}
	return out
}

// awaitRampEvents polls the ramp events through c until cond holds (at
// most d) and returns them.
func awaitRampEvents(t *testing.T, c *child, d time.Duration, what string, cond func([]rules.Event) bool) []rules.Event {
	t.Helper()
	var evs []rules.Event
	if !pollUntil(d, func() bool { evs = rampEvents(c); return cond(evs) }) {
		t.Fatalf("%s: not within %v; ramp events: %s", what, d, eventList(evs))
	}
	return evs
}

func eventList(evs []rules.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s %s v%d→v%d by %s: %v→%v %q", e.Time.Format("15:04:05.000"), e.Kind, e.OldVersion, e.NewVersion,
			e.Instance, e.Details["from_percent"], e.Details["to_percent"], e.Reason)
	}
	return b.String()
}

func steps(evs []rules.Event) []rules.Event {
	var out []rules.Event
	for _, e := range evs {
		if e.Kind == "ramp_step" {
			out = append(out, e)
		}
	}
	return out
}

func detail(e rules.Event, k string) float64 {
	v, _ := e.Details[k].(float64)
	return v
}

// registryRow reads an instance's row of the fleet's registry (pgrules'
// rules_instances) from the database: the version it says it applied and
// when it last wrote the row, by the database's clock.
func registryRow(t *testing.T, db, name string) (applied int64, lastSeen time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT applied_version, last_seen FROM rules_instances WHERE name = $1", name).Scan(&applied, &lastSeen); err != nil {
		t.Fatalf("registry row of %s: %v", name, err)
	}
	return applied, lastSeen
}

// frozen is an instance that wrote no registry row from since to until
// (stopped; dead: until is zero): its last row said applied, at lastSeen.
// While that row is younger than liveWithin the instance counts as live
// and holds back any step from a version after applied.
type frozen struct {
	name         string
	idx          int
	since, until time.Time
	applied      int64
	lastSeen     time.Time
}

// during reports whether t is in the frozen stretch.
func (f frozen) during(t time.Time) bool {
	return t.After(f.since) && (f.until.IsZero() || t.Before(f.until))
}

// within reports whether the instance was stopped at some time in
// [from, to): its metrics could not be sampled then.
func (f frozen) within(from, to time.Time) bool {
	return f.since.Before(to) && (f.until.IsZero() || f.until.After(from))
}

// droppedOut is when the registry stopped counting the instance.
func (f frozen) droppedOut() time.Time { return f.lastSeen.Add(liveWithin) }

// notLive reports whether the registry did not count the instance at t.
func (f frozen) notLive(t time.Time) bool { return f.during(t) && !t.Before(f.droppedOut()) }

// rampWaitReason is how the driver says an advance waits for an instance
// that has not applied the version the step is computed from.
const rampWaitReason = "not every live instance has applied rules version "

// A ramp over three instances a, b, c (steps 10, 25, 50, 100; hold 2 s;
// min_compared 200), load spread over them:
//   - every instance names the same driver;
//   - each step once in the audit log, in order, none skipped, then
//     ramp_done once; every step's gates counted at least min_compared
//     comparisons while no instance's own metrics show that many during
//     the step (the fleet's totals pass the gates);
//   - one instance stopped (SIGSTOP) just before a step, so it lags that
//     step's version: the driver says it waits for it, and the next step
//     comes only after it is resumed and applied the version, or after it
//     dropped out of the live instances (which of the two is asserted from
//     the events' times and its registry row);
//   - kill -9 of the driver right after a step: a survivor drives within
//     15 s, continues the hold from the step's start in the database (not
//     from the takeover), and takes the next step, each once;
//   - no step while a live instance had not applied the version it was
//     computed from (the instances' applied versions sampled with
//     timestamps; the stopped and the dead one by their registry rows);
//   - `tandem status` (the binary) on a survivor shows the driver and the
//     live instances.
func TestFleetRampAcrossInstances(t *testing.T) {
	pg := pgtest.Start(t)
	backends := [][2]string{{"legacy", rampBackend(t, "legacy")}, {"new", rampBackend(t, "new")}}
	db := pg.NewDatabase()
	names := []string{"a", "b", "c"}
	var cs []*child
	for _, n := range names {
		cs = append(cs, startChild(t, newFleetSetup(t, db, n, backends, rampRoute)))
	}
	index := map[string]int{"a": 0, "b": 1, "c": 2}
	began := time.Now()
	defer func() { t.Logf("the scenario took %v", time.Since(began).Round(100*time.Millisecond)) }()

	poll := startRampPoller(cs, 100*time.Second)
	defer poll.close()
	load := startRampLoad(cs, 15, 100*time.Second)
	defer load.close()

	// One driver, the same on every instance.
	sameDriver := func(among []string) (string, bool) {
		driver := ""
		for i, n := range among {
			d := rampOf(t, cs[index[n]], n).Ramp.Driver
			if d == "" || (i > 0 && d != driver) {
				return d, false
			}
			driver = d
		}
		return driver, true
	}
	var driver string
	if !pollUntil(10*time.Second, func() bool { var ok bool; driver, ok = sameDriver(names); return ok }) {
		t.Fatalf("the instances do not name one ramp driver within 10 s (last read %q)", driver)
	}
	if _, ok := index[driver]; !ok {
		t.Fatalf("ramp.driver %q is not an instance of the fleet", driver)
	}
	var others []string
	for _, n := range names {
		if n != driver {
			others = append(others, n)
		}
	}
	// x is stopped for a while, y keeps going all along (the events are
	// read through it); d is the driver, killed later.
	dn, xn, yn := driver, others[0], others[1]
	d, x, y := cs[index[dn]], cs[index[xn]], cs[index[yn]]
	t.Logf("%s drives the ramp (every instance says so); %s will be stopped, %s watches", dn, xn, yn)

	// The first step, by the driver.
	awaitRampEvents(t, y, 25*time.Second, "the first ramp step", func(evs []rules.Event) bool { return len(steps(evs)) >= 1 })
	if got, ok := sameDriver(names); !ok || got != dn {
		t.Fatalf("after the first step the instances name driver %q, want %s on all three", got, dn)
	}

	// Just before the second step (the driver's gates, judged at 10%, have
	// most of the comparisons they need) and just after a heartbeat of x,
	// SIGSTOP x: it has applied the first step's version, not the
	// second's, and its registry row goes stale only liveWithin after that
	// heartbeat. The second step may be taken; the third must wait until x
	// is back and has applied the second, or has dropped out.
	if !pollUntil(15*time.Second, func() bool {
		v := rampOf(t, d, dn)
		return v.ServeNew == rampSteps[0] && v.Ramp.Last != nil && v.Ramp.Last.Action == "wait" &&
			v.Ramp.Last.FromPercent == rampSteps[0] && v.samples("diff_rate") >= rampMinCompared*4/5
	}) {
		t.Fatalf("the driver's gates at %v%% did not reach %d comparisons in 15 s: %+v", rampSteps[0], rampMinCompared*4/5, rampOf(t, d, dn).Ramp)
	}
	_, beat := registryRow(t, db, xn)
	if !pollUntil(3*time.Second, func() bool { _, seen := registryRow(t, db, xn); return seen.After(beat) }) {
		t.Fatalf("%s wrote no registry row in 3 s", xn)
	}
	load.pause(index[xn])
	poll.off[index[xn]].Store(true)
	if err := x.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	// x's share goes to the two others (each still below min_compared
	// within a step).
	load.rate(index[dn], 25)
	load.rate(index[yn], 25)

	var xApplied, waitVersion int64
	var xSeen time.Time
	waited := pollUntil(15*time.Second, func() bool {
		r := rampOf(t, d, dn).reason()
		i := strings.Index(r, rampWaitReason)
		if i < 0 {
			return false
		}
		fmt.Sscanf(r[i+len(rampWaitReason):], "%d", &waitVersion)
		xApplied, xSeen = registryRow(t, db, xn)
		return waitVersion > xApplied // the wait is for x, not a moment's lag of another
	})
	xApplied, xSeen = registryRow(t, db, xn)
	if err := x.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumedAt := time.Now()
	poll.off[index[xn]].Store(false)
	for i := range cs {
		load.rate(i, 10)
	}
	xFrozen := frozen{name: xn, idx: index[xn], since: stoppedAt, until: resumedAt, applied: xApplied, lastSeen: xSeen}
	t.Logf("%s stopped %v (its registry row: applied v%d, last seen %v before the stop); the driver said it waits for v%d: %v",
		xn, resumedAt.Sub(stoppedAt).Round(time.Millisecond), xApplied, stoppedAt.Sub(xSeen).Round(time.Millisecond), waitVersion, waited)

	// The first step computed from a version x had not applied.
	var held rules.Event
	evs := awaitRampEvents(t, y, 20*time.Second, fmt.Sprintf("a step from a version after v%d (the one %s had applied)", xApplied, xn),
		func(evs []rules.Event) bool {
			for _, e := range steps(evs) {
				if e.OldVersion > xApplied {
					held = e
					return true
				}
			}
			return false
		})
	switch {
	case held.Time.After(resumedAt):
		if !waited {
			t.Errorf("the step from v%d came after %s was resumed, but the driver never said it waited for it", held.OldVersion, xn)
		}
		t.Logf("held back until %s was resumed: the step from v%d came %v after SIGCONT", xn, held.OldVersion, held.Time.Sub(resumedAt).Round(time.Millisecond))
	case !held.Time.Before(xFrozen.droppedOut().Add(-100 * time.Millisecond)):
		t.Logf("held back until %s dropped out of the live instances: the step from v%d came %v after its last registry row",
			xn, held.OldVersion, held.Time.Sub(xSeen).Round(time.Millisecond))
	default:
		t.Fatalf("the step from v%d came at %s while %s was stopped with v%d applied and still live (last seen %s, live until %s):%s",
			held.OldVersion, held.Time.Format("15:04:05.000"), xn, xApplied, xSeen.Format("15:04:05.000"),
			xFrozen.droppedOut().Format("15:04:05.000"), eventList(evs))
	}

	// kill -9 of the driver right after that step; the load goes on
	// through the survivors, at a rate that keeps each below min_compared
	// for as long as a takeover may take.
	if got, ok := sameDriver(names); !ok || got != dn {
		t.Fatalf("before the kill the instances name driver %q, want %s on all three", got, dn)
	}
	load.pause(index[dn])
	// d's final count: the comparisons of its last requests are done.
	var last int64 = -1
	pollUntil(3*time.Second, func() bool {
		s, ok := poll.scrape(index[dn])
		stable := ok && s.compared == last
		last = s.compared
		return stable
	})
	poll.off[index[dn]].Store(true)
	poll.dead[index[dn]].Store(true)
	d.kill9()
	killedAt := time.Now()
	load.rate(index[xn], 8)
	load.rate(index[yn], 8)
	t.Logf("%s killed %v after the step from v%d", dn, killedAt.Sub(held.Time).Round(time.Millisecond), held.OldVersion)
	survivors := []string{xn, yn}
	sort.Strings(survivors)

	var newDriver string
	var changedAt time.Time
	if !pollUntil(takeoverWithin+2*time.Second, func() bool {
		for _, n := range survivors {
			if dr := rampOf(t, cs[index[n]], n).Ramp.Driver; dr != "" && dr != dn {
				changedAt = time.Now()
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no survivor names another driver %v after the kill of %s", takeoverWithin+2*time.Second, dn)
	}
	took := changedAt.Sub(killedAt)
	if took > takeoverWithin {
		t.Errorf("another instance drives %v after the kill -9 of the driver, want within %v", took.Round(time.Millisecond), takeoverWithin)
	}
	if !pollUntil(3*time.Second, func() bool { var ok bool; newDriver, ok = sameDriver(survivors); return ok && newDriver != dn }) {
		t.Fatalf("the survivors %v do not agree on the new driver (last read %q)", survivors, newDriver)
	}
	t.Logf("%s drives %v after the kill -9 of %s (every survivor says so)", newDriver, took.Round(time.Millisecond), dn)
	load.rate(index[xn], 20)
	load.rate(index[yn], 20)
	nd := cs[index[newDriver]]

	// The hold continues from the step's start in the database.
	asked := time.Now()
	v := rampOf(t, nd, newDriver)
	if v.ServeNew != detail(held, "to_percent") {
		t.Logf("the new driver had already stepped (to %v%%) when asked; its hold is checked on the event", v.ServeNew)
	} else if off := v.Ramp.StepSince.Sub(held.Time); off < -1500*time.Millisecond || off > 1500*time.Millisecond {
		t.Errorf("the new driver's ramp.step_since is %s, want the step's start (%s, the event of the step from v%d)",
			v.Ramp.StepSince.Format("15:04:05.000"), held.Time.Format("15:04:05.000"), held.OldVersion)
	}
	if want := asked.Sub(held.Time).Seconds() - 1.5; v.ServeNew == detail(held, "to_percent") && v.Ramp.HeldSeconds < want {
		t.Errorf("the new driver's held_seconds %.1f, want at least %.1f (the hold counts from the step's start, not the takeover)", v.Ramp.HeldSeconds, want)
	}

	// The ramp continues, by the new driver: the next step (or done).
	var next rules.Event
	awaitRampEvents(t, y, 15*time.Second, "the next ramp event after the takeover", func(evs []rules.Event) bool {
		for _, e := range evs {
			if e.Time.After(held.Time) && e.Instance != dn {
				next = e
				return true
			}
		}
		return false
	})
	if next.Instance != newDriver {
		t.Errorf("the next ramp event after the takeover was written by %q, want the new driver %s", next.Instance, newDriver)
	}
	if h, want := detail(next, "held_seconds"), next.Time.Sub(held.Time).Seconds()-1.5; h < want {
		t.Errorf("the %s after the takeover says held_seconds %.1f, want about %.1f (since the step's start; a restarted hold would be about %.1f)",
			next.Kind, h, next.Time.Sub(held.Time).Seconds(), next.Time.Sub(changedAt).Seconds())
	}
	t.Logf("the %s after the takeover came %v after the driver change, held %.1f s", next.Kind, next.Time.Sub(changedAt).Round(time.Millisecond), detail(next, "held_seconds"))

	// To the end: ramp_done.
	evs = awaitRampEvents(t, y, 25*time.Second, "ramp_done", func(evs []rules.Event) bool {
		for _, e := range evs {
			if e.Kind == "ramp_done" {
				return true
			}
		}
		return false
	})
	load.close()
	poll.close()
	if n := load.failed.Load(); n != 0 {
		t.Errorf("%d of %d client requests failed (first: %s)", n, load.sent.Load(), load.firstFail)
	}
	t.Logf("ramp events:%s", eventList(evs))

	// Each step once, in order, none skipped, then done once; written by
	// the driver of the time.
	dFrozen := frozen{name: dn, idx: index[dn], since: killedAt}
	dFrozen.applied, dFrozen.lastSeen = registryRow(t, db, dn)
	st := steps(evs)
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
	}
	if want := "ramp_step ramp_step ramp_step ramp_step ramp_done"; strings.Join(kinds, " ") != want {
		t.Fatalf("ramp events %v, want %s (each step once, then done):%s", kinds, want, eventList(evs))
	}
	prevTime, prevPct := time.Time{}, 0.0
	for k, e := range st {
		if e.NewVersion != int64(k+2) || e.OldVersion != int64(k+1) {
			t.Errorf("step %d: v%d→v%d, want v%d→v%d (one version per step, nothing between)", k+1, e.OldVersion, e.NewVersion, k+1, k+2)
		}
		if detail(e, "from_percent") != prevPct || detail(e, "to_percent") != rampSteps[k] {
			t.Errorf("step %d: %v%%→%v%%, want %v%%→%v%%", k+1, detail(e, "from_percent"), detail(e, "to_percent"), prevPct, rampSteps[k])
		}
		if !e.Time.After(prevTime) {
			t.Errorf("step %d at %s is not after the one before", k+1, e.Time.Format("15:04:05.000"))
		}
		wantBy := dn
		if e.Time.After(killedAt) {
			wantBy = newDriver
		}
		if e.Instance != wantBy || e.Actor != "ramp" {
			t.Errorf("step %d written by %s (actor %s), want %s (actor ramp)", k+1, e.Instance, e.Actor, wantBy)
		}
		// The fleet's comparisons pass the gate, no instance's alone.
		if c := detail(e, "compared"); c < rampMinCompared {
			t.Errorf("step %d: the gates counted %v comparisons, below min_compared %d", k+1, c, rampMinCompared)
		}
		var per []string
		for i, n := range names {
			hi, ok := poll.comparedAtMost(i, e.Time)
			if !ok {
				t.Errorf("step %d: no sample of %s's metrics after it", k+1, n)
				continue
			}
			alone := hi - poll.comparedAtLeast(i, prevTime)
			per = append(per, fmt.Sprintf("%s ≤%d", n, alone))
			if alone >= rampMinCompared {
				t.Errorf("step %d: %s made up to %d comparisons during the step (its metrics), enough for min_compared %d alone: the scenario does not show the fleet's totals gate",
					k+1, n, alone, rampMinCompared)
			}
		}
		t.Logf("step %d to %v%%: the fleet's gates counted %v comparisons; each instance's during the step: %s", k+1, rampSteps[k], detail(e, "compared"), strings.Join(per, ", "))
		prevTime, prevPct = e.Time, rampSteps[k]
	}
	if done := evs[len(evs)-1]; done.Instance != newDriver {
		t.Errorf("ramp_done written by %s, want the new driver %s", done.Instance, newDriver)
	}

	// No step before every live instance applied the version it was
	// computed from. A lag would be a sample of an instance's metrics,
	// taken after the step began, with an older version in force (the
	// applied version only grows); and, by the registry, a stopped or dead
	// instance still live with an older version at the step's time.
	frozenOnes := []frozen{xFrozen, dFrozen}
	for k, e := range st[1:] {
		for _, f := range frozenOnes {
			if f.during(e.Time) && e.OldVersion > f.applied && !f.notLive(e.Time) {
				t.Errorf("step %d (from v%d, at %s) while %s was live with v%d applied (last seen %s)",
					k+2, e.OldVersion, e.Time.Format("15:04:05.000"), f.name, f.applied, f.lastSeen.Format("15:04:05.000"))
			}
		}
		for i, n := range names {
			skip := false
			for _, f := range frozenOnes {
				skip = skip || (f.idx == i && f.notLive(e.Time))
			}
			if skip {
				continue
			}
			checked := false
			for _, s := range poll.of(i) {
				if s.start.Before(e.Time) {
					continue
				}
				checked = checked || s.start.Before(e.Time.Add(3*time.Second))
				if s.applied < e.OldVersion {
					t.Errorf("step %d (from v%d) at %s, but %s still had v%d in force at %s", k+2, e.OldVersion,
						e.Time.Format("15:04:05.000"), n, s.applied, s.start.Format("15:04:05.000"))
					break
				}
			}
			// No sample to check: the instance was killed, or stopped in
			// the 3 s after the step (under load the stop may come just
			// after a step instead of just before it).
			if !checked && !(i == index[dn] && e.Time.After(killedAt)) && !(i == index[xn] && xFrozen.within(e.Time, e.Time.Add(3*time.Second))) {
				t.Errorf("step %d: no sample of %s's applied version within 3 s after it", k+2, n)
			}
		}
	}

	// tandem status through the binary, on a survivor: the driver, and the
	// live instances (the dead one gone once its row is older than
	// liveWithin).
	dir := t.TempDir()
	env := userEnv("TANDEM_ADMIN=http://" + y.s.admin)
	var out string
	instLine := func(n string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^  ` + n + ` +rules v5 +seen \d+s ago`)
	}
	ok := pollUntil(liveWithin+3*time.Second, func() bool {
		code, o, errs := runUser(t, dir, env, "status", "up", "-config", y.s.cfgPath)
		if code != 0 {
			t.Fatalf("tandem status: exit %d, stderr %q", code, errs)
		}
		out = o
		return strings.Contains(out, "\n  driver: "+newDriver+"\n") && strings.Contains(out, "\ninstances:\n") &&
			instLine(xn).MatchString(out) && instLine(yn).MatchString(out) && !regexp.MustCompile(`(?m)^  `+dn+` +rules v`).MatchString(out)
	})
	t.Logf("tandem status up:\n%s", out)
	if !ok {
		t.Errorf("tandem status does not show driver: %s and instances %s and %s (rules v5) without %s", newDriver, xn, yn, dn)
	}
	code, o, errs := runUser(t, dir, env, "status", "up", "-json", "-config", y.s.cfgPath)
	var snap struct {
		Instance string `json:"instance"`
		Routes   []struct {
			Ramp *struct {
				Driver string `json:"driver"`
				State  string `json:"state"`
			} `json:"ramp"`
		} `json:"routes"`
		Instances []struct {
			Name           string `json:"name"`
			AppliedVersion int64  `json:"applied_version"`
		} `json:"instances"`
	}
	if err := json.Unmarshal([]byte(o), &snap); code != 0 || err != nil {
		t.Fatalf("tandem status -json: exit %d, stderr %q, %v\n%s", code, errs, err, o)
	}
	var listed []string
	for _, in := range snap.Instances {
		listed = append(listed, fmt.Sprintf("%s v%d", in.Name, in.AppliedVersion))
	}
	if len(snap.Routes) != 1 || snap.Routes[0].Ramp == nil || snap.Routes[0].Ramp.Driver != newDriver || snap.Routes[0].Ramp.State != "done" ||
		snap.Instance != yn || strings.Join(listed, ", ") != fmt.Sprintf("%s v5, %s v5", survivors[0], survivors[1]) {
		t.Errorf("tandem status -json: instance %q, routes %+v, instances %v; want %s, up's ramp done and driven by %s, instances %v at v5",
			snap.Instance, snap.Routes, listed, yn, newDriver, survivors)
	}
}
