package pgrules

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tandem-proxy/tandem/rules"
)

// A promote through A is in force on B and C within 2 s (NOTIFY, or the
// poll), their subscribers see every version in order, and a rollback
// through B reaches A and C the same way.
func TestChangesReachEveryInstance(t *testing.T) {
	_, url := database(t)
	a := open(t, url, "a", Options{})
	b := open(t, url, "b", Options{})
	c := open(t, url, "c", Options{})
	if v := a.Current().Version; v != 1 || b.Current().Version != 1 || c.Current().Version != 1 {
		t.Fatalf("versions after start %d %d %d, want 1", v, b.Current().Version, c.Current().Version)
	}
	r, changed, err := a.Promote("images", 25, "api", "canary")
	if err != nil || !changed || r.Version != 2 {
		t.Fatalf("promote: %v %v %v", r.Version, changed, err)
	}
	if serveNew(a, "images") != 25 {
		t.Fatal("the promote is not in force on A when Promote returns")
	}
	for _, in := range []*instance{b, c} {
		d := within(t, 2*time.Second, "promote on "+in.o.Instance, func() bool { return serveNew(in, "images") == 25 })
		t.Logf("%s: in force after %v", in.o.Instance, d)
	}
	if _, _, err := b.Rollback("images", "api", "bad"); err != nil {
		t.Fatal(err)
	}
	for _, in := range []*instance{a, c} {
		within(t, 2*time.Second, "rollback on "+in.o.Instance, func() bool { return serveNew(in, "images") == 0 })
	}
	for _, in := range []*instance{a, b, c} {
		if got := in.versions(); !reflect.DeepEqual(got, []int64{1, 2, 3}) {
			t.Fatalf("%s's subscriber saw %v, want [1 2 3]", in.o.Instance, got)
		}
		if in.AppliedVersion() != 3 {
			t.Fatalf("%s applied %d, want 3", in.o.Instance, in.AppliedVersion())
		}
	}
	// The same percentage again is no change: no version, no event.
	if r, changed, err := c.Rollback("images", "api", "again"); err != nil || changed || r.Version != 3 {
		t.Fatalf("rollback again: %d %v %v", r.Version, changed, err)
	}
	evs, err := c.Events(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, fmt.Sprintf("%s %s %d→%d %s", e.Kind, e.Instance, e.OldVersion, e.NewVersion, e.New))
	}
	want := []string{"seed a 0→1 images: added (serve_new 0, mirror 100); static: added (serve_new 0, mirror 100)",
		"promote a 1→2 serve_new 25", "rollback b 2→3 serve_new 0"}
	if !reflect.DeepEqual(kinds, want) {
		t.Fatalf("audit log %q, want %q", kinds, want)
	}
	if last, _ := a.Events(time.Time{}, 1); len(last) != 1 || last[0].Kind != "rollback" {
		t.Fatalf("Events limit 1: %+v", last)
	}
}

// With polling once a minute, only NOTIFY can bring a change within 2 s;
// after the listener's connection is killed it reconnects and NOTIFY works
// again.
func TestNotifyBringsChanges(t *testing.T) {
	_, url := database(t)
	a := open(t, url, "a", Options{})
	b := open(t, url, "b", Options{PollInterval: time.Minute, listenRetry: 100 * time.Millisecond})
	within(t, 5*time.Second, "b listening", func() bool {
		var n int
		conn(t, url).QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", listenerName("b")).Scan(&n)
		return n == 1
	})
	time.Sleep(100 * time.Millisecond) // LISTEN runs right after the connection shows
	if _, _, err := a.Promote("images", 5, "api", ""); err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "promote via NOTIFY", func() bool { return serveNew(b, "images") == 5 })
	killListener(t, conn(t, url), "b")
	// While the listener is away, a change; the reconnection reads it.
	if _, _, err := a.Promote("images", 10, "api", ""); err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "change made while the listener was away", func() bool { return serveNew(b, "images") == 10 })
	if _, _, err := a.Promote("images", 15, "api", ""); err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "promote via NOTIFY after reconnecting", func() bool { return serveNew(b, "images") == 15 })
}

// With NOTIFY unavailable (the listener's connection killed, and not
// coming back within the test), the poll brings every change within 2 s.
func TestPollBringsChangesWithoutNotify(t *testing.T) {
	_, url := database(t)
	a := open(t, url, "a", Options{})
	b := open(t, url, "b", Options{listenRetry: time.Hour})
	killListener(t, conn(t, url), "b")
	for _, p := range []float64{30, 60} {
		if _, _, err := a.Promote("images", p, "api", ""); err != nil {
			t.Fatal(err)
		}
		d := within(t, 2*time.Second, "promote via the poll", func() bool { return serveNew(b, "images") == p })
		t.Logf("in force after %v", d)
	}
	inOrder(t, "b", b.versions())
}

// Two Updates with the same If-Match on two instances at once: exactly one
// is stored, the other gets ErrStale; every version has exactly one audit
// row.
func TestConcurrentIfMatch(t *testing.T) {
	_, url := database(t)
	a := open(t, url, "a", Options{})
	b := open(t, url, "b", Options{})
	for round := range 10 {
		v := int64(round + 1)
		within(t, 2*time.Second, "both at the last version", func() bool { return a.Current().Version == v && b.Current().Version == v })
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, s := range []*instance{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = s.Update(v, "api", rules.KindReplace, "", fmt.Sprintf("round %d by %s", round, s.o.Instance), func(r *rules.Rules) error {
					r.Routes[0].Mirror = float64(10*round + i + 1)
					return nil
				})
			}()
		}
		close(start)
		wg.Wait()
		ok, stale := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, rules.ErrStale):
				stale++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 || stale != 1 {
			t.Fatalf("round %d: %d stored, %d stale (%v), want 1 and 1", round, ok, stale, errs)
		}
	}
	// The last round may have been won by b: a learns of it within 2 s.
	within(t, 2*time.Second, "both at version 11 after 10 rounds", func() bool { return a.Current().Version == 11 && b.Current().Version == 11 })
	c := conn(t, url)
	var versions, audited, dup int
	c.QueryRow(context.Background(), "SELECT count(*) FROM rules_versions").Scan(&versions)
	c.QueryRow(context.Background(), "SELECT count(*) FROM rules_audit WHERE (event->>'new_version') IS NOT NULL").Scan(&audited)
	c.QueryRow(context.Background(), `SELECT count(*) FROM (SELECT event->>'new_version' FROM rules_audit
		WHERE (event->>'new_version') IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d`).Scan(&dup)
	if versions != 11 || audited != 11 || dup != 0 {
		t.Fatalf("%d versions, %d audit rows with a version, %d versions audited twice; want 11, 11, 0", versions, audited, dup)
	}
}

// Instances starting together on an empty database: exactly one seeds
// version 1, all load it. A changed config file is a new version (actor
// file) once; an instance with the same file after it changes nothing.
func TestSeedOnceAndFileChanges(t *testing.T) {
	_, url := database(t)
	var wg sync.WaitGroup
	ins := make([]*instance, 4)
	for i := range ins {
		wg.Add(1)
		go func() { defer wg.Done(); ins[i] = open(t, url, fmt.Sprint("i", i), Options{}) }()
	}
	wg.Wait()
	for _, in := range ins {
		if in == nil {
			t.FailNow()
		}
		if in.Current().Version != 1 {
			t.Fatalf("%s at version %d", in.o.Instance, in.Current().Version)
		}
	}
	evs, _ := ins[0].Events(time.Time{}, 0)
	if len(evs) != 1 || evs[0].Kind != rules.KindSeed || evs[0].Actor != "file" {
		t.Fatalf("events after four first starts: %+v", evs)
	}
	changed := seedRoutes()
	changed[1].Mirror = 50
	if ins[0].FileChanged(seedRoutes()) || !ins[0].FileChanged(changed) {
		t.Fatal("FileChanged wrong")
	}
	r, ok, err := ins[1].ReplaceFromFile(changed)
	if err != nil || !ok || r.Version != 2 {
		t.Fatalf("ReplaceFromFile: %d %v %v", r.Version, ok, err)
	}
	within(t, 2*time.Second, "file change on i0", func() bool { return ins[0].Current().Version == 2 })
	late := open(t, url, "late", Options{Seed: changed})
	if late.FileChanged(changed) || late.Current().Version != 2 {
		t.Fatal("an instance started with the changed file sees a change")
	}
	evs, _ = late.Events(time.Time{}, 0)
	if last := evs[len(evs)-1]; len(evs) != 2 || last.Actor != "file" || last.Kind != rules.KindReload {
		t.Fatalf("events: %+v", evs)
	}
	// A change another validator refuses is not stored.
	if _, _, err := ins[2].Promote("static", 10, "api", ""); !errors.As(err, new(*rules.ValidationError)) {
		t.Fatalf("promote of a route without new: %v", err)
	}
}

// Stored rules that do not validate on an instance that starts: replaced
// by its config file's routes if they changed and validate (actor file),
// else Open refuses naming the problem.
func TestOpenWithStoredRulesThatDoNotFit(t *testing.T) {
	_, url := database(t)
	open(t, url, "a", Options{})
	noNew := func(rs []rules.Route) []error {
		return rules.Validate(rs, func(b string) bool { return b != "new" })
	}
	pool := func() *pgxpool.Pool {
		p, err := pgxpool.New(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	if _, err := Open(context.Background(), pool(), Options{Instance: "b", Seed: seedRoutes(), Validate: noNew}); err == nil || !strings.Contains(err.Error(), "unknown backend") {
		t.Fatalf("open with the same file and no backend new: %v", err)
	}
	legacyOnly := seedRoutes()
	legacyOnly[0].New = ""
	b, err := Open(context.Background(), pool(), Options{Instance: "b", Seed: legacyOnly, Validate: noNew})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if r := b.Current(); r.Version != 2 || r.Routes[0].New != "" || b.Recovered() == "" {
		t.Fatalf("after open: version %d, new %q, recovered %q", r.Version, r.Routes[0].New, b.Recovered())
	}
	evs, _ := b.Events(time.Time{}, 1)
	if len(evs) != 1 || evs[0].Actor != "file" || evs[0].Kind != rules.KindReload || evs[0].Instance != "b" {
		t.Fatalf("last event %+v", evs)
	}
}
