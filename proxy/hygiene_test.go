package proxy

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// underscoreRequest carries headers whose names contain underscores: a
// forged shadow marker and request id, a forged X-Forwarded-For, a
// hop-by-hop header in disguise, and an ordinary one.
const underscoreRequest = "POST /upload HTTP/1.1\r\n" +
	"Host: media.example\r\n" +
	"X_Tandem_Shadow: 1\r\n" +
	"x_request_id: forged-id\r\n" +
	"X_Forwarded_For: 10.6.6.6\r\n" +
	"Transfer_Encoding: chunked\r\n" +
	"X_Custom_Thing: a\r\n" +
	"X-Kept: yes\r\n" +
	"Content-Length: 3\r\nConnection: close\r\n\r\nabc"

// received waits for one request on each backend and returns them.
func receivedBoth(t *testing.T, legacy, newb *tb.Backend) []tb.Received {
	t.Helper()
	if !legacy.WaitCount(1, 30*time.Second) || !newb.WaitCount(1, 30*time.Second) {
		t.Fatalf("legacy got %d requests and new %d, want 1 each", legacy.Count(), newb.Count())
	}
	return []tb.Received{legacy.Received()[0], newb.Received()[0]}
}

// By default (client.underscores_in_headers: false) a header whose name has
// an underscore never reaches a backend, as with nginx's default: a CGI,
// WSGI, Rack or PHP legacy would read X_Tandem_Shadow as X-Tandem-Shadow
// and treat a served request as a shadow.
func TestUnderscoreHeadersDropped(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, basicConfig, map[string]string{"legacy": legacy.URL, "new": newb.URL})
	out := rawExchange(t, f.addr, underscoreRequest)
	if !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Fatalf("got %q", firstLine(out))
	}
	for i, r := range receivedBoth(t, legacy, newb) {
		for name := range r.Header {
			if strings.Contains(name, "_") {
				t.Errorf("backend %d got %s: %q", i, name, r.Header[name])
			}
		}
		if r.Header.Get("X-Kept") != "yes" || r.BodySize != 3 || r.Header.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Errorf("backend %d: end-to-end parts lost: %+v", i, r)
		}
		if r.RequestID == "forged-id" {
			t.Errorf("backend %d got the forged request id", i)
		}
	}
	if legacy.Received()[0].Shadow || !newb.Received()[0].Shadow {
		t.Errorf("shadow marker: legacy %v new %v, want false and true", legacy.Received()[0].Shadow, newb.Received()[0].Shadow)
	}
}

// client.underscores_in_headers: true keeps ordinary names with
// underscores, but never one that reads as tandem's own or a hop-by-hop
// header once '_' is taken for '-'.
func TestUnderscoreHeadersKept(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, basicConfig+"client: {underscores_in_headers: true}\n", map[string]string{"legacy": legacy.URL, "new": newb.URL})
	out := rawExchange(t, f.addr, underscoreRequest)
	if !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Fatalf("got %q", firstLine(out))
	}
	for i, r := range receivedBoth(t, legacy, newb) {
		var names []string
		for name := range r.Header {
			if strings.Contains(name, "_") {
				names = append(names, name)
			}
		}
		if len(names) != 1 || !strings.EqualFold(names[0], "X_Custom_Thing") || r.Header.Get(names[0]) != "a" {
			t.Errorf("backend %d: headers with underscores %q, want only X_Custom_Thing: a", i, names)
		}
		if r.RequestID == "forged-id" || r.Header.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Errorf("backend %d: request id %q, X-Forwarded-For %q", i, r.RequestID, r.Header.Get("X-Forwarded-For"))
		}
	}
	if legacy.Received()[0].Shadow {
		t.Errorf("legacy took the served request for a shadow")
	}
}

// FuzzScanHeaders: scanHeaders (the smuggling guard) never panics, never
// allocates once its scratch has grown, and what it accepts is what it
// claims: every line a "name: value" with no whitespace in the name, at
// most one Content-Length value and never with Transfer-Encoding, and the
// underscore flag set exactly when a name has '_'. Seeds are header blocks
// from the framing, hop-by-hop and underscore tests and a browser's upload.
func FuzzScanHeaders(f *testing.F) {
	for _, s := range []string{
		"Host: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"Host: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"Host: x\r\nContent-Length: 5, 5\r\n\r\n",
		"Host: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"Host: x\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n",
		"Host: x\r\nContent-Length : 5\r\n\r\n",
		"Host: media.example\r\nConnection: keep-alive, X-Forwarded-For, X-Secret\r\nConnection: X-Other\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nTE: trailers\r\nX-Secret: s\r\nContent-Length: 3\r\n\r\n",
		"Host: media.example\r\nX_Tandem_Shadow: 1\r\nx_request_id: forged-id\r\nTransfer_Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"Host: 127.0.0.1:8080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nContent-Type: multipart/form-data; boundary=---------------------------3126426384\r\nContent-Length: 58231\r\nOrigin: http://127.0.0.1:8080\r\nConnection: keep-alive\r\nCookie: session=abc\r\n\r\n",
		"Host: x\nContent-Length: 1\n\n",
	} {
		f.Add([]byte(s))
	}
	m := &reqMeta{scratch: make([]byte, 0, 64)}
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := scanHeaders(raw, m)
		if m.nTokens > maxConnTokens {
			t.Fatalf("%d Connection tokens kept, at most %d", m.nTokens, maxConnTokens)
		}
		if err != nil {
			return
		}
		if n := testing.AllocsPerRun(3, func() { scanHeaders(raw, m) }); n != 0 {
			t.Fatalf("%.1f allocations scanning %q", n, raw)
		}
		var cl [][]byte
		te, under := 0, false
		for _, line := range strings.Split(string(raw), "\n") {
			line = strings.TrimSuffix(line, "\r")
			if line == "" {
				continue
			}
			name, value, ok := strings.Cut(line, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") || line[0] == ' ' || line[0] == '\t' {
				t.Fatalf("accepted the line %q", line)
			}
			under = under || strings.Contains(name, "_")
			switch strings.ToLower(name) {
			case "content-length":
				cl = append(cl, []byte(strings.TrimSpace(value)))
			case "transfer-encoding":
				te++
			}
		}
		if under != m.underscores {
			t.Fatalf("underscores = %v for %q", m.underscores, raw)
		}
		if te > 1 || te > 0 && len(cl) > 0 {
			t.Fatalf("accepted %d Transfer-Encoding and %d Content-Length in %q", te, len(cl), raw)
		}
		for _, v := range cl {
			if string(v) != string(cl[0]) || !allDigits(v) || len(v) == 0 {
				t.Fatalf("accepted Content-Length %q in %q", cl, raw)
			}
		}
	})
}

// catchAllConfig mirrors every request on every path, so that anything not
// refused reaches both backends.
const catchAllConfig = `
listen: 127.0.0.1:0
data_dir: {{data}}
backends:
  legacy: {url: "{{legacy}}", timeout: 5s}
  new:    {url: "{{new}}", timeout: 5s}
routes:
  - name: all
    legacy: legacy
    new: new
    mirror: 100
`

// Request lines nginx 1.22 refuses are refused the same way (status as
// nginx answered each of them, probed on 127.0.0.1), with the connection
// closed, and neither forwarded nor mirrored. Before, each reached legacy
// and new.
func TestRequestLineRefusals(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, catchAllConfig, map[string]string{"legacy": legacy.URL, "new": newb.URL})
	cases := []struct {
		why, line string
		status    int
	}{
		{"CONNECT to an authority: nginx cannot parse the target", "CONNECT example.com:443 HTTP/1.1", 400},
		{"CONNECT with a path: nginx 405", "CONNECT /upload HTTP/1.1", 405},
		{"TRACE echoes credentials: nginx 405", "TRACE /upload HTTP/1.1", 405},
		{"asterisk form: nginx 400", "OPTIONS * HTTP/1.1", 400},
		{"lower-case method: nginx 400", "get /upload HTTP/1.1", 400},
		{"mixed-case method: nginx 400", "Post /upload HTTP/1.1", 400},
		{"digit in a method: nginx 400", "GET1 /upload HTTP/1.1", 400},
		{"HTTP/2.0 request line: nginx 505", "GET /upload HTTP/2.0", 505},
		{"HTTP/3.0: nginx 505", "GET /upload HTTP/3.0", 505},
		{"HTTP/0.9 with headers: nginx 400", "GET /upload HTTP/0.9", 400},
	}
	for _, c := range cases {
		out := rawExchange(t, f.addr, c.line+"\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
		if !strings.HasPrefix(out, fmt.Sprintf("HTTP/1.1 %d ", c.status)) || !strings.Contains(out, "Connection: close") {
			t.Errorf("%s: %q got %q, want %d and a closed connection", c.why, c.line, out, c.status)
		}
	}
	// What nginx takes, tandem takes: an extension method, OPTIONS on a
	// path, HTTP/1.0, and HTTP/1.2 (read as 1.1).
	for _, line := range []string{"PURGE /upload HTTP/1.1", "MKCOL_X /upload HTTP/1.1", "OPTIONS /upload HTTP/1.1", "GET /upload HTTP/1.0", "GET /upload HTTP/1.2"} {
		out := rawExchange(t, f.addr, line+"\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(out, "HTTP/1.1 200 ") {
			t.Errorf("%q got %q, want 200", line, firstLine(out))
		}
	}
	if !legacy.WaitCount(5, 10*time.Second) || !newb.WaitCount(5, 10*time.Second) {
		t.Fatalf("legacy got %d and new %d requests, want the 5 accepted ones", legacy.Count(), newb.Count())
	}
	for _, b := range []*tb.Backend{legacy, newb} {
		if b.Count() != 5 {
			t.Errorf("%s received %d requests, want 5", b.Name, b.Count())
		}
		for _, r := range b.Received() {
			switch r.Method {
			case "PURGE", "MKCOL_X", "OPTIONS", "GET":
			default:
				t.Errorf("%s received %s %s", b.Name, r.Method, r.Path)
			}
		}
	}
	if got := f.metric(`tandem_client_errors_total{status="505"}`); got != 2 {
		t.Errorf(`tandem_client_errors_total{status="505"} = %v, want 2`, got)
	}
	if got := f.metric(`tandem_client_errors_total{status="405"}`); got != 2 {
		t.Errorf(`tandem_client_errors_total{status="405"} = %v, want 2`, got)
	}
}

// exchangeTimed writes raw on a new connection, reads until the server
// closes it or 5 s pass, and returns the answer and how long it took.
func exchangeTimed(t *testing.T, addr, raw string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	out := rawExchange(t, addr, raw)
	return out, time.Since(start)
}

// A declared Content-Length over limits.max_body is answered 413 as soon as
// the headers are in, without waiting for a body byte (fasthttp pre-read
// 8 KiB of body before the handler ran, so a client that waits, as an
// Expect-less curl does not, got its 413 only when the body came or after
// client.body_timeout). A header block ended by bare LFs is answered 400 at
// once, not 408 after client.header_timeout. Neither reaches a backend.
func TestImmediateRefusals(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfg := strings.Replace(hostileConfig, "{{client}}", "{header_timeout: 30s, body_timeout: 30s}", 1)
	cfg = strings.Replace(cfg, "limits: {spool_memory: 64KiB}", "limits: {spool_memory: 64KiB, max_body: 1KiB}", 1)
	f := startProxy(t, cfg, map[string]string{"legacy": legacy.URL, "new": newb.URL})
	cases := []struct {
		why, raw string
		status   int
	}{
		{"Content-Length over max_body, no body byte sent", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413},
		{"Content-Length over max_body, part of the body sent", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nabc", 413},
		{"huge Content-Length", "PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n", 413},
		{"bare LF throughout", "GET /upload HTTP/1.1\nHost: x\n\n", 400},
		{"bare LF ends the block", "GET /upload HTTP/1.1\r\nHost: x\r\n\n", 400},
		{"bare LF on one header line", "GET /upload HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", 400},
		{"bare LF after the request line", "GET /upload HTTP/1.1\nHost: x\r\n\r\n", 400},
	}
	for _, c := range cases {
		out, took := exchangeTimed(t, f.addr, c.raw)
		if !strings.HasPrefix(out, fmt.Sprintf("HTTP/1.1 %d ", c.status)) || took > 2*time.Second ||
			c.status == 400 && !strings.Contains(out, "tandem: request header lines must end with CRLF") {
			t.Errorf("%s: got %q after %v, want %d at once", c.why, firstLine(out), took.Round(time.Millisecond), c.status)
		}
	}
	// Within the limit, a slow body is still waited for and forwarded.
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello")
	time.Sleep(300 * time.Millisecond) // the rest of the body comes later; the proxy must wait for it
	io.WriteString(c, "world")
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200 ") {
		t.Fatalf("a slow body within the limit got %q", firstLine(string(b)))
	}
	if !legacy.WaitCount(1, 10*time.Second) {
		t.Fatal("legacy did not get the slow body")
	}
	if r := legacy.Received()[0]; legacy.Count() != 1 || !r.Complete || r.BodySize != 10 {
		t.Fatalf("legacy got %d requests, first %+v", legacy.Count(), r)
	}
}

// A backend answering with bare-LF header lines is still relayed: the
// bare-LF refusal (third_party/fasthttp patch 4) is for client requests
// only, never for the responses tandem reads as a client. (A block of LF
// lines ended by LF LF, not CRLF CRLF, is another matter: fasthttp's client
// waits for a CRLFCRLF that never comes and the request times out, as it
// did before patch 4.) Several answers
// on one kept-alive backend connection, so a reused response header shows
// any state left over from the one before.
func TestBareLFResponseRelayed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for i := 0; ; i++ {
					n, err := c.Read(buf)
					if err != nil || n == 0 {
						return
					}
					// One request per read is enough for these small GETs.
					var answer string
					if i%2 == 0 {
						answer = "HTTP/1.1 200 OK\nContent-Type: text/plain\nX-Long-Header-To-Grow-The-Block: " + strings.Repeat("v", 200) + "\nContent-Length: 2\r\n\r\nok"
					} else {
						answer = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes"
					}
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}(c)
		}
	}()
	f := startProxy(t, `
data_dir: {{data}}
backends: {legacy: {url: "http://`+ln.Addr().String()+`", timeout: 5s}}
routes: [{name: r, legacy: legacy}]
`, nil)
	for i := 0; i < 6; i++ {
		resp, err := f.client.Get(f.url + "/x")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "ok"
		if i%2 == 1 {
			want = "yes"
		}
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, b, want)
		}
	}
}
