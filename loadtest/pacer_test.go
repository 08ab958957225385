package loadtest

import (
	"testing"
	"time"
)

func TestConstantPacer(t *testing.T) {
	tests := []struct {
		why      string
		p        ConstantPacer
		elapsed  time.Duration
		sent     uint64
		wantWait time.Duration
		wantStop bool
	}{
		{"the first hit goes out at once", ConstantPacer{200, time.Second}, 0, 0, 0, false},
		{"the second hit is one interval later", ConstantPacer{200, time.Second}, 0, 1, 5 * time.Millisecond, false},
		{"wait is measured from elapsed", ConstantPacer{200, time.Second}, 3 * time.Millisecond, 1, 2 * time.Millisecond, false},
		{"behind schedule: negative wait says how late", ConstantPacer{200, time.Second}, 10 * time.Millisecond, 1, -5 * time.Millisecond, false},
		{"exactly on time", ConstantPacer{200, time.Second}, time.Second, 200, 0, false},
		{"rates that do not divide Per round down, not drift", ConstantPacer{3, time.Second}, 0, 1, 333333333, false},
		{"the third of three hits per second is due at one second exactly", ConstantPacer{3, time.Second}, 0, 3, time.Second, false},
		{"no drift after a billion hits", ConstantPacer{3, time.Second}, 0, 3_000_000_000, 1_000_000_000 * time.Second, false},
		{"per-minute rates", ConstantPacer{6, time.Minute}, 0, 1, 10 * time.Second, false},
		{"a zero rate sends nothing", ConstantPacer{0, time.Second}, 0, 0, 0, true},
		{"a zero period sends nothing", ConstantPacer{10, 0}, 0, 0, 0, true},
		{"a due time past what a Duration holds stops", ConstantPacer{1, time.Second}, 0, 1 << 40, 0, true},
		{"128-bit product that overflows 64 bits", ConstantPacer{1, time.Hour}, 0, 1 << 60, 0, true},
	}
	for _, tt := range tests {
		wait, stop := tt.p.Next(tt.elapsed, tt.sent)
		if stop != tt.wantStop || (!stop && wait != tt.wantWait) {
			t.Errorf("%s: %v.Next(%v, %d) = %v, %v; want %v, %v", tt.why, tt.p, tt.elapsed, tt.sent, wait, stop, tt.wantWait, tt.wantStop)
		}
	}
}

// TestConstantPacerSchedule walks a whole schedule, as the attacker does,
// without sleeping: the elapsed time jumps to each due time.
func TestConstantPacerSchedule(t *testing.T) {
	p := ConstantPacer{Freq: 200, Per: time.Second}
	var elapsed time.Duration
	perSecond := map[int]int{}
	for n := uint64(0); ; n++ {
		wait, stop := p.Next(elapsed, n)
		if stop {
			t.Fatal("constant pacer stopped")
		}
		if wait < 0 {
			t.Fatalf("hit %d: negative wait %v on an exact schedule", n, wait)
		}
		elapsed += wait
		if elapsed >= 3*time.Second {
			break
		}
		perSecond[int(elapsed/time.Second)]++
	}
	for s := range 3 {
		if perSecond[s] != 200 {
			t.Errorf("second %d: %d hits, want 200", s, perSecond[s])
		}
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    ConstantPacer
		wantErr bool
	}{
		{"200", ConstantPacer{200, time.Second}, false},
		{"200/s", ConstantPacer{200, time.Second}, false},
		{"30/m", ConstantPacer{30, time.Minute}, false},
		{"5/h", ConstantPacer{5, time.Hour}, false},
		{"50/100ms", ConstantPacer{50, 100 * time.Millisecond}, false},
		{"0", ConstantPacer{}, true},     // zero is not a rate
		{"-5", ConstantPacer{}, true},    // negative
		{"1.5", ConstantPacer{}, true},   // whole hits only
		{"10/0s", ConstantPacer{}, true}, // zero period
		{"10/fortnight", ConstantPacer{}, true},
		{"", ConstantPacer{}, true},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if r := (ConstantPacer{50, 100 * time.Millisecond}).Rate(); r != 500 {
		t.Errorf("Rate of 50/100ms = %v, want 500", r)
	}
}

func TestCountDue(t *testing.T) {
	p := ConstantPacer{Freq: 100, Per: time.Second} // hit n due at n×10ms
	tests := []struct {
		why         string
		end         time.Duration
		from, limit uint64
		want        uint64
	}{
		{"hits 5..29 are due before 300ms", 300 * time.Millisecond, 5, 0, 25},
		{"the request bound caps the count", 300 * time.Millisecond, 5, 10, 5},
		{"nothing left when from is past the end", 300 * time.Millisecond, 30, 0, 0},
		{"a due time equal to the end is not before it", 300 * time.Millisecond, 29, 0, 1},
		{"large counts by binary search", time.Hour, 0, 0, 360000},
	}
	for _, tt := range tests {
		if got := countDue(p, tt.end, tt.from, tt.limit); got != tt.want {
			t.Errorf("%s: countDue = %d, want %d", tt.why, got, tt.want)
		}
	}
}
