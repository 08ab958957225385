package exchange

import "testing"

func TestOutcomeSkipped(t *testing.T) {
	for _, tc := range []struct {
		o    Outcome
		want bool
		why  string
	}{
		{Sent, false, "a sent copy is mirrored"},
		{Error, false, "a failed copy was sent: mirrored, not skipped"},
		{Sampling, true, "left out by the mirror share"},
		{QueueFull, true, "no room in flight"},
		{BreakerOpen, true, "breaker refused"},
		{TooLarge, true, "body over the copy's limit"},
		{SpoolFull, true, "no spool disk left"},
		{"", false, "no outcome is no skip"},
	} {
		if got := tc.o.Skipped(); got != tc.want {
			t.Errorf("%q.Skipped() = %v, want %v (%s)", tc.o, got, tc.want, tc.why)
		}
	}
	for _, o := range Outcomes {
		if !o.Valid() {
			t.Errorf("%q not valid", o)
		}
	}
	if Outcome("timeout").Valid() {
		t.Error(`"timeout" valid, want not: the set is closed`)
	}
}
