package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/backends"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// headBackend is a keep-alive HTTP/1.1 server on 127.0.0.1 that records the
// request line and header lines of every request exactly as they arrived on
// the wire, reads a Content-Length body, and answers 200 "ok".
type headBackend struct {
	addr string
	mu   sync.Mutex
	reqs [][]string // per request: request line, then header lines
	got  chan struct{}
}

func startHeadBackend(t *testing.T) *headBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &headBackend{addr: ln.Addr().String(), got: make(chan struct{}, 1024)}
	var wg sync.WaitGroup
	var conns []net.Conn
	closed := false
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		b.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			if closed {
				c.Close()
			}
			conns = append(conns, c)
			b.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.serveConn(c)
			}()
		}
	}()
	return b
}

func (b *headBackend) serveConn(c net.Conn) {
	defer c.Close()
	tp := textproto.NewReader(bufio.NewReader(c))
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var lines []string
		for {
			l, err := tp.ReadLine()
			if err != nil {
				return
			}
			if l == "" {
				break
			}
			lines = append(lines, l)
		}
		n := 0
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Content-Length") {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if _, err := tp.R.Discard(n); err != nil {
			return
		}
		b.mu.Lock()
		b.reqs = append(b.reqs, lines)
		b.mu.Unlock()
		b.got <- struct{}{}
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
			return
		}
	}
}

// wait waits for n more requests, at most 10 s.
func (b *headBackend) wait(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-b.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("backend %s: %d of %d requests arrived", b.addr, i, n)
		}
	}
}

func (b *headBackend) requests() [][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]string(nil), b.reqs...)
}

// header returns the values of header name in one recorded request.
func header(req []string, name string) []string {
	var out []string
	for _, l := range req[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// unsendableConfig serves every path by new (serve_new 100) with a breaker
// that opens after 5 consecutive failures, and mirrors everything to legacy.
const unsendableConfig = `
listen: 127.0.0.1:0
data_dir: {{data}}
limits: {max_body: 64KiB}
backends:
  legacy: {url: "{{legacy}}", timeout: 5s}
  new:    {url: "{{new}}", timeout: 5s, breaker: {consecutive_failures: 5, open_for: 1m}}
routes:
  - name: all
    match: {path_prefix: /}
    legacy: legacy
    new: new
    serve_new: 100
    mirror: 100
`

// rawStatus sends raw on a fresh connection and returns the status line and
// the body of the answer.
func rawStatus(t *testing.T, addr, raw string) (status, body string) {
	t.Helper()
	out := rawExchange(t, addr, raw)
	status = firstLine(out)
	if _, b, ok := strings.Cut(out, "\r\n\r\n"); ok {
		body = b
	}
	return status, body
}

// The requests of issue 18 item 7 — HTTP/1.0 without Host, and an
// absolute-form target whose scheme is not the backend's — got 502 without
// a byte sent, and 20 of them opened new's breaker. Now each reaches new in
// origin-form with the path exactly as sent and a Host (the backend's when
// the client gave none, the target's authority for absolute-form), the
// shadow copy reaches legacy with legacy's Host, and new's breaker, errors
// and fallbacks do not move.
func TestHostlessAndAbsoluteFormAreForwarded(t *testing.T) {
	legacy, newb := startHeadBackend(t), startHeadBackend(t)
	f := startProxy(t, unsendableConfig, map[string]string{"legacy": "http://" + legacy.addr, "new": "http://" + newb.addr})
	cases := []struct {
		why, raw            string
		line, host, fwdHost string // what the backend must get; fwdHost "" = no X-Forwarded-Host
		shadowHost          string // Host of the copy legacy gets
	}{
		{"HTTP/1.0 without Host gets the backend's host:port",
			"GET / HTTP/1.0\r\n\r\n",
			"GET / HTTP/1.1", newb.addr, "", legacy.addr},
		{"absolute-form https to an http backend is reduced to origin-form, path kept",
			"GET https://b//x HTTP/1.1\r\nHost: ignored.example\r\nConnection: close\r\n\r\n",
			"GET //x HTTP/1.1", "b", "b", "b"},
		{"absolute-form with a query and a port, HTTP/1.0 without Host",
			"GET http://Media.Example:8080/a/b?c=d&e HTTP/1.0\r\n\r\n",
			"GET /a/b?c=d&e HTTP/1.1", "Media.Example:8080", "Media.Example:8080", "Media.Example:8080"},
		{"absolute-form without a path gets /",
			"GET http://b?q=1 HTTP/1.0\r\n\r\n",
			"GET /?q=1 HTTP/1.1", "b", "b", "b"},
		{"a double-slash origin-form target that looks scheme-relative is kept whole",
			"GET //a/http://evil.example/ HTTP/1.1\r\nHost: Front.Example\r\nConnection: close\r\n\r\n",
			"GET //a/http://evil.example/ HTTP/1.1", "Front.Example", "Front.Example", "Front.Example"},
	}
	const rounds = 4 // 20 requests in all, as in the report
	for r := 0; r < rounds; r++ {
		for _, c := range cases {
			st, body := rawStatus(t, f.addr, c.raw)
			if st != "HTTP/1.1 200 OK" || body != "ok" {
				t.Errorf("round %d, %s: got %q %q, want new's 200 ok", r, c.why, st, body)
				continue
			}
			newb.wait(t, 1)
			legacy.wait(t, 1) // the shadow copy
			gotNew := newb.requests()
			req := gotNew[len(gotNew)-1]
			if req[0] != c.line {
				t.Errorf("%s: new got %q, want %q", c.why, req[0], c.line)
			}
			if h := header(req, "Host"); len(h) != 1 || h[0] != c.host {
				t.Errorf("%s: new got Host %q, want exactly %q", c.why, h, c.host)
			}
			if h := header(req, "X-Forwarded-Host"); (c.fwdHost == "" && len(h) != 0) || (c.fwdHost != "" && (len(h) != 1 || h[0] != c.fwdHost)) {
				t.Errorf("%s: new got X-Forwarded-Host %q, want %q", c.why, h, c.fwdHost)
			}
			gotLegacy := legacy.requests()
			sh := gotLegacy[len(gotLegacy)-1]
			if sh[0] != c.line {
				t.Errorf("%s: the shadow copy went out as %q, want %q", c.why, sh[0], c.line)
			}
			if h := header(sh, "Host"); len(h) != 1 || h[0] != c.shadowHost {
				t.Errorf("%s: the shadow copy got Host %q, want %q", c.why, h, c.shadowHost)
			}
		}
	}
	n := float64(rounds * len(cases))
	if st := f.srv.Breakers()["new"]; st != backends.StateClosed {
		t.Errorf("new's breaker is %v, want closed", st)
	}
	for _, c := range []struct {
		name string
		want float64
	}{
		{`tandem_requests_total{route="all",served_by="new"}`, n},
		{`tandem_requests_total{route="all",served_by="tandem"}`, 0},
		{`tandem_fallback_total{route="all"}`, 0},
		{`tandem_client_errors_total{status="502"}`, 0},
	} {
		if got := f.metric(c.name); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	for _, b := range []string{"legacy", "new"} {
		for _, r := range errorReasons {
			name := fmt.Sprintf(`tandem_backend_errors_total{route="all",backend=%q,reason=%q}`, b, r)
			if got := f.metric(name); got != 0 {
				t.Errorf("%s = %v, want 0", name, got)
			}
		}
	}
}

// What tandem cannot forward it refuses itself with 400 and a plain-text
// reason: no backend gets a byte, no breaker hears of it (new serves every
// request and its breaker opens after 5 failures; 20 refusals leave it
// closed), no backend error is counted, and each refusal is a request
// served by tandem.
func TestUnsendableTargetsRefused(t *testing.T) {
	legacy, newb := startHeadBackend(t), startHeadBackend(t)
	f := startProxy(t, unsendableConfig, map[string]string{"legacy": "http://" + legacy.addr, "new": "http://" + newb.addr})
	cases := []struct{ why, raw, reason string }{
		{"a scheme tandem does not speak", "GET ftp://b/x HTTP/1.1\r\nHost: b\r\n\r\n", "the scheme is not http or https"},
		{"absolute-form without a host", "GET http:///x HTTP/1.1\r\nHost: b\r\n\r\n", "absolute-form without a host"},
		{"user info in the target", "GET http://user:pw@b/x HTTP/1.1\r\nHost: b\r\n\r\n", "invalid host"},
	}
	const rounds = 7 // 21 refusals
	for r := 0; r < rounds; r++ {
		for _, c := range cases {
			st, body := rawStatus(t, f.addr, c.raw)
			if st != "HTTP/1.1 400 Bad Request" || !strings.HasPrefix(body, "tandem: cannot forward this request target: ") || !strings.Contains(body, c.reason) {
				t.Fatalf("%s: got %q %q, want 400 saying %q", c.why, st, body, c.reason)
			}
		}
	}
	// A request that can be forwarded is still served by new: the breaker
	// never opened, so there is no fallback.
	if st, body := rawStatus(t, f.addr, "GET /ok HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"); st != "HTTP/1.1 200 OK" || body != "ok" {
		t.Fatalf("after the refusals: %q %q", st, body)
	}
	newb.wait(t, 1)
	legacy.wait(t, 1)
	if got := newb.requests(); len(got) != 1 || got[0][0] != "GET /ok HTTP/1.1" {
		t.Errorf("new received %q, want only GET /ok", got)
	}
	if st := f.srv.Breakers()["new"]; st != backends.StateClosed {
		t.Errorf("new's breaker is %v, want closed", st)
	}
	refused := float64(rounds * len(cases))
	for _, c := range []struct {
		name string
		want float64
	}{
		{`tandem_requests_total{route="all",served_by="tandem"}`, refused},
		{`tandem_requests_total{route="all",served_by="new"}`, 1},
		{`tandem_fallback_total{route="all"}`, 0},
		{`tandem_client_errors_total{status="400"}`, refused},
	} {
		if got := f.metric(c.name); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	for _, r := range errorReasons {
		name := fmt.Sprintf(`tandem_backend_errors_total{route="all",backend="new",reason=%q}`, r)
		if got := f.metric(name); got != 0 {
			t.Errorf("%s = %v, want 0", name, got)
		}
	}
	c := f.srv.Counters()["all"]
	if c.ServedTandem != int64(refused) || c.Errors.Tandem != int64(refused) || c.Errors.New != 0 || c.Requests() != int64(refused)+1 {
		t.Errorf("route counters %+v, want %v refusals served by tandem and one request served by new", c, refused)
	}
}

// A client whose body tandem refuses (over max_body: 413) is not new's
// failure: with new serving every request and a breaker that opens after 5
// failures, 8 refused bodies leave it closed and new's error counters at 0.
func TestRefusedBodyNotChargedToBreaker(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, unsendableConfig, map[string]string{"legacy": legacy.URL, "new": newb.URL})
	const n = 8
	for i := 0; i < n; i++ {
		// Chunked, so the size is only known once 64 KiB have gone by:
		// new has been sent part of the body when tandem stops.
		st, _, _, _ := f.post("/upload", tb.PatternReader(int64(i), 1<<20), -1, nil)
		if st != 413 {
			t.Fatalf("request %d: status %d, want 413", i, st)
		}
	}
	if st := f.srv.Breakers()["new"]; st != backends.StateClosed {
		t.Errorf("new's breaker is %v after %d refused bodies, want closed", st, n)
	}
	for _, r := range errorReasons {
		name := fmt.Sprintf(`tandem_backend_errors_total{route="all",backend="new",reason=%q}`, r)
		if got := f.metric(name); got != 0 {
			t.Errorf("%s = %v, want 0", name, got)
		}
	}
	if got := f.metric(`tandem_requests_total{route="all",served_by="tandem"}`); got != n {
		t.Errorf("requests served by tandem = %v, want %d", got, n)
	}
	// And new still serves.
	st, _, _, _ := f.post("/upload", strings.NewReader("small"), 5, nil)
	if st != 200 || f.metric(`tandem_fallback_total{route="all"}`) != 0 {
		t.Errorf("after the refusals: status %d, fallbacks %v; want new's 200 and no fallback", st, f.metric(`tandem_fallback_total{route="all"}`))
	}
}

// When new refuses the connection and legacy serves instead, a request
// without Host reaches legacy with legacy's host:port, not new's.
func TestHostlessFallbackGetsLegacyHost(t *testing.T) {
	legacy := startHeadBackend(t)
	f := startProxy(t, unsendableConfig, map[string]string{"legacy": "http://" + legacy.addr, "new": tb.ClosedURL(t)})
	if st, body := rawStatus(t, f.addr, "GET /x HTTP/1.0\r\n\r\n"); st != "HTTP/1.1 200 OK" || body != "ok" {
		t.Fatalf("got %q %q, want legacy's 200 ok", st, body)
	}
	legacy.wait(t, 1)
	req := legacy.requests()[0]
	if h := header(req, "Host"); req[0] != "GET /x HTTP/1.1" || len(h) != 1 || h[0] != legacy.addr {
		t.Errorf("legacy got %q with Host %q, want GET /x with Host %s", req[0], h, legacy.addr)
	}
	if got := f.metric(`tandem_fallback_total{route="all"}`); got != 1 {
		t.Errorf("fallbacks = %v, want 1", got)
	}
}

// An https backend gets its requests: the outbound URI carries the
// backend's scheme. Before, fasthttp's client refused every request to an
// https backend before dialing (ErrHostClientRedirectToDifferentScheme: the
// URI said http), 502 "failed: protocol", charged to the backend. The test
// backend's certificate is not one the client trusts, so the exchange fails
// at the handshake, the backend's own failure; that the TLS handshake began
// shows the request was on its way.
func TestHTTPSBackendIsDialed(t *testing.T) {
	var hellos atomic.Int64
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	ts.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		hellos.Add(1)
		return nil, nil
	}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are expected
	ts.StartTLS()
	t.Cleanup(ts.Close)
	cfg := strings.ReplaceAll(basicConfig, "mirror: 100", "mirror: 0")
	f := startProxy(t, cfg, map[string]string{"legacy": ts.URL, "new": ts.URL})
	const n = 3
	for i := 0; i < n; i++ {
		st, body := rawStatus(t, f.addr, "GET /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if st != "HTTP/1.1 502 Bad Gateway" || !strings.HasPrefix(body, "tandem: backend legacy failed: ") {
			t.Fatalf("got %q %q, want legacy's own failure (an untrusted certificate)", st, body)
		}
	}
	if got := hellos.Load(); got < n {
		t.Errorf("the https backend saw %d TLS handshakes for %d requests", got, n)
	}
}
