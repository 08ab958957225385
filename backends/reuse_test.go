package backends

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// peer is a raw HTTP/1.1 server on 127.0.0.1 whose behaviour after each
// answer is chosen by the test: it counts connections, and after answering
// does what after(n) says for the connection's n-th request.
type peer struct {
	addr  string
	mu    sync.Mutex
	conns int
	// did gets a value once the peer has done what follows an answer.
	did chan struct{}
}

type afterAnswer int

const (
	keepOpen  afterAnswer = iota // a well-behaved keep-alive server
	closeIdle                    // close the connection (FIN) after answering
	resetIdle                    // reset it (RST) after answering
	unasked                      // write an answer nobody asked for
	dropNext                     // read the next request and close unanswered
)

func startPeer(t *testing.T, after func(n int) afterAnswer) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &peer{addr: ln.Addr().String(), did: make(chan struct{}, 64)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns++
			conn := p.conns
			p.mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 1; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					body := fmt.Sprintf("conn %d request %d", conn, n)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
					switch after(n) {
					case closeIdle:
						c.Close()
						p.did <- struct{}{}
						return
					case resetIdle:
						c.(*net.TCPConn).SetLinger(0)
						c.Close()
						p.did <- struct{}{}
						return
					case unasked:
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
						p.did <- struct{}{}
					case dropNext:
						http.ReadRequest(br)
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *peer) connCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

func newTestBackend(t *testing.T, addr string) *Backend {
	t.Helper()
	return newTestBackendWith(t, addr, Options{})
}

// newTestBackendWith is newTestBackend with o's other settings.
func newTestBackendWith(t *testing.T, addr string, o Options) *Backend {
	t.Helper()
	o.URLs, o.MaxConns = []string{"http://" + addr}, 1
	b, err := New("b", o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func get(b *Backend) (string, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://x/")
	if err := b.Do(req, resp, Served); err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.BodyStream())
	resp.CloseBodyStream()
	return string(body), err
}

// A pooled connection the backend closed, reset or wrote to unasked is found
// out before reuse and replaced by a new one: every request gets its own
// answer, none fails. With the raw calls off (client.raw_syscalls: false)
// the check stays.
func TestIdleConnCheck(t *testing.T) {
	for _, c := range []struct {
		name  string
		after afterAnswer
		o     Options
	}{
		{"closed", closeIdle, Options{}},
		{"reset", resetIdle, Options{}},
		{"unasked", unasked, Options{}},
		{"closed/no-raw", closeIdle, Options{DisableRawSyscalls: true}},
		{"reset/no-raw", resetIdle, Options{DisableRawSyscalls: true}},
		{"unasked/no-raw", unasked, Options{DisableRawSyscalls: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startPeer(t, func(int) afterAnswer { return c.after })
			b := newTestBackendWith(t, p.addr, c.o)
			for i := 1; i <= 4; i++ {
				got, err := get(b)
				if want := fmt.Sprintf("conn %d request 1", i); err != nil || got != want {
					t.Fatalf("request %d: %q, %v; want %q", i, got, err, want)
				}
				// The next request comes once the backend has acted (reuse
				// racing the close is the retry's case, in the proxy).
				<-p.did
			}
		})
	}
	t.Run("clean", func(t *testing.T) {
		p := startPeer(t, func(int) afterAnswer { return keepOpen })
		b := newTestBackend(t, p.addr)
		for i := 1; i <= 4; i++ {
			got, err := get(b)
			if want := fmt.Sprintf("conn 1 request %d", i); err != nil || got != want {
				t.Fatalf("request %d: %q, %v; want %q", i, got, err, want)
			}
		}
		if n := p.connCount(); n != 1 {
			t.Fatalf("%d connections for a clean keep-alive backend, want 1", n)
		}
	})
}

// A request written on a kept-alive connection that the backend then closes
// unanswered is reported retryable, with its reason; one that fails on a new
// connection is not.
func TestRetryable(t *testing.T) {
	p := startPeer(t, func(n int) afterAnswer { return dropNext })
	b := newTestBackend(t, p.addr)
	if got, err := get(b); err != nil || got != "conn 1 request 1" {
		t.Fatalf("first request: %q, %v", got, err)
	}
	_, err := get(b)
	reason, ok := Retryable(err)
	if !ok || reason != RetryReusedClosed {
		t.Fatalf("reused connection closed unanswered: Retryable(%v) = %q, %v; want %q, true", err, reason, ok, RetryReusedClosed)
	}
	if Classify(err) != ReasonReset {
		t.Errorf("Classify(%v) = %q, want reset", err, Classify(err))
	}

	// A fresh connection that is closed unanswered is not retryable.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			http.ReadRequest(bufio.NewReader(c))
			c.Close()
		}
	}()
	_, err = get(newTestBackend(t, ln.Addr().String()))
	if err == nil {
		t.Fatal("no error from a backend that closes unanswered")
	}
	if _, ok := Retryable(err); ok {
		t.Fatalf("Retryable(%v) on a new connection, want false", err)
	}

	cases := []struct {
		err  error
		want RetryReason
		ok   bool
	}{
		{&fasthttp.ReusedConnError{Err: io.EOF}, RetryReusedClosed, true},
		{fmt.Errorf("x: %w", &fasthttp.ReusedConnError{Err: &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}}), RetryReusedReset, true},
		{io.EOF, "", false},
		{fasthttp.ErrTimeout, "", false},
		{nil, "", false},
	}
	for _, c := range cases {
		if got, ok := Retryable(c.err); got != c.want || ok != c.ok {
			t.Errorf("Retryable(%v) = %q, %v; want %q, %v", c.err, got, ok, c.want, c.ok)
		}
	}
}
