package ramp

import (
	"testing"

	"github.com/tandem-proxy/tandem/rules"
)

// GateNames and Limit name what Gates judges, in its order, with the
// limits it uses: the closed set tandem_ramp_gate_*{gate} is built from.
func TestGateNamesAndLimits(t *testing.T) {
	r := rules.Ramp{MinCompared: 1, MaxDiffRate: 0.01, MaxErrorRate: 0.02, MaxLatencyRatio: 1.5}
	gates := Gates(&r, Stats{})
	if len(gates) != len(GateNames) {
		t.Fatalf("Gates gives %d gates, GateNames lists %d", len(gates), len(GateNames))
	}
	for i, g := range gates {
		if g.Name != GateNames[i] {
			t.Errorf("gate %d is %s, GateNames says %s", i, g.Name, GateNames[i])
		}
		if l, ok := Limit(&r, g.Name); !ok || l != g.Limit {
			t.Errorf("Limit(%s) = %v %v, the gate's limit is %v", g.Name, l, ok, g.Limit)
		}
	}
	if _, ok := Limit(&r, GateBreaker); ok {
		t.Error("the breaker has no limit")
	}
}

// Every state rampState gives is in States, at a fixed index.
func TestStateCodes(t *testing.T) {
	want := map[string]int{"waiting": 0, "holding": 1, "advancing": 2, "rolled_back": 3, "halted": 4, "done": 5}
	for s, code := range want {
		if got := StateCode(s); got != code {
			t.Errorf("StateCode(%s) = %d, want %d", s, got, code)
		}
	}
	if len(States) != len(want) || StateCode("running") != -1 {
		t.Errorf("States %v", States)
	}
	cases := []Status{
		{Done: true}, {Halted: true}, {Current: 5, Last: &Decision{Action: ActionRollback}},
		{Current: 5, Last: &Decision{Action: ActionAdvance}}, {}, {Current: 5},
	}
	for _, s := range cases {
		if st := rampState(&s); StateCode(st) < 0 {
			t.Errorf("rampState(%+v) = %q, not in States", s, st)
		}
	}
}
