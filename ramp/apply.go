package ramp

import (
	"strconv"

	"github.com/tandem-proxy/tandem/rules"
)

// Apply carries out a ramp decision for route through the rules state:
// "advance" sets serve_new to d.ToPercent (kind "ramp_step"), "rollback"
// sets it to 0 (kind "ramp_rollback"), both with actor "ramp", d.Reason and
// the gate values in Details; "done" records a "ramp_done" event; "wait"
// does nothing. If the route's serve_new is no longer d.FromPercent,
// nothing changes and the error wraps rules.ErrStale. A rollback of a route
// already at 0 (the ramp had not started) changes no rules but is still
// recorded. The bool reports whether the rules changed.
func Apply(s RulesStore, route string, d Decision) (rules.Rules, bool, error) {
	ev := rules.Event{Actor: "ramp", Route: route, Reason: d.Reason, Details: d.details()}
	from := d.FromPercent
	switch d.Action {
	case ActionAdvance:
		ev.Kind = "ramp_step"
		return s.Apply(0, ev, rules.SetServeNew(route, d.ToPercent, &from))
	case ActionRollback:
		ev.Kind = "ramp_rollback"
		r, changed, err := s.Apply(0, ev, rules.SetServeNew(route, 0, &from))
		if err == nil && !changed {
			ev.Old, ev.New = "serve_new "+fmtPercent(from), "serve_new 0"
			err = s.Record(ev)
		}
		return r, changed, err
	case ActionDone:
		ev.Kind = "ramp_done"
		return s.Current(), false, s.Record(ev)
	}
	return s.Current(), false, nil
}

func fmtPercent(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
