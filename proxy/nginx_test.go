package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/internal/realservers"
)

// needNginx skips the test when nginx or its image_filter module is not
// installed, and fails it when the environment says CI=true (where .ci/run
// installs them): internal/realservers' rule.
func needNginx(t *testing.T) { realservers.NeedNginx(t) }

// nginxServer is one nginx started by a test, with its own prefix
// (internal/realservers).
type nginxServer struct {
	*realservers.Nginx
	addr string
}

// startNginx starts nginx with the http-level directives httpConf and one
// server on 127.0.0.1 whose body is serverConf, and stops it at cleanup.
func startNginx(t *testing.T, httpConf, serverConf string) *nginxServer {
	t.Helper()
	n := realservers.StartNginx(t, httpConf+"\nserver {\n    listen {{.Listen}};\n"+serverConf+"\n}\n", nil)
	return &nginxServer{Nginx: n, addr: n.Addr}
}

// requests returns how many requests nginx has logged.
func (n *nginxServer) requests(t *testing.T) int { return len(n.Access(t, 0)) }

// step is one request of a sequence sent on one kept-alive connection.
type step struct {
	method, path string
	body         []byte
	gap          time.Duration // idle time before sending it
}

// answer is what the client got for one step.
type answer struct {
	status int
	body   string
	err    string
	close  bool // the answer said the connection closes (not compared)
}

// same compares what a client sees of two answers.
func (a answer) same(b answer) bool {
	return a.status == b.status && a.body == b.body && a.err == b.err
}

func (a answer) String() string {
	if a.err != "" {
		return "error: " + a.err
	}
	return fmt.Sprintf("%d %q", a.status, a.body)
}

// runSequence sends steps in order to addr on one kept-alive connection, as
// a browser or an HTTP library would: a new connection only when the server
// said it closes (or broke the connection), and reports each answer and how
// many connections were used.
func runSequence(t *testing.T, addr string, steps []step) (answers []answer, conns int) {
	t.Helper()
	var c net.Conn
	var br *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for _, s := range steps {
		if s.gap > 0 {
			time.Sleep(s.gap) // the idle gap is what is under test
		}
		var a answer
		for attempt := 0; attempt < 2; attempt++ {
			fresh := c == nil
			if fresh {
				var err error
				c, err = net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				br = bufio.NewReader(c)
				conns++
			}
			var gotByte bool
			a, gotByte = sendStep(c, br, addr, s)
			if a.err != "" || a.close {
				c.Close()
				c = nil
			}
			// As browsers and HTTP libraries do, a request that failed on a
			// kept-alive connection before any byte of an answer came is sent
			// once more on a new one: the server closed it while idle.
			if a.err == "" || fresh || gotByte {
				break
			}
		}
		answers = append(answers, a)
	}
	return answers, conns
}

// nginxPassConfig is one pass-through route (legacy only) to {{legacy}}.
const nginxPassConfig = `
listen: 127.0.0.1:0
data_dir: {{data}}
backends:
  legacy: {url: "{{legacy}}", timeout: 10s%s}
routes:
  - name: r
    match: {path_prefix: /}
    legacy: legacy
`

// nginxMirrorConfig is route r served by {{legacy}} and mirrored to {{new}}.
const nginxMirrorConfig = `
listen: 127.0.0.1:0
data_dir: {{data}}
backends:
  legacy: {url: "{{legacy}}", timeout: 10s%s}
  new:    {url: "{{new}}", timeout: 10s%s}
routes:
  - name: r
    match: {path_prefix: /}
    legacy: legacy
    new: new
    mirror: 100
`

func retriesMetric(route, backend, reason string) string {
	return fmt.Sprintf(`tandem_backend_retries_total{route=%q,backend=%q,reason=%q}`, route, backend, reason)
}

// retries sums route r's retries to backend over every reason.
func (f *fixture) retries(route, backend string) float64 {
	sum := 0.0
	for _, r := range backends.RetryReasons {
		sum += f.metric(retriesMetric(route, backend, string(r)))
	}
	return sum
}

// sendStep sends one step on c and reads its answer; gotByte says whether
// any byte of an answer arrived.
func sendStep(c net.Conn, br *bufio.Reader, addr string, s step) (a answer, gotByte bool) {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	req, _ := http.NewRequest(s.method, "http://"+addr+s.path, bytes.NewReader(s.body))
	if len(s.body) == 0 {
		req.Body = nil
		req.ContentLength = 0
	}
	werr := make(chan error, 1)
	go func() { werr <- req.Write(c) }() // a server may answer before reading the body
	defer func() { <-werr }()
	if _, err := br.Peek(1); err != nil {
		c.Close() // unblocks the writer
		return answer{err: err.Error()}, false
	}
	resp, err := http.ReadResponse(br, req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		a = answer{status: resp.StatusCode, body: string(b), close: resp.Close}
	}
	if err != nil {
		a = answer{err: err.Error()}
	}
	if a.err != "" || a.close {
		c.Close() // unblocks a writer the server stopped reading
	}
	return a, true
}

// relay is a TCP relay on 127.0.0.1 in front of a backend that counts the
// connections on which the client (tandem) sent bytes that got no answer
// before the backend closed: requests written on a connection the backend
// had closed, which tandem must send again (or fail), each one a retry.
type relay struct {
	addr       string
	mu         sync.Mutex
	unanswered int
	conns      int
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &relay{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c.(*net.TCPConn), target)
		}
	}()
	return r
}

func (r *relay) serve(c *net.TCPConn, target string) {
	defer c.Close()
	b, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer b.Close()
	r.mu.Lock()
	r.conns++
	r.mu.Unlock()
	var mu sync.Mutex
	pending := false // a request went to the backend since its last byte back
	answered := true // the backend sent bytes since the last request began
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				mu.Lock()
				// A request begins with its method; the rest of a body
				// the backend answered early is not a new request.
				if answered && requestStart.Match(buf[:n]) {
					pending, answered = true, false
				}
				mu.Unlock()
				if _, werr := b.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				b.(*net.TCPConn).CloseWrite()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := b.Read(buf)
		if n > 0 {
			mu.Lock()
			pending, answered = false, true
			mu.Unlock()
			c.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	c.CloseWrite()
	<-done
	mu.Lock()
	if pending {
		r.mu.Lock()
		r.unanswered++
		r.mu.Unlock()
	}
	mu.Unlock()
}

var requestStart = regexp.MustCompile(`^[A-Z]+ /`)

// counts returns the unanswered connections and all connections so far.
func (r *relay) counts() (unanswered, conns int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unanswered, r.conns
}
