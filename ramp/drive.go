package ramp

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/tandem-proxy/tandem/rules"
)

// keyCache is a route's step key as last derived, for the rules version
// it was derived at: the key is derived again only when the version in
// force changes (or the driver gains the lease), and its start time is
// kept while the key stays the same.
type keyCache struct {
	version int64
	key     StepKey
	since   time.Time // when the step began, on this instance's clock
}

// fleetAnchor is what a Tracker keeps with a Fleet: the step key its
// Progress and Window belong to, and the lease epoch it last drove with.
type fleetAnchor struct {
	keyed bool
	key   StepKey
	epoch int64 // 0: not driving
}

// stepKey returns route's step key at cur and when the step began. fresh
// forces a new derivation (a driver that just gained the lease re-reads).
func (c *Controller) stepKey(now time.Time, cur rules.Rules, r *rules.Route, fresh bool) (StepKey, time.Time, error) {
	c.mu.Lock()
	kc, ok := c.keys[r.Name]
	c.mu.Unlock()
	if ok && !fresh && kc.version == cur.Version && kc.key.Threshold == rules.Threshold(r.ServeNew) {
		return kc.key, kc.since, nil
	}
	key, age, err := c.fleet.StepKey(r.Name, cur)
	if err != nil {
		return StepKey{}, time.Time{}, err
	}
	since := now.Add(-age)
	if ok && kc.key == key {
		since = kc.since // the same step: its start does not jitter
	}
	c.mu.Lock()
	c.keys[r.Name] = keyCache{version: cur.Version, key: key, since: since}
	c.mu.Unlock()
	return key, since, nil
}

// tickFleet evaluates one ramped route with a Fleet: anchor the tracker on
// the step key, publish this instance's window, merge the fleet's, decide,
// and — on the driver only — apply the decision, fenced.
func (c *Controller) tickFleet(now time.Time, cur rules.Rules, r *rules.Route) {
	t := c.tracker(r)
	if c.servedNew != nil {
		t.Window().SetServed(c.servedNew(r.Name))
	}
	term, mine := c.fleet.Lead(r.Name)
	d, key := c.decideFleet(now, cur, r, t, term, mine)
	if !mine {
		if d.Action == ActionDone {
			// The fleet's gates say the ramp is complete: the driver
			// records ramp_done, which changes no rules (no new step key
			// to re-anchor on), so read the audit log until it is there
			// and show the ramp done here too.
			c.learnDone(r, t, key)
		}
		// Every instance shows the fleet's gates; only the driver acts.
		driver := term.Driver
		if driver == "" {
			driver = "no instance (the lease is free)"
		}
		d.Reason = fmt.Sprintf("driven by %s; the fleet's gates say: %s", driver, d.Reason)
		d.Action, d.ToPercent = ActionWait, d.FromPercent
	}
	if d.Action == ActionWait {
		c.setLast(r.Name, d)
		return
	}
	if d.Action == ActionAdvance {
		// A step waits until every live instance has applied the version
		// it is computed from: the windows then describe that version.
		ok, err := c.fleet.AllApplied(cur.Version)
		if err != nil || !ok {
			why := fmt.Sprintf("not every live instance has applied rules version %d", cur.Version)
			if err != nil {
				why = fmt.Sprintf("cannot read which instances applied rules version %d: %v", cur.Version, err)
			}
			d.Reason = fmt.Sprintf("waiting before the step to %s%%: %s (%s)", fmtPercent(d.ToPercent), why, d.Reason)
			d.Action, d.ToPercent = ActionWait, d.FromPercent
			c.setLast(r.Name, d)
			return
		}
	}
	c.setLast(r.Name, d)
	fs := fencedStore{RulesStore: c.state, fleet: c.fleet, term: term, version: cur.Version, key: key}
	_, changed, err := Apply(fs, r.Name, d)
	if err != nil {
		msg := "ramp decision not applied"
		if errors.Is(err, ErrFenced) {
			msg = "ramp decision refused: this instance no longer drives the ramp"
		}
		c.log.Warn(msg, "route", r.Name, "action", string(d.Action), "term", term.Epoch, "err", err)
		return
	}
	t.applied(d)
	c.log.Info("ramp decision", "route", r.Name, "action", string(d.Action), "from", d.FromPercent,
		"to", d.ToPercent, "gate", d.Gate, "reason", d.Reason, "changed", changed, "driver", term.Driver, "term", term.Epoch)
}

func (c *Controller) setLast(route string, d Decision) {
	c.mu.Lock()
	c.last[route] = d
	c.mu.Unlock()
}

// decideFleet is the decision of one route from the fleet's statistics.
func (c *Controller) decideFleet(now time.Time, cur rules.Rules, r *rules.Route, t *Tracker, term Term, mine bool) (Decision, StepKey) {
	wait := func(format string, args ...any) Decision {
		return Decision{Action: ActionWait, FromPercent: r.ServeNew, ToPercent: r.ServeNew, Reason: fmt.Sprintf(format, args...)}
	}
	gained := mine && t.drivingEpoch() != term.Epoch
	key, since, err := c.stepKey(now, cur, r, gained)
	if err != nil {
		return wait("cannot read where the step began in the fleet's rules history: %v", err), key
	}
	if gained || !t.keyedAt(key) {
		// A new step, or this instance has just become the driver: re-read
		// the audit log (a rolled-back ramp stays halted, a finished one
		// finished) before the first decision.
		evs, err := c.state.Events(time.Time{}, 100000)
		if err != nil {
			return wait("cannot read the fleet's audit log: %v", err), key
		}
		t.anchor(now, r, key, since, Halted(evs, r.Name, r.ServeNew), doneAt(evs, key))
	}
	if mine {
		t.drive(term.Epoch)
	} else {
		t.drive(0)
	}
	breakerNow := c.breakerOpen != nil && c.breakerOpen(r.New)
	t.resetBreakerAtZero(now, r.ServeNew, breakerNow)
	snap, err := t.Window().Snapshot(key)
	if err != nil {
		return wait("cannot snapshot this instance's window: %v", err), key
	}
	if err := c.fleet.Publish(r.Name, snap); err != nil {
		return wait("cannot publish this instance's window to the fleet: %v", err), key
	}
	snaps, err := c.fleet.Snapshots(r.Name, key)
	if err != nil {
		return wait("cannot read the fleet's windows: %v", err), key
	}
	st := t.State()
	stats, err := MergeSnapshots(r.Name, c.noise, st.StepSince, snaps)
	if err != nil {
		return wait("cannot merge the fleet's windows: %v", err), key
	}
	stats.BreakerOpen = stats.BreakerOpen || breakerNow
	return Step(now, r.Ramp, r.ServeNew, st, stats), key
}

// keyedAt reports whether the tracker is anchored at key.
func (t *Tracker) keyedAt(key StepKey) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fleet.keyed && t.fleet.key == key
}

func (t *Tracker) drivingEpoch() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fleet.epoch
}

func (t *Tracker) drive(epoch int64) {
	t.mu.Lock()
	t.fleet.epoch = epoch
	t.mu.Unlock()
}

// anchor sets the tracker's Progress to the step key: the step began at
// since (fleet-wide), halted and done as the audit log says. The window is
// reset at now when the key changed (this instance's samples from before
// describe the previous step); the first anchor keeps it (it reaches back
// to the requests in flight when the tracker was made).
func (t *Tracker) anchor(now time.Time, r *rules.Route, key StepKey, since time.Time, halted, done bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fleet.keyed && t.fleet.key != key {
		t.w.Reset(now)
	}
	t.fleet.keyed, t.fleet.key = true, key
	t.st = Progress{StepIndex: r.Ramp.StepIndex(r.ServeNew), StepSince: since, Percent: r.ServeNew, Halted: halted, Done: done}
}

// resetBreakerAtZero: at 0%, a breaker this instance saw open that has
// closed again drops this instance's samples of that stretch (as Decide
// does), so that the ramp is not held for ever. The fleet-wide hold is not
// restarted: the step's start is the rules history's.
func (t *Tracker) resetBreakerAtZero(now time.Time, current float64, breakerNow bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rules.Threshold(current) != 0 || t.st.Halted || breakerNow {
		return
	}
	t.w.mu.Lock()
	seen := t.w.breakerSeen
	t.w.mu.Unlock()
	if seen {
		t.w.Reset(now)
	}
}

// learnDone marks the tracker done when the audit log has the driver's
// ramp_done for key (a read error leaves it for the next tick).
func (c *Controller) learnDone(r *rules.Route, t *Tracker, key StepKey) {
	evs, err := c.state.Events(time.Time{}, 100000)
	if err != nil || !doneAt(evs, key) {
		return
	}
	t.mu.Lock()
	if t.fleet.keyed && t.fleet.key == key {
		t.st.Done = true
	}
	t.mu.Unlock()
	c.log.Info("the ramp is done (recorded by the driver)", "route", r.Name)
}

// applied records the effect of a decision the driver applied.
func (t *Tracker) applied(d Decision) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch d.Action {
	case ActionRollback:
		t.st.Halted = true
	case ActionDone:
		t.st.Done = true
	}
}

// detailsWithKey adds the step key to an event's details.
func detailsWithKey(ev rules.Event, key StepKey) rules.Event {
	m := maps.Clone(ev.Details)
	if m == nil {
		m = map[string]any{}
	}
	m["step_since_version"] = key.Since
	ev.Details = m
	return ev
}
