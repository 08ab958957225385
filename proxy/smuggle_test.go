package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/exchange"
)

// smuggler is a hostile keep-alive backend of the "CL.0" kind: it answers
// POST /early at once without reading its body, then reads that body as the
// next request on the connection and answers it too, so that an answer
// nobody asked for follows on the connection. GET /extra is answered with
// its own answer and a second, unasked one in the same write. Every other
// request gets an answer naming its path and X-Request-Id.
type smuggler struct {
	addr string
	// stray gets a value each time an answer to a smuggled request has
	// been written.
	stray chan struct{}
	mu    sync.Mutex
	seen  []string // "path id" of every request parsed, in order
}

func startSmuggler(t *testing.T) *smuggler {
	t.Helper()
	s := &smuggler{stray: make(chan struct{}, 16)}
	s.addr = serveTCP(t, s.serve)
	return s
}

func smugglerAnswer(path, id string) string {
	body := "answer for " + path + " id=" + id
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Request-Id: %s\r\nContent-Length: %d\r\n\r\n%s", id, len(body), body)
}

func (s *smuggler) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		id := req.Header.Get("X-Request-Id")
		s.mu.Lock()
		s.seen = append(s.seen, req.URL.Path+" "+id)
		s.mu.Unlock()
		switch req.URL.Path {
		case "/early":
			// The body stays unread: the next ReadRequest parses it, and
			// its answer goes out a moment after this one, once the
			// proxy has read this one (in the same read, a reader that
			// drops what it buffered would hide it).
			io.WriteString(c, smugglerAnswer(req.URL.Path, id))
			time.Sleep(20 * time.Millisecond)
		case "/smuggled":
			io.WriteString(c, smugglerAnswer(req.URL.Path, id))
			s.stray <- struct{}{}
		case "/extra":
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, smugglerAnswer(req.URL.Path, id)+smugglerAnswer("/unasked", "stray"))
		default:
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, smugglerAnswer(req.URL.Path, id))
		}
	}
}

// smuggled is the body of POST /early: a whole request, which the smuggler
// answers as if tandem had sent it.
const smuggled = "GET /smuggled HTTP/1.1\r\nHost: b\r\nX-Request-Id: smuggled-1\r\n\r\n"

// smuggleConfig serves route r from {{legacy}} over a single connection,
// mirrored to {{new}} over a single shadow connection.
const smuggleConfig = `
listen: 127.0.0.1:0
data_dir: {{data}}
limits: {shadow_concurrency: 1}
backends:
  legacy: {url: "{{legacy}}", timeout: 5s, max_conns: 1}
  new:    {url: "{{new}}", timeout: 5s, max_conns: 1}
routes:
  - name: r
    match: {path_prefix: /}
    legacy: legacy
    new: new
    mirror: 100
`

// exchanges records every comparison's pair of responses.
type exchanges struct {
	mu  sync.Mutex
	all []*exchange.Exchange
}

func (e *exchanges) Observe(ex *exchange.Exchange) {
	e.mu.Lock()
	e.all = append(e.all, ex)
	e.mu.Unlock()
}

func (e *exchanges) byID() map[string]*exchange.Exchange {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[string]*exchange.Exchange{}
	for _, ex := range e.all {
		m[ex.RequestID] = ex
	}
	return m
}

// No answer ever reaches the wrong client: with one connection per pool, an
// answer the backend sends unasked (after POST /early, whose body it read
// as a request, or glued to the answer of GET /extra) is never taken for
// the next request's, on the served side or the shadow side.
func TestNoAnswerReachesTheWrongClient(t *testing.T) {
	legacy, shadow := startSmuggler(t), startSmuggler(t)
	yaml := strings.ReplaceAll(smuggleConfig, "{{legacy}}", "http://"+legacy.addr)
	yaml = strings.ReplaceAll(yaml, "{{new}}", "http://"+shadow.addr)
	yaml = strings.ReplaceAll(yaml, "{{data}}", t.TempDir())
	obs := &exchanges{}
	srv, addr := mustServeWith(t, yaml, obs)
	f := &fixture{t: t, srv: srv, addr: addr, url: "http://" + addr, client: newClient()}

	type req struct{ method, path, id, body string }
	var seq []req
	for i := 0; i < 3; i++ {
		seq = append(seq,
			req{"POST", "/early", fmt.Sprintf("early-%d", i), smuggled},
			req{"GET", "/next", fmt.Sprintf("next-%d", i), ""},
			req{"GET", "/victim", fmt.Sprintf("victim-%d", 42+i), ""},
			req{"GET", "/extra", fmt.Sprintf("extra-%d", i), ""},
			req{"POST", "/after", fmt.Sprintf("after-%d", i), "a body"},
		)
	}
	for _, r := range seq {
		var body io.Reader
		if r.body != "" {
			body = strings.NewReader(r.body)
		}
		hr, _ := http.NewRequest(r.method, f.url+r.path, body)
		hr.Header.Set("X-Request-Id", r.id)
		resp, err := f.client.Do(hr)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if r.path == "/early" {
			// The unasked answers are on both backend connections before
			// the next request comes.
			<-legacy.stray
			f.waitIdle()
			<-shadow.stray
		}
		want := "answer for " + r.path + " id=" + r.id
		if resp.StatusCode != 200 || string(got) != want || resp.Header.Get("X-Request-Id") != r.id {
			t.Errorf("%s %s (id %s): got %d %q (X-Request-Id %q), want 200 %q", r.method, r.path, r.id,
				resp.StatusCode, got, resp.Header.Get("X-Request-Id"), want)
		}
		// One request at a time, shadow included, so that the shadow
		// connection sees the same sequence.
		f.waitIdle()
	}
	f.waitMetric(`tandem_compare_total{route="r",result="match"}`, float64(len(seq)))
	byID := obs.byID()
	for _, r := range seq {
		ex := byID[r.id]
		if ex == nil {
			t.Errorf("%s: no comparison", r.id)
			continue
		}
		want := "answer for " + r.path + " id=" + r.id
		if string(ex.New.Body) != want || string(ex.Legacy.Body) != want {
			t.Errorf("%s: compared legacy %q with new %q, want %q on both sides", r.id, ex.Legacy.Body, ex.New.Body, want)
		}
	}
	if e := f.metric(`tandem_compare_total{route="r",result="mismatch"}`); e != 0 {
		t.Errorf("%g mismatches", e)
	}
}
