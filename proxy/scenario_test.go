package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/faultbackend"
	"github.com/tandem-proxy/tandem/internal/testbackend"
)

// scenarioConfig is faultConfig with legacy's timeout as %s (5 s, or 0.5 s
// where a slow legacy must get its 504), a hung shadow cut at 1 s, and the
// shadow breaker's threshold as %d. Two healthy echo backends match (their
// answers differ only in Date, X-Backend and whether they saw a shadow).
const scenarioConfig = `
listen: 127.0.0.1:0
data_dir: {{data}}
limits: {compare_max_body: 1MiB}
backends:
  legacy: {url: "{{legacy}}", timeout: %s}
  new:
    url: "{{new}}"
    timeout: 1s
    breaker: {consecutive_failures: %d, open_for: 10s}
routes:
  - name: up
    match: {path_prefix: /upload}
    legacy: legacy
    new: new
    mirror: 100
    compare: {ignore_headers: [Date, X-Backend], ignore_json: ["$.shadow"]}
`

// scenarioSide is one backend of a scenario: a fault backend in a mode, the
// echo-hash test backend, or a refused port.
type scenarioSide struct {
	fault   *faultbackend.Mode // nil: testbackend KindEchoHash, unless down
	down    bool               // a port that refuses connections
	started interface{ ids() []string }
	url     string
}

type faultSide struct{ *faultbackend.Backend }

func (s faultSide) ids() []string {
	var out []string
	for _, r := range s.Received() {
		out = append(out, r.RequestID)
	}
	return out
}

type echoSide struct{ *testbackend.Backend }

func (s echoSide) ids() []string {
	var out []string
	for _, r := range s.Received() {
		out = append(out, r.RequestID)
	}
	return out
}

type noSide struct{}

func (noSide) ids() []string { return nil }

func (s *scenarioSide) start(t *testing.T, name string) {
	switch {
	case s.down:
		s.url, s.started = testbackend.ClosedURL(t), noSide{}
	case s.fault != nil:
		b := faultbackend.Start(t, *s.fault)
		s.url, s.started = b.URL, faultSide{b}
	default:
		b := testbackend.Start(t, name, testbackend.Mode{Kind: testbackend.KindEchoHash})
		s.url, s.started = b.URL, echoSide{b}
	}
}

// countIDs counts how many times each request id was received.
func countIDs(ids []string) map[string]int {
	m := map[string]int{}
	for _, id := range ids {
		m[id]++
	}
	return m
}

// abortUpload sends the headers and the first 256 KiB of a 1 MiB body with
// request id id, and closes the connection. (fasthttp reads the first 8 KiB
// of a body before it calls the handler: a client that leaves before that is
// never routed, so no backend sees it and nothing is counted. And tandem
// writes to a backend through a 72 KiB buffer: a client that leaves before
// filling it is never seen by legacy either. 256 KiB gets past both, so
// legacy sees the start of every upload before the client leaves.)
func abortUpload(addr, id string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: t\r\nX-Request-Id: %s\r\nContent-Length: %d\r\n\r\n", id, 1<<20); err != nil {
		return err
	}
	_, err = io.Copy(c, testbackend.PatternReader(1, 256<<10))
	return err
}

// Each fault scenario, N requests from 10 concurrent clients. Nothing is
// lost: every client request gets exactly one answer of the expected kind,
// legacy receives each request exactly once, the shadow never receives a
// request more than once nor one that legacy did not, every request's
// shadow decision is counted once (tandem_shadow_total sums to N), and
// every shadow that ran yields exactly one comparison.
func TestScenarios(t *testing.T) {
	const n, clients = 50, 10
	endless := faultbackend.Mode{Kind: faultbackend.KindEndlessChunked, Body: make([]byte, 32<<10)}
	scenarios := []struct {
		name           string
		legacy, shadow scenarioSide
		breaker        int    // consecutive shadow failures that open the breaker
		legacyTimeout  string // legacy's timeout; "" means 5s, long enough for a loaded -race run
		abort          bool   // the client leaves mid-upload
		status         int    // the status every client gets; 200: legacy's exact bytes
		legacyFails    bool   // no shadow is dispatched (the served side failed)
		shadowEach     int    // 1: the shadow backend receives each id once; 0: at most once
	}{
		{name: "healthy", status: 200, breaker: 1000000, shadowEach: 1},
		{name: "shadow down", shadow: scenarioSide{down: true}, status: 200, breaker: 1000000},
		{name: "shadow down, breaker opens", shadow: scenarioSide{down: true}, status: 200, breaker: 3},
		{name: "shadow hung", shadow: scenarioSide{fault: &faultbackend.Mode{Kind: faultbackend.KindHang}}, status: 200, breaker: 1000000, shadowEach: 1},
		{name: "shadow reset mid-request-body", shadow: scenarioSide{fault: &faultbackend.Mode{Kind: faultbackend.KindResetBody, N: 1000}}, status: 200, breaker: 1000000, shadowEach: 1},
		{name: "shadow reset mid-response-body", shadow: scenarioSide{fault: &faultbackend.Mode{Kind: faultbackend.KindResetResponse, N: 100, Body: make([]byte, 4096)}}, status: 200, breaker: 1000000, shadowEach: 1},
		{name: "shadow garbage", shadow: scenarioSide{fault: &faultbackend.Mode{Kind: faultbackend.KindGarbage}}, status: 200, breaker: 1000000, shadowEach: 1},
		{name: "shadow huge/endless", shadow: scenarioSide{fault: &endless}, status: 200, breaker: 1000000, shadowEach: 1},
		{name: "legacy down (502)", legacy: scenarioSide{down: true}, status: 502, breaker: 1000000, legacyFails: true},
		{name: "legacy slow (504)", legacy: scenarioSide{fault: &faultbackend.Mode{Kind: faultbackend.KindLatency, Delay: time.Second}}, status: 504, breaker: 1000000, legacyTimeout: "500ms", legacyFails: true},
		{name: "client abort mid-upload", abort: true, breaker: 1000000, legacyFails: true},
	}
	var table []string
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			sc.legacy.start(t, "legacy")
			sc.shadow.start(t, "new")
			timeout := sc.legacyTimeout
			if timeout == "" {
				timeout = "5s"
			}
			f := startProxy(t, fmt.Sprintf(scenarioConfig, timeout, sc.breaker), map[string]string{"legacy": sc.legacy.url, "new": sc.shadow.url})

			var (
				wg        sync.WaitGroup
				mu        sync.Mutex
				responses = map[string]int{} // id → answers of the expected kind
				problems  = map[string]string{}
			)
			for w := 0; w < clients; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; i < n; i += clients {
						id := fmt.Sprintf("scn-%02d", i)
						if sc.abort {
							if err := abortUpload(f.addr, id); err != nil {
								mu.Lock()
								problems[id] = err.Error()
								mu.Unlock()
							}
							continue
						}
						body := bytes.Repeat([]byte{byte('a' + i%26)}, 4<<10+i)
						st, got, _, err := f.postExact(body, id)
						mu.Lock()
						switch {
						case err != nil:
							problems[id] = err.Error()
						case st != sc.status:
							problems[id] = fmt.Sprintf("status %d, want %d", st, sc.status)
						case st == 200 && !bytes.Equal(got, echoHashBytes(t, body, id, "/upload")):
							problems[id] = fmt.Sprintf("body %q is not legacy's", got)
						default:
							responses[id]++
						}
						mu.Unlock()
					}
				}(w)
			}
			wg.Wait()

			// Every request's shadow decision is counted once, and then
			// nothing is in flight any more.
			outcomes := f.waitShadowSum(n)
			f.waitIdle()
			if _, sum := f.shadowOutcomes(); sum != n {
				t.Errorf("shadow outcomes %v sum to %v, want %d", outcomes, sum, n)
			}
			// Every shadow that ran (sent, or failed in flight) yields one
			// comparison; one refused by the breaker is a counted drop.
			wantCmp := outcomes[exchange.Sent] + outcomes[exchange.Error]
			if sc.legacyFails {
				wantCmp = 0 // the served side failed: nothing is dispatched
				if outcomes[exchange.Error] != n {
					t.Errorf("shadow outcomes %v, want error = %d (the served side failed)", outcomes, n)
				}
			}
			cmp := f.waitCompareSum(wantCmp)

			legacyIDs := countIDs(sc.legacy.started.ids())
			shadowIDs := countIDs(sc.shadow.started.ids())
			if !sc.legacy.down {
				// The legacy recorder logs a request when it stops reading its
				// body; an aborted upload's may come a little after the client left.
				pollUntil(10*time.Second, func() bool { return len(sc.legacy.started.ids()) >= n })
				legacyIDs = countIDs(sc.legacy.started.ids())
			}
			for id, k := range shadowIDs {
				if k > 1 {
					t.Errorf("shadow received %s %d times", id, k)
				}
				if legacyIDs[id] == 0 && !sc.legacy.down {
					t.Errorf("%s was sent only to the shadow", id)
				}
			}
			if sc.legacyFails && len(shadowIDs) > 0 {
				t.Errorf("the shadow received %d requests whose served side failed", len(shadowIDs))
			}

			lost, legacyGot, answered := 0, 0, 0
			var lostIDs []string
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("scn-%02d", i)
				legacyGot += legacyIDs[id]
				answered += responses[id]
				ok := problems[id] == ""
				if !sc.abort && responses[id] != 1 {
					ok = false
				}
				if wantLegacy := map[bool]int{true: 0, false: 1}[sc.legacy.down]; legacyIDs[id] != wantLegacy {
					ok = false
					problems[id] += fmt.Sprintf("; legacy received it %d times, want %d", legacyIDs[id], wantLegacy)
				}
				if sc.shadowEach == 1 && shadowIDs[id] != 1 {
					ok = false
					problems[id] += fmt.Sprintf("; shadow received it %d times, want 1", shadowIDs[id])
				}
				if !ok {
					lost++
					lostIDs = append(lostIDs, id+": "+strings.TrimPrefix(problems[id], "; "))
				}
			}
			sort.Strings(lostIDs)
			for _, p := range lostIDs {
				t.Error(p)
			}
			var oc []string
			for _, o := range exchange.Outcomes {
				if v := outcomes[o]; v > 0 {
					oc = append(oc, fmt.Sprintf("%s=%v", o, v))
				}
			}
			var cc []string
			for _, r := range compareResults {
				if v := cmp[string(r)]; v > 0 {
					cc = append(cc, fmt.Sprintf("%s=%v", r, v))
				}
			}
			row := fmt.Sprintf("%-31s | %4d | %9d | %6d | %6d | %-28s | %-16s | %d",
				sc.name, n, answered, legacyGot, len(shadowIDs), strings.Join(oc, " "), strings.Join(cc, " "), lost)
			t.Log(row)
			mu.Lock()
			table = append(table, row)
			mu.Unlock()
			if lost != 0 {
				t.Errorf("%d of %d requests lost", lost, n)
			}
		})
	}
	t.Logf("scenario table:\n%-31s | %4s | %9s | %6s | %6s | %-28s | %-16s | %s\n%s",
		"scenario", "sent", "responses", "legacy", "shadow", "shadow outcomes", "comparisons", "lost", strings.Join(table, "\n"))
}
