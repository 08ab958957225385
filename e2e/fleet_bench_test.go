package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/app"
	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/internal/pgtest"
	"github.com/valyala/fasthttp"
)

// The fleet's claim that the database is off the request path, measured:
// the same traffic through two full instances (app.Open, real backends on
// 127.0.0.1, mirror 100 so every request becomes a comparison record), one
// alone (the embedded SQLite store and files in data_dir) and one with
// fleet.database set to a throw-away PostgreSQL cluster: its rules,
// registry, noise, ramps and diff store all in the database.
// The two are measured in alternating slices of the same run (A B, then
// B A, …), so a loaded machine slows both alike and the ratio holds.
//
// What fleet.database puts under the data plane is the diff store (Record
// and AddCounters on every request and every second); the rules history in
// PostgreSQL is not on the request path at all: the data plane serves the
// compiled rules it holds.

// benchFleetConfig: one mirrored route, the shadow queue wide enough that
// no shadow is skipped at the benchmark's concurrency.
const benchFleetConfig = `
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: %s
limits: {shadow_concurrency: 256}
backends: {legacy: {url: "%s"}, new: {url: "%s"}}
routes: [{name: r, match: {path_prefix: /upload}, legacy: legacy, new: new, mirror: 100}]
%s`

const (
	fleetBenchConns = 32   // concurrent clients, as bench/run.sh's wrk -c32
	fleetBenchSlice = 1024 // requests per measured slice
	fleetBenchBody  = 1 << 10
)

// benchBackend is a fasthttp backend that reads the body and answers a
// fixed small JSON (as proxy's benchmarks do), so the proxy is what costs.
func benchBackend(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"ok":true}`)
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go s.Serve(ln)
	b.Cleanup(func() { s.Shutdown() })
	return "http://" + ln.Addr().String()
}

// benchInstance is one running app.Instance and a client for its proxy.
type benchInstance struct {
	name   string
	in     *app.Instance
	client *fasthttp.HostClient
	dur    time.Duration
	reqs   int64 // requests in measured slices
	// cmpDropped is tandem_compare_dropped_total: pairs the compare
	// queue had no room for (a burst of 32 at a time can fill it).
	cmpDropped float64
}

// openBenchInstance opens and runs an instance in front of legacy and new;
// store nil is the default SQLite store.
func openBenchInstance(b *testing.B, name, legacy, newURL, extra string) *benchInstance {
	b.Helper()
	cfg, errs := config.Parse([]byte(fmt.Sprintf(benchFleetConfig, b.TempDir(), legacy, newURL, extra)))
	if len(errs) > 0 {
		b.Fatalf("config: %v", errs)
	}
	logs := &lockedWriter{b: &strings.Builder{}}
	in, err := app.Open(cfg, app.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		b.Fatalf("%s: app.Open: %v\n%s", name, err, logs.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := in.Run(ctx)
		if cerr := in.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	b.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("%s: serve: %v\n%s", name, err, logs.String())
			}
		case <-time.After(30 * time.Second):
			b.Errorf("%s: serve did not stop", name)
		}
	})
	return &benchInstance{name: name, in: in,
		client: &fasthttp.HostClient{Addr: in.Addr(), MaxConns: fleetBenchConns, ReadTimeout: 10 * time.Second}}
}

// slice sends n requests from fleetBenchConns clients and returns the wall
// time; every answer must be legacy's 200.
func (bi *benchInstance) slice(b *testing.B, n int) time.Duration {
	body := make([]byte, fleetBenchBody)
	for i := range body {
		body[i] = 'x'
	}
	var wg sync.WaitGroup
	errs := make(chan error, fleetBenchConns)
	start := time.Now()
	for c := 0; c < fleetBenchConns; c++ {
		k := n / fleetBenchConns
		if c < n%fleetBenchConns {
			k++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for j := 0; j < k; j++ {
				req.SetRequestURI("http://x/upload/bench")
				req.Header.SetMethod("POST")
				req.SetBody(body)
				if err := bi.client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					errs <- fmt.Errorf("%s: err %v, status %d", bi.name, err, resp.StatusCode())
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return d
}

// settle waits until the instance is idle — no shadow in flight, nothing
// on the compare queue or the diff store's queue, the comparison count
// steady — and the diff store has committed what it was given, so no
// slice inherits the previous one's background work. It fails on a record
// the diff store dropped or failed to write.
func (bi *benchInstance) settle(b *testing.B) {
	hc := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	last := -1.0
	for {
		resp, err := hc.Get("http://" + bi.in.AdminAddr() + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := metricSums(string(raw))
		done := m["tandem_compare_total"] + m["tandem_compare_dropped_total"]
		if m["tandem_shadow_in_flight"] == 0 && m["tandem_compare_queued"] == 0 && done == last {
			bi.cmpDropped = m["tandem_compare_dropped_total"]
			break
		}
		last = done
		if time.Now().After(deadline) {
			b.Fatalf("%s: not idle after 30s: %v", bi.name, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := bi.in.Store().Flush(); err != nil {
		b.Fatalf("%s: store flush: %v", bi.name, err)
	}
	if st := bi.in.Store().Stats(); st.Dropped != 0 || st.WriteErrors != 0 {
		b.Fatalf("%s: diff store dropped %d, write errors %d", bi.name, st.Dropped, st.WriteErrors)
	}
}

// metricSums adds up each family's samples on a /metrics page.
func metricSums(page string) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(page, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 && i < len(name) {
			name = line[:i]
			rest = line[strings.LastIndexByte(line, '}')+1:]
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			m[name] += v
		}
	}
	return m
}

// BenchmarkFleetDataPlane: requests/s through a full instance with the
// default SQLite diff store and with the fleet's PostgreSQL store, and
// their ratio (postgres/sqlite; the bar is >= 0.95). One op is one
// slice of fleetBenchSlice requests to each instance.
func BenchmarkFleetDataPlane(b *testing.B) {
	c := pgtest.Start(b) // skips without PostgreSQL (fails with CI=true)
	legacy, newURL := benchBackend(b), benchBackend(b)
	sqlite := openBenchInstance(b, "sqlite", legacy, newURL, "")
	postgres := openBenchInstance(b, "postgres", legacy, newURL,
		fmt.Sprintf("fleet: {database: %q, instance: bench-pg}\n", c.NewDatabase()))
	both := []*benchInstance{sqlite, postgres}
	for _, bi := range both { // warm-up: connections, schema, caches
		bi.slice(b, fleetBenchSlice)
		bi.settle(b)
	}
	b.ResetTimer()
	round := 0
	for b.Loop() {
		order := both
		if round%2 == 1 {
			order = []*benchInstance{postgres, sqlite}
		}
		round++
		for _, bi := range order {
			bi.dur += bi.slice(b, fleetBenchSlice)
			bi.reqs += fleetBenchSlice
			b.StopTimer()
			bi.settle(b)
			b.StartTimer()
		}
	}
	rate := func(bi *benchInstance) float64 { return float64(bi.reqs) / bi.dur.Seconds() }
	b.ReportMetric(rate(sqlite), "sqlite-req/s")
	b.ReportMetric(rate(postgres), "postgres-req/s")
	b.ReportMetric(rate(postgres)/rate(sqlite), "postgres/sqlite")
	b.ReportMetric(sqlite.cmpDropped, "sqlite-compare-dropped")
	b.ReportMetric(postgres.cmpDropped, "postgres-compare-dropped")
	b.ReportMetric(0, "ns/op") // one op is two slices and says nothing alone
}
