package pgrules

import (
	"errors"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/rules"
)

// The cluster stopped: Current keeps the rules in force, changes fail
// with ErrUnavailable within Timeout, Up says so. Restarted: changes work
// again by themselves and every instance converges.
func TestDatabaseOutage(t *testing.T) {
	c, url := database(t)
	a := open(t, url, "a", Options{Timeout: time.Second})
	b := open(t, url, "b", Options{Timeout: time.Second})
	if _, _, err := a.Promote("images", 5, "api", ""); err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "b at 5%", func() bool { return serveNew(b, "images") == 5 })
	c.Stop()
	start := time.Now()
	_, _, err := a.Promote("images", 50, "api", "")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, rules.ErrUnavailable) {
		t.Fatalf("promote with the database down: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("promote took %v with Timeout 1s", d)
	}
	if _, err := b.Update(0, "api", rules.KindReplace, "", "", func(r *rules.Rules) error { r.Routes[0].Mirror = 1; return nil }); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("update with the database down: %v", err)
	}
	if err := b.Record(rules.Event{Actor: "ramp", Kind: "ramp_hold"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("record with the database down: %v", err)
	}
	if a.Up() {
		t.Fatal("Up after a failed change")
	}
	within(t, 3*time.Second, "b notices the outage", func() bool { return !b.Up() })
	for _, in := range []*instance{a, b} {
		if got := in.Current(); got.Version != 2 || serveNew(in, "images") != 5 {
			t.Fatalf("%s: rules in force during the outage: version %d", in.o.Instance, got.Version)
		}
	}
	c.Restart()
	var r rules.Rules
	within(t, 10*time.Second, "promote after the restart", func() bool {
		r, _, err = a.Promote("images", 50, "api", "")
		return err == nil
	})
	if r.Version != 3 {
		t.Fatalf("version %d after the outage, want 3", r.Version)
	}
	within(t, 2*time.Second, "b converges", func() bool { return serveNew(b, "images") == 50 && b.Up() })
	inOrder(t, "b", b.versions())
}
