package pglease

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tandem-proxy/tandem/internal/pgtest"
)

// Short timings for tests; production uses DefaultTTL/DefaultRenewEvery
// (10 s / 3 s), and every bound asserted here scales with them: takeover
// after a crash within TTL + RenewEvery (+ a round trip), after a release
// within RenewEvery, loss reported Margin before expiry.
const (
	testTTL    = time.Second
	testRenew  = 200 * time.Millisecond
	testMargin = 200 * time.Millisecond
	slack      = 500 * time.Millisecond // scheduling on a loaded 2-core machine
)

// newPool opens a pool on url, as one instance would, closed at cleanup.
func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func newStore(t *testing.T, url string) *Store {
	t.Helper()
	s, err := New(context.Background(), newPool(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// instance is one elector on its own pool, running until stop.
type instance struct {
	e      *Elector
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	events []Event
	lostAt map[string]time.Time
}

func startInstance(t *testing.T, url, holder string, ttl, renew time.Duration, names ...string) *instance {
	t.Helper()
	in := &instance{done: make(chan struct{}), lostAt: map[string]time.Time{}}
	e, err := NewElector(newStore(t, url), Config{
		Holder: holder, Names: names, TTL: ttl, RenewEvery: renew, Margin: testMargin,
		OnChange: func(ev Event) {
			in.mu.Lock()
			defer in.mu.Unlock()
			in.events = append(in.events, ev)
			if !ev.Held {
				in.lostAt[ev.Token.Name] = time.Now()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	in.e = e
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go func() { defer close(in.done); e.Run(ctx) }()
	t.Cleanup(in.stop)
	return in
}

// stop cancels Run and waits for it to return (releases, unless crashed).
func (in *instance) stop() { in.cancel(); <-in.done }

// crash stops the instance without releasing: its term stays in the
// database until it expires, as after kill -9.
func (in *instance) crash() { in.e.skipRelease = true; in.stop() }

// holders lists which of ins hold name right now.
func holders(ins []*instance, name string) []int {
	var h []int
	for i, in := range ins {
		if _, ok := in.e.Held(name); ok {
			h = append(h, i)
		}
	}
	return h
}

// waitHolder polls until exactly one of ins holds name, or fails after d.
func waitHolder(t *testing.T, ins []*instance, name string, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if h := holders(ins, name); len(h) == 1 {
			return h[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no single holder of %s within %v (holders %v)", name, d, holders(ins, name))
	return -1
}

// Three electors on two names for a bounded number of rounds, with the
// holder of r1 crashed and the holder of r2 stopped midway: at every
// sample at most one instance holds each name, each name is held most of
// the time, and each name's epochs only grow.
func TestAtMostOneHolderPerName(t *testing.T) {
	url := pgtest.Start(t).NewDatabase()
	names := []string{"ramp:r1", "ramp:r2"}
	var ins []*instance
	for i := range 3 {
		ins = append(ins, startInstance(t, url, fmt.Sprintf("i%d", i), testTTL, testRenew, names...))
	}
	const rounds = 120 // 120 × 50 ms = 6 s
	heldRounds := map[string]int{}
	crashed, stopped := false, false
	for r := range rounds {
		for _, n := range names {
			h := holders(ins, n)
			if len(h) > 1 {
				t.Fatalf("round %d: %s held by instances %v at once", r, n, h)
			}
			if len(h) == 1 {
				heldRounds[n]++
				if r >= 40 && n == "ramp:r1" && !crashed {
					ins[h[0]].crash()
					crashed = true
				}
				if r >= 60 && n == "ramp:r2" && !stopped {
					ins[h[0]].stop()
					stopped = true
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range names {
		// Start-up takes ≤ one attempt, a crash ≤ TTL+RenewEvery of 6 s.
		if heldRounds[n] < rounds/2 {
			t.Errorf("%s held in %d of %d rounds", n, heldRounds[n], rounds)
		}
	}
	if !crashed || !stopped {
		t.Fatalf("crashed %v, stopped %v: no holder to stop", crashed, stopped)
	}
	for _, in := range ins {
		in.stop()
	}
	// Each handover is a new term: no epoch is gained twice, and each
	// name changed hands at least once. (An epoch may also be spent by an
	// acquisition whose reply came too late to trust: no gain then.)
	epochs := map[string]map[int64]string{}
	for _, in := range ins {
		for _, ev := range in.events {
			if !ev.Held {
				continue
			}
			m := epochs[ev.Token.Name]
			if m == nil {
				m = map[int64]string{}
				epochs[ev.Token.Name] = m
			}
			if prev, dup := m[ev.Token.Epoch]; dup {
				t.Errorf("%s epoch %d gained by %s and %s", ev.Token.Name, ev.Token.Epoch, prev, ev.Token.Holder)
			}
			m[ev.Token.Epoch] = ev.Token.Holder
		}
	}
	for _, n := range names {
		if len(epochs[n]) < 2 {
			t.Errorf("%s: terms %v, want a handover", n, epochs[n])
		}
	}
}

// Acquire refuses a held lease to everyone, its own holder name included
// (a restarted instance, or two processes given one name); after a
// release the next term has the next epoch, and the row stays.
func TestAcquireRelease(t *testing.T) {
	url := pgtest.Start(t).NewDatabase()
	ctx := context.Background()
	s := newStore(t, url)
	a, rem, ok, err := s.Acquire(ctx, "ramp:r", "a", 5*time.Second)
	if err != nil || !ok || a.Epoch != 1 || rem <= 4*time.Second || rem > 5*time.Second {
		t.Fatalf("first acquire: %v %v %v %v", a, rem, ok, err)
	}
	for _, h := range []string{"a", "b"} {
		if tok, _, ok, err := s.Acquire(ctx, "ramp:r", h, 5*time.Second); ok || err != nil {
			t.Fatalf("%s acquired a held lease: %v %v", h, tok, err)
		}
	}
	if cur, _, ok, err := s.Current(ctx, "ramp:r"); !ok || err != nil || cur != a {
		t.Fatalf("Current = %v %v %v, want %v", cur, ok, err, a)
	}
	if err := s.Release(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := s.Current(ctx, "ramp:r"); ok {
		t.Fatal("released lease still current")
	}
	if _, err := s.Renew(ctx, a, time.Second); !errors.Is(err, ErrLost) {
		t.Fatalf("renewing a released term: %v", err)
	}
	b, _, ok, err := s.Acquire(ctx, "ramp:r", "a", 5*time.Second)
	if err != nil || !ok || b.Epoch != 2 {
		t.Fatalf("acquire after release: %v %v %v", b, ok, err)
	}
	if err := s.Fenced(ctx, a, func(pgx.Tx) error { return nil }); !errors.Is(err, ErrFenced) {
		t.Fatalf("old term of the same holder: %v, want ErrFenced", err)
	}
	if _, _, _, err := s.Acquire(ctx, "", "a", time.Second); err == nil {
		t.Fatal("empty name accepted")
	}
}

// TestHelperElector is the holder process TestKilledHolderTakenOver kills:
// it runs an elector on PGLEASE_HELPER_URL and prints each gain, for at
// most 60 s.
func TestHelperElector(t *testing.T) {
	url := os.Getenv("PGLEASE_HELPER_URL")
	if url == "" {
		t.Skip("the holder process of TestKilledHolderTakenOver")
	}
	e, err := NewElector(newStore(t, url), Config{
		Holder: "child", Names: []string{"ramp:r"}, TTL: testTTL, RenewEvery: testRenew, Margin: testMargin,
		OnChange: func(ev Event) {
			if ev.Held {
				fmt.Printf("gained %d\n", ev.Token.Epoch)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.Run(ctx)
}

// A holder process killed with SIGKILL (no release) is replaced once its
// term expires: not before TTL - RenewEvery (it renewed at most
// RenewEvery before dying) and within TTL + RenewEvery + slack, by the
// next epoch.
func TestKilledHolderTakenOver(t *testing.T) {
	url := pgtest.Start(t).NewDatabase()
	s := newStore(t, url)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperElector$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PGLEASE_HELPER_URL="+url)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	gained := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "gained ") {
				gained <- sc.Text()
				return
			}
		}
		close(gained)
	}()
	select {
	case line, ok := <-gained:
		if !ok {
			t.Fatal("the holder process exited without holding")
		}
		t.Logf("child: %s", line)
	case <-time.After(10 * time.Second):
		t.Fatal("the holder process did not gain the lease in 10 s")
	}
	// The follower starts only now, so the child is the first holder.
	b := startInstance(t, url, "b", testTTL, testRenew, "ramp:r")
	old, _, ok, err := s.Current(context.Background(), "ramp:r")
	if err != nil || !ok || old.Holder != "child" {
		t.Fatalf("before the kill: %v %v %v", old, ok, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	waitHolder(t, []*instance{b}, "ramp:r", testTTL+testRenew+slack)
	took := time.Since(t0)
	tok, _ := b.e.Held("ramp:r")
	t.Logf("takeover after kill -9 in %v (TTL %v, renew %v)", took, testTTL, testRenew)
	if took < testTTL-testRenew-100*time.Millisecond {
		t.Fatalf("took over after %v, before the term could expire", took)
	}
	if tok.Epoch != old.Epoch+1 || tok.Holder != "b" {
		t.Fatalf("new term %v after %v", tok, old)
	}
}

// A clean stop releases: the other instance takes over at its next
// attempt, well before the TTL.
func TestReleaseHandsOverImmediately(t *testing.T) {
	url := pgtest.Start(t).NewDatabase()
	const ttl = 4 * time.Second
	ins := []*instance{
		startInstance(t, url, "a", ttl, testRenew, "ramp:r"),
		startInstance(t, url, "b", ttl, testRenew, "ramp:r"),
	}
	h := waitHolder(t, ins, "ramp:r", testRenew+slack)
	t0 := time.Now()
	ins[h].stop()
	if _, ok := ins[h].e.Held("ramp:r"); ok {
		t.Fatal("stopped instance still holds")
	}
	waitHolder(t, []*instance{ins[1-h]}, "ramp:r", testRenew+slack)
	took := time.Since(t0)
	t.Logf("takeover after a release in %v (TTL %v)", took, ttl)
	if took >= ttl/2 {
		t.Fatalf("takeover after release took %v", took)
	}
}

// The database stops: the holder reports the loss before its term could
// expire (it cannot renew), nobody holds during the outage; when the
// database is back, exactly one instance holds again.
func TestOutageStepsDownAndRecovers(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase()
	ins := []*instance{
		startInstance(t, url, "a", testTTL, testRenew, "ramp:r"),
		startInstance(t, url, "b", testTTL, testRenew, "ramp:r"),
	}
	h := waitHolder(t, ins, "ramp:r", testRenew+slack)
	c.Stop()
	stopped := time.Now() // the last renewal started before this
	deadline := stopped.Add(testTTL - testMargin)
	for time.Now().Before(stopped.Add(2 * testTTL)) {
		if got := holders(ins, "ramp:r"); len(got) > 0 && time.Now().After(deadline) {
			t.Fatalf("instances %v still hold %v after the database stopped", got, time.Since(stopped))
		}
		time.Sleep(20 * time.Millisecond)
	}
	ins[h].mu.Lock()
	lostAt, ok := ins[h].lostAt["ramp:r"]
	ins[h].mu.Unlock()
	if !ok {
		t.Fatal("the holder never reported the loss")
	}
	// Reported by the deadline (Margin before the earliest expiry), with
	// the slack of a loaded machine kept below the Margin itself.
	if late := lostAt.Sub(deadline); late > testMargin {
		t.Fatalf("loss reported %v after the deadline", late)
	}
	if ins[h].e.Errors() == 0 {
		t.Fatal("no errors counted during the outage")
	}
	c.Restart()
	waitHolder(t, ins, "ramp:r", testTTL+testRenew+5*time.Second)
	for range 20 { // and it stays single
		if got := holders(ins, "ramp:r"); len(got) > 1 {
			t.Fatalf("held by %v at once after restart", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var errStale = errors.New("stale rules version")

// step is the ramp driver's write: one transaction that fences the token
// and compare-and-sets the rules version, with its audit row.
func step(ctx context.Context, s *Store, tok Token, from int64, percent int) error {
	return s.Fenced(ctx, tok, func(tx pgx.Tx) error {
		var v int64
		err := tx.QueryRow(ctx, `UPDATE test_rules SET version = version + 1, percent = $2
			WHERE id = 1 AND version = $1 RETURNING version`, from, percent).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return errStale
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO test_steps (version, percent, driver, epoch) VALUES ($1, $2, $3, $4)`,
			v, percent, tok.Holder, tok.Epoch)
		return err
	})
}

func readRules(t *testing.T, s *Store) (version int64, percent int) {
	t.Helper()
	if err := s.pool.QueryRow(context.Background(), `SELECT version, percent FROM test_rules WHERE id = 1`).Scan(&version, &percent); err != nil {
		t.Fatal(err)
	}
	return
}

// Driver A holds and steps; A pauses (no renewal, still has its token);
// B takes over after A's term expires, re-reads the rules (A's step is
// there) and steps on; A's late step is refused by the fence, a step from
// an old version by the compare-and-set; the audit has each step once.
func TestStaleDriverIsFenced(t *testing.T) {
	url := pgtest.Start(t).NewDatabase()
	ctx := context.Background()
	s := newStore(t, url)
	if _, err := s.pool.Exec(ctx, `
CREATE TABLE test_rules (id INT PRIMARY KEY, version BIGINT NOT NULL, percent INT NOT NULL);
INSERT INTO test_rules VALUES (1, 0, 0);
CREATE TABLE test_steps (version BIGINT PRIMARY KEY, percent INT NOT NULL, driver TEXT NOT NULL, epoch BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	a, _, ok, err := s.Acquire(ctx, "ramp:r", "a", testTTL)
	if err != nil || !ok {
		t.Fatalf("A acquire: %v %v", ok, err)
	}
	if _, _, ok, _ := s.Acquire(ctx, "ramp:r", "b", testTTL); ok {
		t.Fatal("B acquired a held lease")
	}
	v, _ := readRules(t, s)
	if err := step(ctx, s, a, v, 10); err != nil {
		t.Fatalf("A's step: %v", err)
	}
	// A pauses past its term; nobody has taken over yet, and still A's
	// write is refused: the term expired by the database's clock.
	time.Sleep(testTTL + 100*time.Millisecond)
	if err := step(ctx, s, a, 1, 25); !errors.Is(err, ErrFenced) {
		t.Fatalf("A's step after expiry: %v, want ErrFenced", err)
	}
	b := startInstance(t, url, "b", testTTL, testRenew, "ramp:r")
	waitHolder(t, []*instance{b}, "ramp:r", testRenew+slack)
	bt, _ := b.e.Held("ramp:r")
	if bt.Epoch != a.Epoch+1 {
		t.Fatalf("B's term %v after A's %v", bt, a)
	}
	bv, bp := readRules(t, s)
	if bv != 1 || bp != 10 {
		t.Fatalf("B reads version %d at %d%%, want A's step (1, 10%%)", bv, bp)
	}
	if err := step(ctx, s, bt, bv, 25); err != nil {
		t.Fatalf("B's step: %v", err)
	}
	// A wakes up believing it still drives, with the step it computed
	// from version 1: refused by the fence.
	if err := step(ctx, s, a, 1, 25); !errors.Is(err, ErrFenced) {
		t.Fatalf("A's late step: %v, want ErrFenced", err)
	}
	if _, err := s.Renew(ctx, a, testTTL); !errors.Is(err, ErrLost) {
		t.Fatalf("A's renewal: %v, want ErrLost", err)
	}
	// B itself, replaying a step from the old version (say after a retry
	// whose commit it did not see): refused by the compare-and-set.
	if err := step(ctx, s, bt, 1, 25); !errors.Is(err, errStale) {
		t.Fatalf("B's repeated step: %v, want the CAS to refuse it", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT version, percent, driver, epoch FROM test_steps ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var v, e int64
		var p int
		var d string
		rows.Scan(&v, &p, &d, &e)
		got = append(got, fmt.Sprintf("v%d %d%% %s#%d", v, p, d, e))
	}
	if want := fmt.Sprint([]string{"v1 10% a#1", "v2 25% b#2"}); fmt.Sprint(got) != want {
		t.Fatalf("steps %v, want %s", got, want)
	}
	if v, p := readRules(t, s); v != 2 || p != 25 {
		t.Fatalf("rules at version %d, %d%%", v, p)
	}
}

// Fence holds the lease row until the transaction ends: a takeover that
// comes while the holder's step is in flight waits for its commit, and
// the new holder then sees the step.
func TestFenceBlocksTakeoverUntilCommit(t *testing.T) {
	url := pgtest.Start(t).NewDatabase()
	ctx := context.Background()
	s := newStore(t, url)
	a, _, ok, err := s.Acquire(ctx, "ramp:r", "a", testTTL)
	if err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := Fence(ctx, tx, a); err != nil {
		t.Fatal(err)
	}
	time.Sleep(testTTL + 100*time.Millisecond) // A's term expires mid-transaction
	type res struct {
		tok Token
		ok  bool
		err error
		at  time.Time
	}
	got := make(chan res, 1)
	go func() {
		tok, _, ok, err := s.Acquire(ctx, "ramp:r", "b", testTTL)
		got <- res{tok, ok, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case r := <-got:
		t.Fatalf("B acquired while A's fenced transaction was open: %+v", r)
	default:
	}
	committed := time.Now()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || !r.ok || r.tok.Epoch != a.Epoch+1 || r.at.Before(committed) {
		t.Fatalf("B after A's commit: %+v", r)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, c := range []Config{
		{Names: []string{"x"}},                   // no holder
		{Holder: "a"},                            // no names
		{Holder: "a", Names: []string{"x", "x"}}, // repeated
		{Holder: "a", Names: []string{"x"}, RenewEvery: 9 * time.Second}, // renew ≥ TTL - Margin
	} {
		if _, err := NewElector(nil, c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := NewElector(nil, Config{Holder: "a", Names: []string{"x"}}); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}
