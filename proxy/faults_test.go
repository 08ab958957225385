package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/faultbackend"
	"github.com/tandem-proxy/tandem/internal/testbackend"
	"github.com/valyala/fasthttp"
)

// faultConfig is basicConfig with a short shadow timeout and a breaker that
// is lenient (never opens in these tests) unless the test says otherwise.
// compare_max_body is 1 MiB (not 32): a shadow flooding its answer is cut
// there, and sixteen of them reading 32 MiB each at loopback speed, hashed,
// against a flooding backend in this same process, take this 2-core
// machine's CPU for most of a second.
const faultConfig = `
listen: 127.0.0.1:0
data_dir: {{data}}
limits: {compare_max_body: 1MiB}
backends:
  legacy: {url: "{{legacy}}", timeout: 5s}
  new:
    url: "{{new}}"
    timeout: 2s
    breaker: {consecutive_failures: %d, open_for: 1s}
routes:
  - name: up
    match: {path_prefix: /upload}
    legacy: legacy
    new: new
    mirror: 100
`

// shadowSum returns every shadow outcome of route "up" and their sum.
func (f *fixture) shadowOutcomes() (map[exchange.Outcome]float64, float64) {
	out := map[exchange.Outcome]float64{}
	sum := 0.0
	for _, o := range exchange.Outcomes {
		v := f.metric(shadowMetric("up", o))
		out[o] = v
		sum += v
	}
	return out, sum
}

// waitShadowSum polls until the shadow outcomes of route "up" sum to n.
func (f *fixture) waitShadowSum(n float64) map[exchange.Outcome]float64 {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, sum := f.shadowOutcomes()
		if sum >= n {
			return got
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("shadow outcomes %v sum to %v, want %v", got, sum, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// compareOutcomes returns every comparison result of route "up" and their sum.
func (f *fixture) compareOutcomes() (map[string]float64, float64) {
	out := map[string]float64{}
	sum := 0.0
	for _, r := range compareResults {
		v := f.metric(fmt.Sprintf(`tandem_compare_total{route="up",result=%q}`, r))
		out[string(r)] = v
		sum += v
	}
	return out, sum
}

// waitCompareSum polls until the comparisons of route "up" sum to at least
// n, then checks that they sum to exactly n (one per finished shadow).
func (f *fixture) waitCompareSum(n float64) map[string]float64 {
	f.t.Helper()
	var got map[string]float64
	var sum float64
	pollUntil(30*time.Second, func() bool { got, sum = f.compareOutcomes(); return sum >= n })
	if sum != n {
		f.t.Errorf("comparisons %v sum to %v, want %v", got, sum, n)
	}
	return got
}

// waitIdle polls until no shadow request is in flight. (waitMetric waits for
// a metric to reach at least a value, so it cannot wait for zero.)
func (f *fixture) waitIdle() {
	f.t.Helper()
	if !pollUntil(30*time.Second, func() bool { return f.metric("tandem_shadow_in_flight") == 0 }) {
		f.t.Fatalf("tandem_shadow_in_flight = %v after 30 s", f.metric("tandem_shadow_in_flight"))
	}
}

// echoHashBytes is exactly what testbackend's KindEchoHash answers.
func echoHashBytes(t *testing.T, body []byte, id, path string) []byte {
	t.Helper()
	sum := sha256.Sum256(body)
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(testbackend.EchoHashResponse{
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body)), RequestID: id, Method: "POST", Path: path,
	}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// postExact posts body with request id and returns status, body and latency.
func (f *fixture) postExact(body []byte, id string) (int, []byte, time.Duration, error) {
	req, err := http.NewRequest("POST", f.url+"/upload", bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("X-Request-Id", id)
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	return resp.StatusCode, got, time.Since(start), err
}

// With the shadow in each fault mode, every client gets legacy's exact bytes
// without waiting for its shadow, and every request's shadow outcome is
// counted exactly once.
func TestFaultShadowModesServeUnaffected(t *testing.T) {
	tests := []struct {
		name  string
		mode  faultbackend.Mode
		want  exchange.Outcome // the shadow outcome of every request
		holds bool             // the shadow holds each request for at least 1 s
	}{
		{"latency below the timeout is sent", faultbackend.Mode{Kind: faultbackend.KindLatency, Delay: time.Second}, exchange.Sent, true},
		{"bandwidth-limited answer is sent", faultbackend.Mode{Kind: faultbackend.KindBandwidth, BytesPerSec: 4096, Body: bytes.Repeat([]byte("b"), 2048)}, exchange.Sent, false},
		{"slow close is sent", faultbackend.Mode{Kind: faultbackend.KindSlowClose, Delay: time.Second}, exchange.Sent, false}, // the answer is complete before the close
		{"hang times out as an error", faultbackend.Mode{Kind: faultbackend.KindHang}, exchange.Error, true},
		{"reset mid-request-body is an error", faultbackend.Mode{Kind: faultbackend.KindResetBody, N: 1000}, exchange.Error, false},
		{"reset mid-response is an error", faultbackend.Mode{Kind: faultbackend.KindResetResponse, N: 100, Body: make([]byte, 4096)}, exchange.Error, false},
		{"garbage is an error", faultbackend.Mode{Kind: faultbackend.KindGarbage}, exchange.Error, false},
		{"truncated response is an error", faultbackend.Mode{Kind: faultbackend.KindTruncated, N: 100, Body: make([]byte, 4096)}, exchange.Error, false},
		{"endless chunked trickle times out as an error", faultbackend.Mode{Kind: faultbackend.KindEndlessChunked, BytesPerSec: 64 << 10}, exchange.Error, true},
		// A flood once grew the heap to ~600 MiB (every shadow capture grew to
		// compare_max_body); limits.compare_memory now bounds that. It then
		// took the CPU of the served requests until the 2 s timeout; now the
		// shadow stops reading past max(compare_max_body, 2 × served size)
		// and records a size mismatch.
		{"endless chunked flood is cut as a size mismatch", faultbackend.Mode{Kind: faultbackend.KindEndlessChunked, Body: make([]byte, 32<<10)}, exchange.Sent, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			legacy := testbackend.Start(t, "legacy", testbackend.Mode{Kind: testbackend.KindEchoHash})
			newb := faultbackend.Start(t, tc.mode)
			f := startProxy(t, fmt.Sprintf(faultConfig, 1000000), map[string]string{"legacy": legacy.URL, "new": newb.URL})
			const n, workers = 16, 4
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				errs []string
				slow time.Duration
			)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; i < n; i += workers {
						body := bytes.Repeat([]byte{byte('a' + i%26)}, 8<<10+i)
						id := fmt.Sprintf("fault-%02d", i)
						st, got, d, err := f.postExact(body, id)
						mu.Lock()
						slow = max(slow, d)
						switch want := echoHashBytes(t, body, id, "/upload"); {
						case err != nil:
							errs = append(errs, fmt.Sprintf("%s: %v", id, err))
						case st != 200 || !bytes.Equal(got, want):
							errs = append(errs, fmt.Sprintf("%s: status %d body %q, want legacy's %q", id, st, got, want))
						}
						mu.Unlock()
					}
				}(w)
			}
			wg.Wait()
			for _, e := range errs {
				t.Error(e)
			}
			t.Logf("slowest served request %v; endless body bytes sent to the shadow: %d KiB", slow, newb.EndlessBytes()>>10)
			// The served request never waits for its shadow. Where the shadow
			// holds each request for a second or more, every client has its
			// answer while every shadow is still running: had any served
			// request waited, its shadow's comparison would be counted by
			// now. (An ordering, not a wall-clock bound, so a loaded -race
			// run cannot fail it; the flood's cost is bounded by the bytes
			// it may send, asserted below.)
			if tc.holds {
				if _, done := f.compareOutcomes(); done != 0 {
					t.Errorf("%v shadows had finished when the last client got its answer (slowest %v): the shadow is on the critical path", done, slow)
				}
			}
			got := f.waitShadowSum(n)
			if got[tc.want] != n {
				t.Errorf("shadow outcomes %v, want %s = %d", got, tc.want, n)
			}
			if got[exchange.Sent]+got[exchange.Error] != n {
				t.Errorf("sent+error = %v, want every one of %d mirrored", got[exchange.Sent]+got[exchange.Error], n)
			}
			if v := f.metric(`tandem_requests_total{route="up",served_by="legacy"}`); v != n {
				t.Errorf("requests served by legacy = %v, want %d", v, n)
			}
			if legacy.Count() != n {
				t.Errorf("legacy received %d, want %d", legacy.Count(), n)
			}
			// The shadow got every request id, once.
			if !newb.WaitCount(n, 10*time.Second) {
				t.Fatalf("shadow received %d, want %d", newb.Count(), n)
			}
			seen := map[string]int{}
			for _, r := range newb.Received() {
				seen[r.RequestID]++
				if !r.Shadow {
					t.Errorf("%s reached the shadow without X-Tandem-Shadow", r.RequestID)
				}
			}
			for i := 0; i < n; i++ {
				if id := fmt.Sprintf("fault-%02d", i); seen[id] != 1 {
					t.Errorf("shadow received %s %d times, want 1", id, seen[id])
				}
			}
			f.waitIdle()
			if v := f.metric(`tandem_breaker_state{backend="new"}`); v != 0 {
				t.Errorf("lenient breaker state %v, want 0 (closed)", v)
			}
			// Every finished shadow yields exactly one comparison.
			cmp := f.waitCompareSum(n)
			if cut := strings.Contains(tc.name, "cut"); cut {
				// Cut at the bound: a body mismatch, charged to new once each,
				// after reading compare_max_body (1 MiB) each and no more.
				if cmp["mismatch"] != n {
					t.Errorf("comparisons %v, want mismatch = %d", cmp, n)
				}
				if v := f.metric(`tandem_backend_errors_total{route="up",backend="new",reason="protocol"}`); v != n {
					t.Errorf("new protocol errors = %v, want %d", v, n)
				}
				// 1 MiB read each, plus what socket buffers took: generous.
				t.Logf("the flood sent %d KiB in all", newb.EndlessBytes()>>10)
				if sent, bound := newb.EndlessBytes(), int64(n)*(16<<20); sent > bound {
					t.Errorf("the flood sent %d MiB, want at most %d MiB (the bound, plus buffers)", sent>>20, bound>>20)
				}
			} else if tc.want == exchange.Error && cmp["error"] != n {
				t.Errorf("comparisons %v, want error = %d", cmp, n)
			}
		})
	}
}

// The breaker opens after 3 consecutive shadow failures, skips shadows as
// breaker_open while open, and closes again once new is healthy after open_for.
func TestFaultBreakerOpensAndRecovers(t *testing.T) {
	legacy := testbackend.Start(t, "legacy", testbackend.Mode{Kind: testbackend.KindEchoHash})
	newb := faultbackend.Start(t, faultbackend.Mode{Kind: faultbackend.KindResetResponse, N: 10, Body: make([]byte, 100)})
	f := startProxy(t, fmt.Sprintf(faultConfig, 3), map[string]string{"legacy": legacy.URL, "new": newb.URL})
	const state = `tandem_breaker_state{backend="new"}`
	sent := 0
	post := func(id string) {
		t.Helper()
		body := []byte("breaker " + id)
		st, got, _, err := f.postExact(body, id)
		if err != nil || st != 200 || !bytes.Equal(got, echoHashBytes(t, body, id, "/upload")) {
			t.Fatalf("%s: status %d err %v body %q: served traffic affected", id, st, err, got)
		}
		sent++
		f.waitShadowSum(float64(sent)) // one at a time, so the order is known
	}
	for i := 0; i < 3; i++ {
		post(fmt.Sprintf("fail-%d", i))
	}
	openedAt := time.Now()
	if v := f.metric(state); v != 2 {
		t.Fatalf("breaker state after 3 failures = %v, want 2 (open)", v)
	}
	got, _ := f.shadowOutcomes()
	if got[exchange.Error] != 3 {
		t.Fatalf("outcomes %v, want error = 3", got)
	}
	// While open, shadows are skipped and counted, and new sees nothing.
	before := newb.Count()
	for i := 0; i < 5; i++ {
		post(fmt.Sprintf("open-%d", i))
	}
	got, _ = f.shadowOutcomes()
	if got[exchange.BreakerOpen] != 5 {
		t.Fatalf("outcomes %v, want breaker_open = 5", got)
	}
	if newb.Count() != before {
		t.Fatalf("new received %d requests while its breaker was open", newb.Count()-before)
	}
	// new recovers. After open_for (1 s from opening) the breaker reads
	// half-open; one probe goes through and its success closes it. Poll the
	// gauge (reading it is what moves gobreaker's clock), bounded.
	newb.SetMode(faultbackend.Mode{Kind: faultbackend.KindOK})
	if !pollUntil(5*time.Second, func() bool { return f.metric(state) == 1 }) {
		t.Fatalf("breaker state %v 5 s after opening, want 1 (half-open)", f.metric(state))
	}
	if d := time.Since(openedAt); d < 900*time.Millisecond {
		t.Fatalf("half-open %v after opening, want ≥ open_for (1s)", d)
	}
	got, _ = f.shadowOutcomes()
	post("probe")
	if v := f.metric(state); v != 0 {
		t.Fatalf("breaker state %v after a successful probe, want 0 (closed)", v)
	}
	got2, sum := f.shadowOutcomes()
	if got2[exchange.Sent] != got[exchange.Sent]+1 {
		t.Fatalf("outcomes %v after the probe, want one more sent than %v", got2, got)
	}
	// Closed again: the next shadows go through, and every request has
	// exactly one outcome.
	post("closed-again")
	got3, sum := f.shadowOutcomes()
	if got3[exchange.Sent] != got2[exchange.Sent]+1 || sum != float64(sent) {
		t.Fatalf("outcomes %v (sum %v over %d requests), want one more sent", got3, sum, sent)
	}
	if got3[exchange.Sent] != 2 || got3[exchange.Error] != 3 || got3[exchange.BreakerOpen] != 5 {
		t.Fatalf("outcomes %v, want sent 2, error 3, breaker_open 5", got3)
	}
	if newb.Count() != 5 {
		t.Fatalf("new received %d, want 5 (3 failures, probe, one more)", newb.Count())
	}
}

// A faulty LEGACY never yields a wrong-but-complete body: the client's
// connection is cut, or it gets a 502. And nothing is sent only to the shadow.
func TestFaultLegacyNeverWrongButComplete(t *testing.T) {
	full := bytes.Repeat([]byte("legacy-body-"), 1000) // 12000 bytes
	for _, tc := range []struct {
		name string
		mode faultbackend.Mode
	}{
		{"reset mid-response", faultbackend.Mode{Kind: faultbackend.KindResetResponse, N: 5000, Body: full}},
		{"truncated response", faultbackend.Mode{Kind: faultbackend.KindTruncated, N: 5000, Body: full}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			legacy := faultbackend.Start(t, tc.mode)
			newb := testbackend.Start(t, "new", testbackend.Mode{Kind: testbackend.KindEchoHash})
			f := startProxy(t, fmt.Sprintf(faultConfig, 1000000), map[string]string{"legacy": legacy.URL, "new": newb.URL})
			const n = 8
			cut, bad := 0, 0
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("legacy-fault-%d", i)
				st, got, _, err := f.postExact([]byte("x"), id)
				switch {
				case err != nil:
					cut++ // connection cut mid-body
				case st == 502:
					bad++
				default:
					t.Errorf("%s: complete response status %d with %d bytes (legacy sent %d of %d): want a cut or 502",
						id, st, len(got), tc.mode.N, len(full))
				}
			}
			t.Logf("cut %d, 502 %d", cut, bad)
			if !legacy.WaitCount(n, 5*time.Second) {
				t.Fatalf("legacy received %d, want %d", legacy.Count(), n)
			}
			f.waitShadowSum(n)
			f.waitIdle()
			legacyIDs := map[string]bool{}
			for _, r := range legacy.Received() {
				legacyIDs[r.RequestID] = true
			}
			for _, r := range newb.Received() {
				if !legacyIDs[r.RequestID] {
					t.Errorf("request %s was sent only to the shadow", r.RequestID)
				}
			}
			if newb.Count() > legacy.Count() {
				t.Errorf("new received %d > legacy's %d", newb.Count(), legacy.Count())
			}
			got, sum := f.shadowOutcomes()
			t.Logf("shadow outcomes %v", got)
			if sum != n {
				t.Errorf("shadow outcomes sum to %v, want %d", sum, n)
			}
		})
	}
}

// copyShadowBody reads a shadow body up to max(compare_max_body, 2 × served
// size), looking at the served side only past compare_max_body (its
// declared Content-Length when it is still being written, else a short
// wait), and reads limit+1 bytes of a body over the bound, no more.
func TestShadowBodyBound(t *testing.T) {
	const compareMax = 1 << 10
	s := &Server{compareMax: compareMax, captureMem: newMemBudget(1 << 20)}
	for _, tc := range []struct {
		name         string
		served       int64 // served size; < 0: the served side never completes
		declared     int64 // served Content-Length when it never completes; < 0: none
		shadow       int64
		wantOver     bool
		wantRead     int64
		wantWaitLong bool // gives up waiting for the served side
	}{
		{"under compare_max_body: no wait", -1, -1, compareMax, false, compareMax, false},
		{"over compare_max_body, under 2 × served", 3000, -1, 6000, false, 6000, false},
		{"over 2 × served", 3000, -1, 6001, true, 6001, false},
		{"endless, small served side", 10, -1, 1 << 30, true, compareMax + 1, false},
		{"served side stuck: compare_max_body", -1, -1, 1 << 30, true, compareMax + 1, true},
		{"served side stuck, length declared: no wait", -1, 3000, 6000, false, 6000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := &shadowJob{servedDone: make(chan struct{}), servedCap: newCapture(compareMax, s.captureMem)}
			if tc.declared >= 0 {
				h := &fasthttp.ResponseHeader{}
				h.SetContentLength(int(tc.declared))
				j.servedCap.setHeader(h)
			}
			if tc.served >= 0 {
				j.servedResp = &compare.Response{Size: tc.served}
				close(j.servedDone)
			} else {
				j.servedBy = time.Now().Add(time.Second) // a short bound, far above a loaded -race run's hiccups
			}
			c := newCapture(compareMax, s.captureMem)
			defer c.release()
			counted := &countingReader{r: testbackend.PatternReader(1, tc.shadow)}
			start := time.Now()
			over, err := s.copyShadowBody(j, c, counted, make([]byte, 300))
			if err != nil || over != tc.wantOver || counted.n != tc.wantRead || c.resp.Size != tc.wantRead {
				t.Fatalf("over %v err %v, read %d, size %d; want over %v, read %d",
					over, err, counted.n, c.resp.Size, tc.wantOver, tc.wantRead)
			}
			if waited := time.Since(start) >= time.Second; waited != tc.wantWaitLong {
				t.Fatalf("waited %v for the served side", time.Since(start))
			}
			if over {
				c.overBound(int(tc.shadow))
				r := c.finish("")
				if r.Size != tc.shadow || r.SHA256 != [32]byte{} || !r.Truncated() {
					t.Fatalf("cut capture: size %d hash %x truncated %v; want the declared size, no hash", r.Size, r.SHA256, r.Truncated())
				}
			}
		})
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
