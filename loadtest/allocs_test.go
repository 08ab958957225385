package loadtest

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestHitAllocations: once a worker's connection is up, a hit with a body
// and a user id allocates next to nothing, in the attacker or in the
// client, so the generator's garbage does not shape its latencies. The
// backend is a fasthttp server, which allocates nothing per request
// either, since AllocsPerRun counts the whole process.
func TestHitAllocations(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) { c.WriteString("ok") }}
	go srv.Serve(ln)
	defer srv.Shutdown()

	bodies, _ := SyntheticBodies([]int64{100, 2000})
	a, err := NewAttacker(&Targets{URL: "http://" + ln.Addr().String() + "/upload", Bodies: bodies, UserHeader: "X-User-Id", Users: 100},
		Options{Concurrency: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a.began = time.Now()
	w := a.newWorker()
	n := uint64(0)
	hit := func() {
		w.fire(n, time.Now())
		n++
	}
	hit() // connect
	allocs := testing.AllocsPerRun(500, hit)
	t.Logf("%.2f allocations per hit", allocs)
	if allocs > 1 {
		t.Errorf("a hit allocates %.1f times, want at most 1", allocs)
	}
	if a.col.errs[ErrOther] != 0 || a.col.status[200] != n {
		t.Errorf("status %v errors %v after %d hits", a.col.status, a.col.errs, n)
	}
}
