package rules

import (
	"fmt"
	"math"
	"testing"
)

// Over 10,000 keys the share served by new is within binomial bounds of the
// percentage; 0 and 100 are exact.
func TestBucketShares(t *testing.T) {
	const n = 10000
	for _, pct := range []float64{0, 1, 5, 25, 50, 100} {
		th := Threshold(pct)
		got := 0
		for i := 0; i < n; i++ {
			if Bucket("images", fmt.Sprintf("user-%d", i)) < th {
				got++
			}
		}
		p := pct / 100
		mean, sd := n*p, math.Sqrt(n*p*(1-p))
		if pct == 0 || pct == 100 {
			if float64(got) != mean {
				t.Errorf("%v%%: %d of %d, want exactly %v", pct, got, n, mean)
			}
			continue
		}
		if math.Abs(float64(got)-mean) > 5*sd {
			t.Errorf("%v%%: %d of %d, want %v ± %.0f", pct, got, n, mean, 5*sd)
		}
	}
}

// Raising the percentage never moves a key back to legacy; lowering it never
// moves one to new.
func TestBucketSticky(t *testing.T) {
	steps := []float64{0, 1, 5, 12.34, 25, 50, 99.99, 100}
	for i := 0; i < 5000; i++ {
		key := fmt.Sprintf("k%d", i)
		b := Bucket("r", key)
		served := false
		for _, s := range steps {
			now := b < Threshold(s)
			if served && !now {
				t.Fatalf("key %s left new when raising to %v", key, s)
			}
			served = now
		}
	}
}

// The mirror decision is independent of serving: among keys served by new
// at 50%, about 30% are mirrored at mirror 30.
func TestMirrorIndependentOfServing(t *testing.T) {
	served, mirrored := 0, 0
	for i := 0; i < 20000; i++ {
		key := fmt.Sprintf("id-%d", i)
		if Bucket("r", key) < Threshold(50) {
			served++
			if MirrorBucket("r", key) < Threshold(30) {
				mirrored++
			}
		}
	}
	p := float64(mirrored) / float64(served)
	sd := math.Sqrt(0.3 * 0.7 / float64(served))
	if math.Abs(p-0.3) > 5*sd {
		t.Fatalf("mirrored %.3f of the keys served by new, want 0.30 ± %.3f", p, 5*sd)
	}
}

// The hash is part of the contract: a fleet of instances, old and new
// versions, must agree. These values must never change.
func TestBucketStableAcrossVersions(t *testing.T) {
	got := []uint32{Bucket("images", "user-1"), Bucket("images", "user-2"), Bucket("avatars", "user-1"), MirrorBucket("images", "user-1")}
	// Computed independently from the documented construction (FNV-1a 64 over
	// route, 0x00, key; MurmurHash3 fmix64; mod 10000) in Python.
	want := []uint32{6382, 4004, 3384, 5200}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("bucket %d = %d, want %d: the hash changed, which would move users between backends", i, got[i], want[i])
		}
	}
}

func TestThreshold(t *testing.T) {
	for _, c := range []struct {
		p    float64
		want uint32
	}{{0, 0}, {-1, 0}, {0.01, 1}, {12.34, 1234}, {99.99, 9999}, {100, 10000}, {150, 10000}} {
		if got := Threshold(c.p); got != c.want {
			t.Errorf("Threshold(%v) = %d, want %d", c.p, got, c.want)
		}
	}
}

func TestParseSticky(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Sticky
		ok   bool
	}{
		{"", Sticky{Kind: StickyNone}, true},
		{"none", Sticky{Kind: StickyNone}, true},
		{"ip", Sticky{Kind: StickyIP}, true},
		{"header:X-User-Id", Sticky{StickyHeader, "X-User-Id"}, true},
		{"cookie:sid", Sticky{StickyCookie, "sid"}, true},
		{"query:u", Sticky{StickyQuery, "u"}, true},
		{"header:", Sticky{}, false},
		{"header", Sticky{}, false},
		{"body:x", Sticky{}, false},
	} {
		got, err := ParseSticky(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseSticky(%q) = %+v, %v", c.in, got, err)
		}
	}
}
