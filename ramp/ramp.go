package ramp

import (
	"log/slog"
	"sync"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/rules"
)

// RulesStore is what the ramp needs of the rules store (rulestore.State,
// or any store behind the same contract): the rules in force, the audit log
// (a route rolled back before a restart starts halted), a versioned change
// and an audit append.
type RulesStore interface {
	Current() rules.Rules
	Events(since time.Time, limit int) ([]rules.Event, error)
	Apply(ifMatch int64, ev rules.Event, mutate func(*rules.Rules) error) (rules.Rules, bool, error)
	Record(rules.Event) error
}

// Options are a Controller's parts. Only State is required.
type Options struct {
	State RulesStore
	// BreakerOpen reports whether a backend's breaker is open now. Nil:
	// never.
	BreakerOpen func(backend string) bool
	// Noise classifies the windows' comparisons when the gates are
	// evaluated (the app's compare.Learner). Nil: every difference counts
	// as a real mismatch.
	Noise compare.NoiseModel
	// ServedNew returns, for a route, the requests served by new so far and
	// how many of them failed (the data plane's cumulative counters), so
	// that the error gate counts every request sent to new, also those not
	// mirrored, which no comparison reports. Nil: the error gate counts the
	// requests of the observed exchanges only (mirrored ones).
	ServedNew func(route string) (requests, failed int64)
	Log       *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Fleet, when set, makes the ramps fleet-wide (see Fleet): the gates
	// read the merged windows of every live instance, and only the
	// instance holding a route's lease applies its decisions, fenced. Nil:
	// this instance alone drives its ramps from its own traffic.
	Fleet Fleet
}

// Controller drives every route that has a ramp. Safe for concurrent use.
type Controller struct {
	state       RulesStore
	breakerOpen func(backend string) bool
	noise       compare.NoiseModel
	servedNew   func(string) (int64, int64)
	log         *slog.Logger
	now         func() time.Time
	fleet       Fleet

	mu       sync.Mutex
	keys     map[string]keyCache // fleet: the step key of each route
	trackers map[string]*Tracker
	created  time.Time // when New ran; no window reaches before it
	last     map[string]Decision
}

// New returns a controller with o's parts.
func New(o Options) *Controller {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Controller{
		state:       o.State,
		breakerOpen: o.BreakerOpen,
		noise:       o.Noise,
		servedNew:   o.ServedNew,
		log:         o.Log,
		now:         o.Now,
		fleet:       o.Fleet,
		keys:        map[string]keyCache{},
		trackers:    map[string]*Tracker{},
		last:        map[string]Decision{},
		created:     o.Now(),
	}
}

// trackerGrace is how far back a route's first window reaches: further
// than any request a ramp should count may have been in flight.
const trackerGrace = time.Minute

// tracker returns the route's tracker, creating it on first use. A route that
// was rolled back before a restart starts halted.
func (c *Controller) tracker(r *rules.Route) *Tracker { return c.trackerFrom(r, time.Time{}) }

// trackerFrom is tracker, with a new tracker's window starting at from when
// that is before now: the request that makes the ramp's first observation
// arrived before its tracker existed, and must count.
func (c *Controller) trackerFrom(r *rules.Route, from time.Time) *Tracker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.trackers[r.Name]
	if t == nil {
		// A new tracker's window reaches back trackerGrace (not before the
		// Controller existed): the first tick may create it while the
		// route's first requests are still in flight, and their
		// comparisons, which finish later, must count.
		now := c.now()
		if back := now.Add(-trackerGrace); back.After(c.created) {
			now = back
		} else if c.created.Before(now) {
			now = c.created
		}
		if !from.IsZero() && from.Before(now) {
			now = from
		}
		st := NewProgress(now, r.Ramp, r.ServeNew)
		// With a Fleet the first tick anchors the tracker (reading the
		// audit log there, never on the request path).
		if c.fleet == nil {
			if evs, err := c.state.Events(time.Time{}, 100000); err == nil {
				st.Halted = Halted(evs, r.Name, r.ServeNew)
			}
		}
		t = NewTracker(st, r.Name, c.noise)
		c.trackers[r.Name] = t
	}
	return t
}

func (c *Controller) rampedRoute(name string) *rules.Route {
	cur := c.state.Current()
	for i := range cur.Routes {
		if cur.Routes[i].Name == name && cur.Routes[i].Ramp != nil && cur.Routes[i].New != "" {
			return &cur.Routes[i]
		}
	}
	return nil
}

// Observation is one finished comparison, as the ramp needs it.
type Observation struct {
	Route string
	Start time.Time // when the request arrived
	// Compared: the comparison produced a verdict. Signature: its
	// differences (empty: a match), classified when the gates are
	// evaluated. Mismatch: it was a mismatch as classified when it was made
	// (kept for the record only, see Stats.MismatchedWhenCompared).
	Compared  bool
	Signature compare.Signature
	Mismatch  bool
	// ServedByNew: new served the client (legacy got the shadow copy).
	ServedByNew bool
	// LegacyLatency and NewLatency are times to response headers; zero
	// when that side failed.
	LegacyLatency, NewLatency time.Duration
	// NewFailed: the new backend failed (transport error or 5xx).
	NewFailed bool
	LegacyOK  bool
}

// Observe feeds one finished exchange into its route's window, if the route
// ramps. It makes the Controller an observer of the data plane.
func (c *Controller) Observe(ex *exchange.Exchange) {
	c.Add(Observation{
		Route:         ex.Route,
		Start:         ex.At,
		Compared:      ex.Compared(),
		Signature:     ex.Result.Signature(),
		Mismatch:      ex.Mismatch(),
		ServedByNew:   ex.ServedBy == "new",
		LegacyLatency: ex.LegacyLatency,
		NewLatency:    ex.NewLatency,
		NewFailed:     ex.NewFailed(),
		LegacyOK:      ex.LegacyOK(),
	})
}

// Add feeds one comparison into its route's window, if the route ramps.
func (c *Controller) Add(o Observation) {
	r := c.rampedRoute(o.Route)
	if r == nil {
		return
	}
	w := c.trackerFrom(r, o.Start).Window()
	if o.Compared {
		w.AddCompare(o.Start, o.Signature, o.Mismatch)
	}
	if o.ServedByNew && c.servedNew != nil {
		w.AddNewLatency(o.Start, o.NewLatency) // counted by ServedNew
	} else {
		w.AddNew(o.Start, o.NewLatency, o.NewFailed)
	}
	if o.LegacyOK {
		w.AddLegacy(o.Start, o.LegacyLatency)
	}
}

// BreakerOpened tells the ramps of routes whose new backend is backend.
func (c *Controller) BreakerOpened(backend string, at time.Time) {
	cur := c.state.Current()
	for i := range cur.Routes {
		r := &cur.Routes[i]
		if r.Ramp != nil && r.New == backend {
			c.tracker(r).Window().MarkBreakerOpen(at)
		}
	}
}

// Tick evaluates every ramped route once and applies the decisions.
func (c *Controller) Tick() {
	now := c.now()
	cur := c.state.Current()
	for i := range cur.Routes {
		r := &cur.Routes[i]
		if r.Ramp == nil || r.New == "" {
			continue
		}
		if c.fleet != nil {
			c.tickFleet(now, cur, r)
			continue
		}
		t := c.tracker(r)
		if c.servedNew != nil {
			t.Window().SetServed(c.servedNew(r.Name))
		}
		d := t.Decide(now, r.Ramp, r.ServeNew, c.breakerOpen != nil && c.breakerOpen(r.New))
		c.mu.Lock()
		c.last[r.Name] = d
		c.mu.Unlock()
		if d.Action == ActionWait {
			continue
		}
		_, changed, err := Apply(c.state, r.Name, d)
		if err != nil {
			c.log.Warn("ramp decision not applied", "route", r.Name, "action", string(d.Action), "err", err)
			continue
		}
		c.log.Info("ramp decision", "route", r.Name, "action", string(d.Action), "from", d.FromPercent,
			"to", d.ToPercent, "gate", d.Gate, "reason", d.Reason, "changed", changed)
	}
}

// Run ticks every interval until stop is closed.
func (c *Controller) Run(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			c.Tick()
		}
	}
}

// Status is a route's ramp as GET /api/v1/routes shows it.
type Status struct {
	Steps       []float64 `json:"steps"`
	Current     float64   `json:"current"`
	NextStep    float64   `json:"next_step,omitempty"`
	StepSince   time.Time `json:"step_since"`
	HeldSeconds float64   `json:"held_seconds"`
	HoldSeconds float64   `json:"hold_seconds"`
	Halted      bool      `json:"halted"`
	Done        bool      `json:"done"`
	Last        *Decision `json:"last_decision,omitempty"`
	// Driver is the instance that drives the ramp (holds its lease), with
	// a Fleet; empty without one, or while no instance holds the lease.
	Driver string `json:"driver,omitempty"`
	// State is "waiting" (at 0%, not started), "holding" (a gate holds,
	// or the hold has not elapsed), "advancing" (the last decision was a
	// step), "rolled_back", "halted" or "done".
	State string `json:"state"`
	// Gates are the last decision's gates, each with its value, bound,
	// limit, samples and state (see Gate); empty before the first
	// evaluation.
	Gates []Gate `json:"gates"`
}

// Status returns the ramp status of a route, or nil when it does not ramp.
func (c *Controller) Status(r *rules.Route) *Status {
	if r.Ramp == nil || r.New == "" {
		return nil
	}
	st := c.tracker(r).State()
	s := &Status{
		Steps:       r.Ramp.Steps,
		Current:     r.ServeNew,
		StepSince:   st.StepSince,
		HeldSeconds: c.now().Sub(st.StepSince).Seconds(),
		HoldSeconds: r.Ramp.Hold.D().Seconds(),
		Halted:      st.Halted,
		Done:        st.Done,
	}
	if next, ok := r.Ramp.NextStep(r.ServeNew); ok {
		s.NextStep = next
	}
	if c.fleet != nil {
		term, _ := c.fleet.Lead(r.Name)
		s.Driver = term.Driver
	}
	c.mu.Lock()
	if d, ok := c.last[r.Name]; ok {
		s.Last = &d
		s.Gates = d.Gates
	}
	c.mu.Unlock()
	if s.Gates == nil {
		s.Gates = []Gate{}
	}
	s.State = rampState(s)
	return s
}

// Ramp states, as Status.State gives them.
const (
	StateWaiting    = "waiting"
	StateHolding    = "holding"
	StateAdvancing  = "advancing"
	StateRolledBack = "rolled_back"
	StateHalted     = "halted"
	StateDone       = "done"
)

// States is the closed set of ramp states. A state's index is its value in
// the tandem_ramp_state gauge: 0 waiting, 1 holding, 2 advancing,
// 3 rolled_back, 4 halted, 5 done. New states are only ever appended.
var States = [...]string{StateWaiting, StateHolding, StateAdvancing, StateRolledBack, StateHalted, StateDone}

// StateCode returns state's index in States, or -1 for a string that is
// not a ramp state.
func StateCode(state string) int {
	for i, s := range States {
		if s == state {
			return i
		}
	}
	return -1
}

func rampState(s *Status) string {
	switch {
	case s.Done:
		return StateDone
	case s.Halted && rules.Threshold(s.Current) == 0:
		return StateHalted
	case s.Last != nil && s.Last.Action == ActionRollback:
		return StateRolledBack
	case s.Last != nil && s.Last.Action == ActionAdvance:
		return StateAdvancing
	case rules.Threshold(s.Current) == 0:
		return StateWaiting
	}
	return StateHolding
}
