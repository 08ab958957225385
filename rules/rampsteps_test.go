package rules

import (
	"strings"
	"testing"
)

func TestNextStep(t *testing.T) {
	r := DefaultRamp() // steps 1 5 25 50 100
	cases := []struct {
		why     string
		current float64
		want    float64
		ok      bool
	}{
		{"not started: the first step", 0, 1, true},
		{"on a step: the one after", 5, 25, true},
		{"between steps: the first above", 10, 25, true},
		{"a hair below a step is not the step", 4.99, 5, true},
		{"last step: none", 100, 0, false},
	}
	for _, tc := range cases {
		got, ok := r.NextStep(tc.current)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: NextStep(%v) = %v, %v", tc.why, tc.current, got, ok)
		}
	}
	if _, ok := (*Ramp)(nil).NextStep(0); ok {
		t.Error("nil ramp has a next step")
	}
}

// Validate rejects a ramp that cannot finish at 100.
func TestValidateRampMustEndAt100(t *testing.T) {
	cases := []struct {
		why   string
		steps []float64
		bad   bool
	}{
		{"default steps end at 100", []float64{1, 5, 25, 50, 100}, false},
		{"a single step of 100", []float64{100}, false},
		{"ends at 50: never done", []float64{10, 50}, true},
	}
	for _, tc := range cases {
		rt := DefaultRoute()
		rt.Name, rt.Legacy, rt.New = "r", "a", "b"
		rp := DefaultRamp()
		rp.Steps = tc.steps
		rt.Ramp = &rp
		errs := Validate([]Route{rt}, func(string) bool { return true })
		if got := len(errs) > 0; got != tc.bad {
			t.Errorf("%s: errors %v", tc.why, errs)
		}
		if tc.bad && !strings.Contains(errs[0].Error(), "must be 100") {
			t.Errorf("%s: %v", tc.why, errs[0])
		}
	}
}
