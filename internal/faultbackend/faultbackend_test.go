package faultbackend

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exchange sends a POST with body and returns the response (body read in
// full into got) or the error that cut it.
func exchange(t *testing.T, b *Backend, body string) (resp *http.Response, got []byte, err error) {
	t.Helper()
	c, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "POST /x HTTP/1.1\r\nHost: t\r\nX-Request-Id: r1\r\nX-Tandem-Shadow: 1\r\nContent-Length: " +
		itoa(len(body)) + "\r\n\r\n" + body
	if _, err := io.WriteString(c, req); err != nil {
		return nil, nil, err
	}
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, nil, err
	}
	got, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, got, err
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestModes(t *testing.T) {
	body := []byte(strings.Repeat("0123456789", 100)) // 1000 bytes
	tests := []struct {
		name string
		mode Mode
		// wantErr: the response is cut or unparsable; else wantBody is read whole.
		wantErr  bool
		wantBody string
		minTime  time.Duration
	}{
		{"ok answers the body", Mode{Body: body}, false, string(body), 0},
		{"latency waits first", Mode{Kind: KindLatency, Delay: 200 * time.Millisecond}, false, string(DefaultBody), 200 * time.Millisecond},
		{"bandwidth throttles", Mode{Kind: KindBandwidth, BytesPerSec: 2000, Body: body}, false, string(body), 300 * time.Millisecond},
		{"slow close still answers", Mode{Kind: KindSlowClose, Delay: 100 * time.Millisecond}, false, string(DefaultBody), 0},
		{"reset mid-response cuts the body", Mode{Kind: KindResetResponse, N: 100, Body: body}, true, "", 0},
		{"truncated falls short of Content-Length", Mode{Kind: KindTruncated, N: 100, Body: body}, true, "", 0},
		{"garbage is not HTTP", Mode{Kind: KindGarbage}, true, "", 0},
		{"reset mid-body never answers", Mode{Kind: KindResetBody, N: 3}, true, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := Start(t, tc.mode)
			start := time.Now()
			_, got, err := exchange(t, b, "hello body")
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got a complete response %q, want an error", got)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.wantBody {
					t.Fatalf("body %q, want %q", got, tc.wantBody)
				}
			}
			if d := time.Since(start); d < tc.minTime {
				t.Fatalf("answered in %v, want at least %v", d, tc.minTime)
			}
			if !b.WaitCount(1, 5*time.Second) {
				t.Fatal("request not recorded")
			}
			r := b.Received()[0]
			if r.RequestID != "r1" || !r.Shadow || r.Method != "POST" || r.Path != "/x" || r.ContentLength != 10 {
				t.Fatalf("recorded %+v", r)
			}
			wantRead, wantComplete := int64(10), true
			if tc.mode.Kind == KindResetBody {
				wantRead, wantComplete = 3, false
			}
			if r.BodyRead != wantRead || r.Complete != wantComplete {
				t.Fatalf("read %d complete=%v, want %d %v", r.BodyRead, r.Complete, wantRead, wantComplete)
			}
		})
	}
}

func TestResetIsRST(t *testing.T) {
	b := Start(t, Mode{Kind: KindResetResponse, N: 10, Body: make([]byte, 1000)})
	_, _, err := exchange(t, b, "x")
	if !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("err = %v, want a reset or unexpected EOF", err)
	}
}

func TestHangAndEndlessAreBounded(t *testing.T) {
	for _, m := range []Mode{{Kind: KindHang}, {Kind: KindEndlessChunked}} {
		t.Run(m.Kind.String(), func(t *testing.T) {
			b := Start(t, m)
			c, err := net.Dial("tcp", b.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, err := io.Copy(io.Discard, c)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("read ended with %v after %d bytes, want a timeout (still going)", err, n)
			}
			if m.Kind == KindEndlessChunked && n < 1000 {
				t.Fatalf("endless response sent only %d bytes", n)
			}
			// Close must return with the connection still open.
			done := make(chan struct{})
			go func() { b.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Close hangs")
			}
			if b.Conns() != 0 {
				t.Fatalf("%d connections open after Close", b.Conns())
			}
		})
	}
}

func TestEveryAndKeepAlive(t *testing.T) {
	b := Start(t, Mode{Kind: KindGarbage, Every: 3})
	c, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ { // requests 1 and 2 are OK on one connection
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Fatal("third request answered, want garbage")
	}
	if b.Accepted() != 1 || b.Count() != 3 {
		t.Fatalf("accepted %d, recorded %d; want 1, 3", b.Accepted(), b.Count())
	}
}
