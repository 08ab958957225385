package pgrules

import (
	"fmt"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/rules"
)

// The registry lists the live instances with the version each applied;
// AllApplied waits for the one that cannot apply a version, and stops
// waiting for an instance that is gone.
func TestRegistryAndAllApplied(t *testing.T) {
	_, url := database(t)
	o := Options{LiveWithin: 2 * time.Second}
	a := open(t, url, "a", o)
	b := open(t, url, "b", o)
	// c's configuration refuses serve_new above 50 (as an instance whose
	// backends differ would refuse a version).
	oc := o
	oc.Validate = func(rs []rules.Route) []error {
		errs := rules.Validate(rs, func(string) bool { return true })
		for _, r := range rs {
			if r.ServeNew > 50 {
				errs = append(errs, fmt.Errorf("route %q: serve_new %v refused here", r.Name, r.ServeNew))
			}
		}
		return errs
	}
	c := open(t, url, "c", oc)
	within(t, 3*time.Second, "three live instances", func() bool {
		ins, err := a.LiveInstances(0)
		return err == nil && len(ins) == 3 && a.FleetInstances() == 3
	})
	r, _, err := a.Promote("images", 25, "api", "")
	if err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "every instance applied version 2", func() bool {
		ok, err := b.AllApplied(r.Version)
		return err == nil && ok
	})
	ins, _ := a.LiveInstances(0)
	for _, in := range ins {
		if in.AppliedVersion != 2 || in.StartedAt.IsZero() || in.LastSeen.Before(in.StartedAt.Add(-time.Second)) {
			t.Fatalf("registry row %+v", in)
		}
	}
	r, _, err = a.Promote("images", 75, "api", "")
	if err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "b applied version 3", func() bool { return b.AppliedVersion() == 3 })
	// c's heartbeats go on after it has read version 3 (a poll and a
	// heartbeat later); it stays at 2.
	since := time.Now()
	within(t, 3*time.Second, "a heartbeat of c after version 3", func() bool {
		ins, _ := a.LiveInstances(0)
		for _, in := range ins {
			if in.Name == "c" && in.LastSeen.After(since.Add(time.Second)) {
				return true
			}
		}
		return false
	})
	if ok, err := a.AllApplied(r.Version); err != nil || ok {
		t.Fatalf("AllApplied(3) with c at version %d: %v %v", c.AppliedVersion(), ok, err)
	}
	if c.AppliedVersion() != 2 || c.Current().Version != 2 {
		t.Fatalf("c applied %d, in force %d; want 2", c.AppliedVersion(), c.Current().Version)
	}
	c.Close()
	within(t, 4*time.Second, "c no longer live", func() bool {
		ok, err := a.AllApplied(r.Version)
		return err == nil && ok && a.FleetInstances() == 2
	})
	ins, _ = a.LiveInstances(0)
	if len(ins) != 2 || ins[0].Name != "a" || ins[1].Name != "b" {
		t.Fatalf("live instances %+v", ins)
	}
	if all, _ := a.LiveInstances(time.Hour); len(all) != 3 {
		t.Fatalf("instances seen within an hour: %+v", all)
	}
}

// Two processes with one instance name are found out within a few
// heartbeats, by both; distinct names, and a restart under the same name
// (the old incarnation stopped), are not conflicts.
func TestInstanceNameConflict(t *testing.T) {
	_, url := database(t)
	o := Options{PollInterval: 50 * time.Millisecond}
	a := open(t, url, "edge", o)
	other := open(t, url, "other", o)
	b := open(t, url, "edge", o)
	within(t, 2*time.Second, "both processes named edge see the conflict", func() bool {
		return a.NameConflicts() > 0 && b.NameConflicts() > 0
	})
	if n := other.NameConflicts(); n != 0 {
		t.Fatalf("instance with its own name counted %d conflicts", n)
	}
	b.Close()
	a.Close()
	// A restart under the name, the processes before it stopped.
	c := open(t, url, "edge", o)
	time.Sleep(10 * o.PollInterval)
	if n := c.NameConflicts(); n != 0 {
		t.Fatalf("a restart under the same name counted %d conflicts", n)
	}
}
