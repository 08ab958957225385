package ramp

import (
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/rules"
)

// fixedRules is a RulesStore holding one version that never changes.
type fixedRules struct{ r rules.Rules }

func (f *fixedRules) Current() rules.Rules                         { return f.r }
func (f *fixedRules) Events(time.Time, int) ([]rules.Event, error) { return nil, nil }
func (f *fixedRules) Apply(int64, rules.Event, func(*rules.Rules) error) (rules.Rules, bool, error) {
	return f.r, false, nil
}
func (f *fixedRules) Record(rules.Event) error { return nil }

// A route's first tick may come while its first requests are in flight:
// their comparisons, finished after the tick, count (TestRampWiring and
// the UI's gate test lost one of them so under load).
func TestFirstTickKeepsRequestsInFlight(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	now := t0
	st := &fixedRules{rules.Rules{Routes: []rules.Route{{Name: "up", Legacy: "l", New: "n",
		Ramp: &rules.Ramp{Steps: []float64{5, 100}, Hold: rules.Duration(time.Minute), MinCompared: 1,
			MaxDiffRate: 0.5, MaxErrorRate: 0.5, MaxLatencyRatio: 10}}}}}
	c := New(Options{State: st, Now: func() time.Time { return now }})

	inFlight := t0.Add(2 * time.Second) // arrives before the first tick
	now = t0.Add(3 * time.Second)
	c.Tick() // creates the route's tracker
	now = t0.Add(4 * time.Second)
	c.Add(Observation{Route: "up", Start: inFlight, Compared: true, LegacyOK: true,
		LegacyLatency: time.Millisecond, NewLatency: time.Millisecond})
	if got := c.tracker(&st.r.Routes[0]).Window().Stats().Compared; got != 1 {
		t.Fatalf("compared = %d after a comparison of a request that arrived before the first tick, want 1", got)
	}
	// Nothing from before the Controller existed counts.
	c.Add(Observation{Route: "up", Start: t0.Add(-time.Second), Compared: true, LegacyOK: true})
	if got := c.tracker(&st.r.Routes[0]).Window().Stats().Compared; got != 1 {
		t.Fatalf("compared = %d, want 1: a request from before the Controller counted", got)
	}
}
