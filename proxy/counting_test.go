package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/faultbackend"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// countingConfig: route up is served by a healthy legacy, route down by a
// legacy that refuses connections; both mirror everything to new.
const countingConfig = `
listen: 127.0.0.1:0
data_dir: {{data}}
backends:
  legacy: {url: "{{legacy}}", timeout: 5s}
  dead:   {url: "{{dead}}", timeout: 5s}
  new:    {url: "{{new}}", timeout: 5s}
routes:
  - {name: up,   match: {path_prefix: /upload}, legacy: legacy, new: new, mirror: 100}
  - {name: down, match: {path_prefix: /down},   legacy: dead,   new: new, mirror: 100}
`

// Under concurrent traffic, with shadows finishing after their served
// requests, every snapshot of a route's counters has requests ≥ mirrored,
// and so does the difference of any two (what a flush to the store and a
// report window add up). The 502s of the dead legacy are requests served by
// legacy and errors, never mirrored: before, they counted as mirrored
// (shadow outcome error) and not as requests.
func TestCountersRequestsCoverMirrored(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash, Delay: 2 * time.Millisecond})
	f := startProxy(t, countingConfig, map[string]string{"legacy": legacy.URL, "new": newb.URL, "dead": tb.ClosedURL(t)})

	const workers, each = 6, 40
	var load sync.WaitGroup
	var mu sync.Mutex
	statuses := map[string]map[int]int{}
	for w := 0; w < workers; w++ {
		load.Add(1)
		go func(w int) {
			defer load.Done()
			for i := 0; i < each; i++ {
				route, path := "up", "/upload"
				if i%4 == 3 {
					route, path = "down", "/down"
				}
				resp, err := f.client.Post(f.url+path, "text/plain", strings.NewReader(fmt.Sprint(w, i)))
				if err != nil {
					t.Errorf("POST %s: %v", path, err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				if statuses[route] == nil {
					statuses[route] = map[int]int{}
				}
				statuses[route][resp.StatusCode]++
				mu.Unlock()
			}
		}(w)
	}
	done := make(chan struct{})
	go func() { load.Wait(); close(done) }()

	prev := map[string]RouteCounters{}
	snapshots := 0
	check := func() {
		for name, c := range f.srv.Counters() {
			if c.Mirrored > c.Requests() {
				t.Errorf("route %s: snapshot %d has requests %d below mirrored %d", name, snapshots, c.Requests(), c.Mirrored)
			}
			p := prev[name]
			if dm, dr := c.Mirrored-p.Mirrored, c.Requests()-p.Requests(); dm > dr || dr < 0 || dm < 0 {
				t.Errorf("route %s: between snapshots %d and %d, requests grew %d and mirrored %d", name, snapshots-1, snapshots, dr, dm)
			}
			prev[name] = c
		}
		snapshots++
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			check()
			time.Sleep(100 * time.Microsecond) // sampling pace, not synchronisation
		}
	}
	check()
	t.Logf("%d snapshots checked", snapshots)

	const down = workers * each / 4
	const up = workers*each - down
	if statuses["up"][http.StatusOK] != up || statuses["down"][http.StatusBadGateway] != down {
		t.Fatalf("clients got %v", statuses)
	}
	c := f.srv.Counters()
	if u := c["up"]; u.Requests() != up || u.ServedLegacy != up || u.Mirrored != up || u.Errors.Total() != 0 {
		t.Errorf("route up: %+v, want %d requests served by legacy and mirrored, no errors", u, up)
	}
	if d := c["down"]; d.Requests() != down || d.ServedLegacy != down || d.Mirrored != 0 || d.Errors.Legacy != down || d.Errors.Total() != down {
		t.Errorf("route down: %+v, want %d requests served by legacy, each an error, none mirrored", d, down)
	}
	for _, m := range []struct {
		name string
		want float64
	}{
		{`tandem_requests_total{route="up",served_by="legacy"}`, up},
		{`tandem_requests_total{route="down",served_by="legacy"}`, down},
		{`tandem_requests_total{route="down",served_by="tandem"}`, 0},
		{`tandem_backend_errors_total{route="down",backend="dead",reason="connect"}`, down},
	} {
		if got := f.metric(m.name); got != m.want {
			t.Errorf("%s = %v, want %v", m.name, got, m.want)
		}
	}
}

// A served answer whose body breaks off after legacy's status (legacy resets
// the connection 1000 bytes into a 64 KiB body; the client gets a short body,
// or nothing when the status was still in tandem's buffer) is an error the
// client got: the request counts as legacy's, as an error, and as a reset of
// legacy in tandem_backend_errors_total. Before, it counted as a success and
// no backend error.
func TestBodyBrokenOffIsAnError(t *testing.T) {
	legacy := faultbackend.Start(t, faultbackend.Mode{Kind: faultbackend.KindResetResponse, N: 1000, Body: make([]byte, 64<<10)})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, strings.ReplaceAll(basicConfig, "mirror: 100", "mirror: 0"), map[string]string{"legacy": legacy.URL, "new": newb.URL})
	const n = 3
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for i := 0; i < n; i++ {
		resp, err := client.Post(f.url+"/upload", "text/plain", strings.NewReader("x"))
		if err != nil {
			// The status and the first bytes were still in tandem's write
			// buffer when the body broke: the client got nothing at all.
			continue
		}
		_, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || rerr == nil {
			t.Fatalf("request %d: status %d, body error %v; want 200 and a body cut short", i, resp.StatusCode, rerr)
		}
	}
	// The count lands when fasthttp closes the body stream, just after the
	// client saw the connection end.
	f.waitMetric(`tandem_backend_errors_total{route="up",backend="legacy",reason="reset"}`, n)
	c := f.srv.Counters()["up"]
	if c.Requests() != n || c.ServedLegacy != n || c.Errors.Legacy != n || c.Errors.Total() != n {
		t.Errorf("counters %+v, want %d requests served by legacy, each an error", c, n)
	}
}
