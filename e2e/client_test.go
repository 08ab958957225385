package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// request is one request of a sequence, sent as written.
type request struct {
	name   string // for messages
	method string
	target string // origin-form
	ctype  string // Content-Type, if not empty
	body   []byte
	header http.Header // extra headers
	gap    time.Duration
}

// answer is what a client got for one request: status, the end-to-end
// headers (hop-by-hop ones and Date removed), and the body.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// volatile headers differ between two answers to the same request by their
// nature; they are left out of the comparison.
var volatile = []string{"Date"}

// hopByHop are RFC 9110's hop-by-hop headers (README "On the wire"), which a
// proxy removes; every header named in Connection is one too.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Transfer-Encoding",
	"Upgrade", "Trailer", "Proxy-Authenticate", "Proxy-Authorization"}

func endToEnd(h http.Header) http.Header {
	out := h.Clone()
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			out.Del(strings.TrimSpace(name))
		}
	}
	for _, k := range append(hopByHop, volatile...) {
		out.Del(k)
	}
	return out
}

// client is one HTTP/1.1 client connection written by hand and read with
// net/http.ReadResponse, so that what is on the wire is what the test wrote.
// It keeps the connection alive and reconnects only as a careful client
// must: when the server said it would close (Connection: close, or an
// HTTP/1.0 answer without keep-alive), or when a reused connection turns out
// closed before any byte of the answer came back (then the request is sent
// again; the server never answered it). Both are counted.
type client struct {
	t        testing.TB
	addr     string
	conn     net.Conn
	br       *bufio.Reader
	read     *countingConn
	served   int // requests answered on the current connection
	dials    int // connections opened
	announce int // reconnections after the server said it would close
	dead     int // requests sent again after a reused connection was found closed
	// closedAfter names, for each connection found closed on reuse, the
	// last answer it carried ("NAME STATUS").
	closedAfter []string
	last        string
}

type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func newClient(t testing.TB, addr string) *client {
	return &client{t: t, addr: addr}
}

func (c *client) Close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *client) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %w", c.addr, err)
	}
	c.read = &countingConn{Conn: conn}
	c.conn, c.br, c.served = conn, bufio.NewReaderSize(c.read, 64<<10), 0
	c.dials++
	return nil
}

func (r request) wire(host string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.method, r.target, host)
	if r.ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", r.ctype)
	}
	keys := make([]string, 0, len(r.header))
	for k := range r.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.header[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if r.body != nil || r.method == "POST" || r.method == "PUT" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
	}
	b.WriteString("\r\n")
	b.Write(r.body)
	return b.Bytes()
}

// do sends r and reads its answer. The request is written from its own
// goroutine while the answer is read, as a server may answer (413) before it
// has read the whole body.
func (c *client) do(r request) (answer, error) {
	wire := r.wire("media.test")
	for {
		if c.conn == nil {
			if err := c.dial(); err != nil {
				return answer{}, err
			}
		}
		reused := c.served > 0
		before := c.read.n.Load()
		_ = c.conn.SetDeadline(time.Now().Add(60 * time.Second))
		werr := make(chan error, 1)
		go func(conn net.Conn) {
			_, err := conn.Write(wire)
			werr <- err
		}(c.conn)
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			nothing := c.read.n.Load() == before
			c.conn.Close()
			<-werr
			c.conn = nil
			if reused && nothing && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) {
				c.dead++
				c.closedAfter = append(c.closedAfter, c.last)
				continue
			}
			return answer{}, fmt.Errorf("%s: cannot read the answer (after %d answers on this connection): %w", r.name, c.served, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			c.conn.Close()
			<-werr
			c.conn = nil
			return answer{}, fmt.Errorf("%s: cannot read the body of a %d: %w", r.name, resp.StatusCode, err)
		}
		c.served++
		c.last = fmt.Sprintf("%s %d", r.name, resp.StatusCode)
		if resp.Close {
			// The server will close: a reset of the rest of our body is
			// not an error, the answer is in.
			c.conn.Close()
			<-werr
			c.conn = nil
			c.announce++
		} else if err := <-werr; err != nil {
			return answer{}, fmt.Errorf("%s: cannot write the request: %w", r.name, err)
		}
		return answer{Status: resp.StatusCode, Header: endToEnd(resp.Header), Body: body}, nil
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && (strings.Contains(ne.Err.Error(), "reset") || strings.Contains(ne.Err.Error(), "broken pipe"))
}

// run sends reqs in order on one client and returns the answers; it fails
// the test on an error a careful client could not recover from.
func run(t testing.TB, addr string, reqs []request) ([]answer, *client) {
	t.Helper()
	c := newClient(t, addr)
	defer c.Close()
	out := make([]answer, 0, len(reqs))
	for _, r := range reqs {
		if r.gap > 0 {
			time.Sleep(r.gap) // the idle time is what the test is about
		}
		start := time.Now()
		a, err := c.do(r)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Logf("%s: %s took %v (status %d)", addr, r.name, d.Round(time.Millisecond), a.Status)
		}
		out = append(out, a)
	}
	return out, c
}

// sameAnswers compares what the server gave directly with what came through
// tandem, request by request, and reports every difference.
func sameAnswers(t testing.TB, reqs []request, direct, proxied []answer) {
	t.Helper()
	bad := 0
	for i := range reqs {
		d, p := direct[i], proxied[i]
		var why []string
		if d.Status != p.Status {
			why = append(why, fmt.Sprintf("status %d, directly %d", p.Status, d.Status))
		}
		if diff := headerDiff(d.Header, p.Header); diff != "" {
			why = append(why, "headers: "+diff)
		}
		if !bytes.Equal(d.Body, p.Body) {
			why = append(why, fmt.Sprintf("body %d bytes %q, directly %d bytes %q", len(p.Body), clip(p.Body), len(d.Body), clip(d.Body)))
		}
		if len(why) > 0 {
			bad++
			t.Errorf("request %d (%s): through tandem %s", i+1, reqs[i].name, strings.Join(why, "; "))
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d answers through tandem differ from the server's own", bad, len(reqs))
	}
}

func headerDiff(want, got http.Header) string {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if !slices.Equal(want[k], got[k]) {
			out = append(out, fmt.Sprintf("%s %q, directly %q", k, got[k], want[k]))
		}
	}
	return strings.Join(out, ", ")
}

func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// statuses counts the answers by status.
func statuses(as []answer) map[int]int {
	m := map[int]int{}
	for _, a := range as {
		m[a.Status]++
	}
	return m
}

// corpusFile is one file of testdata/corpus.
type corpusFile struct {
	name  string
	ctype string
	data  []byte
}

func loadCorpus(t testing.TB) []corpusFile {
	t.Helper()
	dir := filepath.Join("testdata", "corpus")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("cannot read the corpus: %v", err)
	}
	var out []corpusFile
	for _, e := range ents {
		ct := ""
		switch filepath.Ext(e.Name()) {
		case ".jpg":
			ct = "image/jpeg"
		case ".png":
			ct = "image/png"
		case ".gif":
			ct = "image/gif"
		case ".webp":
			ct = "image/webp"
		default:
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, corpusFile{name: e.Name(), ctype: ct, data: data})
	}
	if len(out) < 20 {
		t.Fatalf("corpus has %d files, want at least 20", len(out))
	}
	return out
}

// corpusDir is the corpus directory as an absolute path, for servers that
// read it.
func corpusDir(t testing.TB) string {
	d, err := filepath.Abs(filepath.Join("testdata", "corpus"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// times repeats a sequence n times in the same order, numbering the
// requests' X-Request-Id so both runs send the same bytes.
func times(n int, one func(f corpusFile) request, files []corpusFile) []request {
	var out []request
	for round := 0; round < n; round++ {
		for _, f := range files {
			r := one(f)
			r.name = fmt.Sprintf("%s #%d", f.name, round+1)
			r.header = http.Header{"X-Request-Id": {"e2e-" + strconv.Itoa(len(out)+1)}}
			out = append(out, r)
		}
	}
	return out
}
