package ramp

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/rulestore"
)

// openRampState opens a rules state whose route "images" ramps.
func openRampState(t *testing.T) *rulestore.State {
	t.Helper()
	rt := rules.DefaultRoute()
	rt.Name, rt.Legacy, rt.New = "images", "legacy", "new"
	rp := rules.DefaultRamp()
	rt.Ramp = &rp
	s, err := rulestore.OpenState(t.TempDir(), []rules.Route{rt}, nil, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func servingNew(r rules.Rules, route string) float64 {
	for _, rt := range r.Routes {
		if rt.Name == route {
			return rt.ServeNew
		}
	}
	return -1
}

// Ramp decisions become versioned changes with the gate values in Details.
func TestApplyRamp(t *testing.T) {
	s := openRampState(t)
	adv := Decision{Action: ActionAdvance, FromPercent: 0, ToPercent: 1, Reason: "gates passed", Values: map[string]float64{"diff_rate": 0.001}}
	r, changed, err := Apply(s, "images", adv)
	if err != nil || !changed || servingNew(r, "images") != 1 {
		t.Fatalf("advance: %v %v %v", servingNew(r, "images"), changed, err)
	}
	if _, _, err := Apply(s, "images", adv); !errors.Is(err, rules.ErrStale) {
		t.Errorf("decision made at 0%% applied at 1%%: %v", err)
	}
	rb := Decision{Action: ActionRollback, FromPercent: 1, Gate: GateDiffRate, Reason: "diff rate too high"}
	if r, changed, err = Apply(s, "images", rb); err != nil || !changed || servingNew(r, "images") != 0 {
		t.Fatalf("rollback: %v %v %v", servingNew(r, "images"), changed, err)
	}
	rb0 := Decision{Action: ActionRollback, FromPercent: 0, Gate: GateBreaker, Reason: "breaker open before the first step"}
	if _, changed, err = Apply(s, "images", rb0); err != nil || changed {
		t.Errorf("rollback at 0: changed %v err %v", changed, err)
	}
	if _, changed, _ = Apply(s, "images", Decision{Action: ActionWait}); changed {
		t.Error("wait changed the rules")
	}
	evs, err := s.Events(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind+"/"+e.Actor)
	}
	if want := []string{"seed/file", "ramp_step/ramp", "ramp_rollback/ramp", "ramp_rollback/ramp"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
	if d := evs[1].Details; d["diff_rate"] != 0.001 || d["to_percent"] != 1.0 {
		t.Errorf("ramp_step details %v", d)
	}
	if d := evs[2].Details; d["gate"] != GateDiffRate {
		t.Errorf("ramp_rollback details %v", d)
	}
}
