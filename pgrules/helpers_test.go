package pgrules

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tandem-proxy/tandem/internal/pgtest"
	"github.com/tandem-proxy/tandem/rules"
)

func seedRoutes() []rules.Route {
	a := rules.DefaultRoute()
	a.Name, a.Legacy, a.New = "images", "legacy", "new"
	b := rules.DefaultRoute()
	b.Name, b.Legacy = "static", "legacy"
	return []rules.Route{a, b}
}

// instance is one Store on its own pool, with the versions its
// subscriber saw.
type instance struct {
	*Store
	mu   sync.Mutex
	seen []int64
}

func (in *instance) versions() []int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]int64(nil), in.seen...)
}

// open opens a Store named name on url; the test's cleanup closes it.
func open(t *testing.T, url, name string, o Options) *instance {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	o.Instance = name
	if o.Seed == nil {
		o.Seed = seedRoutes()
	}
	s, err := Open(context.Background(), pool, o)
	if err != nil {
		pool.Close()
		t.Fatalf("open %s: %v", name, err)
	}
	in := &instance{Store: s}
	t.Cleanup(func() { s.Close(); pool.Close() })
	s.Subscribe(func(r rules.Rules) {
		in.mu.Lock()
		in.seen = append(in.seen, r.Version)
		in.mu.Unlock()
	})
	return in
}

// conn is a connection of the test's own, apart from the stores' pools.
func conn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// within waits until cond holds, for at most d, and returns how long it
// took; it fails the test when cond never holds.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func serveNew(s *instance, route string) float64 {
	for _, r := range s.Current().Routes {
		if r.Name == route {
			return r.ServeNew
		}
	}
	return -1
}

// inOrder checks that vs increases.
func inOrder(t *testing.T, name string, vs []int64) {
	t.Helper()
	for i := 1; i < len(vs); i++ {
		if vs[i] <= vs[i-1] {
			t.Fatalf("%s's subscriber saw versions %v: not in order", name, vs)
		}
	}
}

// killListener terminates the LISTEN connection of instance name and
// waits until it is gone.
func killListener(t *testing.T, c *pgx.Conn, name string) {
	t.Helper()
	var n int
	within(t, 5*time.Second, "listener connection present", func() bool {
		c.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", listenerName(name)).Scan(&n)
		return n == 1
	})
	if _, err := c.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", listenerName(name)); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "listener connection gone", func() bool {
		c.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", listenerName(name)).Scan(&n)
		return n == 0
	})
}

// database starts a cluster for the test (pgtest: a cluster per test, since
// pgtest ties a cluster to the test that started it) and returns it with
// the URL of a new database.
func database(t *testing.T) (*pgtest.Cluster, string) {
	t.Helper()
	c := pgtest.Start(t)
	return c, c.NewDatabase()
}
