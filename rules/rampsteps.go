package rules

// NextStep returns the first step above current, and false if there is
// none. An off-step current (set by hand to 10 with steps 1, 5, 25) leads to
// the first step above it (25). Percentages are compared as bucket counts
// (two decimals), like serving.
func (r *Ramp) NextStep(current float64) (float64, bool) {
	if r == nil {
		return 0, false
	}
	t := Threshold(current)
	for _, s := range r.Steps {
		if Threshold(s) > t {
			return s, true
		}
	}
	return 0, false
}

// StepIndex returns the index of the highest step at or below current, or
// -1 if current is below the first step.
func (r *Ramp) StepIndex(current float64) int {
	if r == nil {
		return -1
	}
	t, idx := Threshold(current), -1
	for i, s := range r.Steps {
		if Threshold(s) <= t {
			idx = i
		}
	}
	return idx
}
