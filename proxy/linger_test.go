package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// A client still sending a body the proxy refused reads the 413 and a clean
// end of stream, not a reset, and its own writes are not cut off while the
// proxy drains them (the body is within lingerBytes).
func TestLingerDeliversErrorDuringUpload(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, basicConfig+"limits: {max_body: 64KiB}\n", map[string]string{"legacy": legacy.URL, "new": newb.URL})
	for i := 0; i < 20; i++ {
		for _, chunked := range []bool{false, true} {
			hdr := "Content-Length: 1048576\r\n"
			if chunked {
				hdr = "Transfer-Encoding: chunked\r\n"
			}
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			werr := make(chan error, 1)
			go func() {
				_, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\n"+hdr+"\r\n")
				if err == nil {
					w := io.Writer(c)
					if chunked {
						w = &chunkWriter{w: c}
					}
					_, err = io.Copy(w, tb.PatternReader(int64(i), 1<<20-1<<10))
				}
				werr <- err
			}()
			out, rerr := io.ReadAll(c)
			if rerr != nil || !strings.HasPrefix(string(out), "HTTP/1.1 413 ") || !strings.Contains(string(out), "request body too large") {
				t.Fatalf("round %d chunked=%v: read %q, err %v; want a 413 then EOF", i, chunked, out, rerr)
			}
			if err := <-werr; err != nil {
				t.Fatalf("round %d chunked=%v: writing the body: %v", i, chunked, err)
			}
			c.Close()
		}
	}
	if !pollUntil(5*time.Second, func() bool { return f.srv.lingers.active() == 0 }) {
		t.Fatalf("%d connections still lingering", f.srv.lingers.active())
	}
}

// chunkWriter frames each write as one chunk.
type chunkWriter struct{ w io.Writer }

func (cw *chunkWriter) Write(p []byte) (int, error) {
	if _, err := fmt.Fprintf(cw.w, "%x\r\n%s\r\n", len(p), p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// A client that never stops sending does not keep a lingering connection:
// it is closed after lingerBytes (fast sender) or lingerTime (slow sender).
func TestLingerIsBounded(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	f := startProxy(t, basicConfig+"limits: {max_body: 64KiB}\n", map[string]string{"legacy": legacy.URL, "new": newb.URL})
	for _, tc := range []struct {
		name  string
		pause time.Duration // between 16 KiB writes
		max   time.Duration
	}{
		{"fast", 0, lingerTime},
		{"slow", 50 * time.Millisecond, lingerTime + 2*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			// fasthttp reads the start of the body before the handler runs,
			// so the writer runs from the start, until the proxy closes.
			stop := make(chan struct{})
			wdone := make(chan time.Time, 1)
			go func() {
				buf := make([]byte, 16<<10)
				for {
					if _, err := c.Write(buf); err != nil {
						wdone <- time.Now()
						return
					}
					select {
					case <-stop:
						wdone <- time.Time{}
						return
					case <-time.After(tc.pause):
					}
				}
			}()
			st, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.HasPrefix(st, "HTTP/1.1 413 ") {
				close(stop)
				t.Fatalf("status line %q, %v", st, err)
			}
			start := time.Now()
			var end time.Time
			select {
			case end = <-wdone:
			case <-time.After(tc.max):
				close(stop)
				t.Fatalf("the proxy still accepts bytes %v after its answer", tc.max)
			}
			t.Logf("closed %v after the answer", end.Sub(start).Round(time.Millisecond))
			if !pollUntil(5*time.Second, func() bool { return f.srv.lingers.active() == 0 }) {
				t.Fatalf("%d connections still lingering", f.srv.lingers.active())
			}
		})
	}
}

// lingerPair returns a wrapped server side and the client side of one
// loopback connection.
func lingerPair(t *testing.T, set *lingerSet) (*lingerConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	srv, err := (&lingerListener{Listener: ln, set: set}).Accept()
	if err != nil {
		t.Fatal(err)
	}
	lc, ok := srv.(*lingerConn)
	if !ok {
		t.Fatalf("accepted %T, want *lingerConn", srv)
	}
	return lc, cli
}

// Close half-closes: the client sees the end of the response while it can
// still write; the client's own close ends the linger.
func TestLingerConnHalfCloses(t *testing.T) {
	var set lingerSet
	srv, cli := lingerPair(t, &set)
	cli.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(srv, "bye")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if set.active() != 1 {
		t.Fatalf("lingering %d, want 1", set.active())
	}
	b, err := io.ReadAll(cli)
	if err != nil || string(b) != "bye" {
		t.Fatalf("client read %q, %v", b, err)
	}
	if _, err := cli.Write(make([]byte, 64<<10)); err != nil {
		t.Fatalf("client write during linger: %v", err)
	}
	cli.Close()
	done := make(chan struct{})
	go func() { set.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(lingerTime / 2):
		t.Fatal("the linger did not end when the client closed")
	}
}

// A connection whose client already closed is closed at once.
func TestLingerSkippedAfterPeerClose(t *testing.T) {
	var set lingerSet
	srv, cli := lingerPair(t, &set)
	cli.Close()
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := srv.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read %v, want EOF", err)
	}
	srv.Close()
	if set.active() != 0 {
		t.Fatalf("lingering %d, want 0", set.active())
	}
	if _, err := srv.Conn.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
}

// stop cuts lingering connections short, and later closes are immediate.
func TestLingerStop(t *testing.T) {
	var set lingerSet
	a, _ := lingerPair(t, &set)
	b, _ := lingerPair(t, &set)
	a.Close()
	if set.active() != 1 {
		t.Fatalf("lingering %d, want 1", set.active())
	}
	start := time.Now()
	set.stop()
	if d := time.Since(start); d > lingerTime/2 {
		t.Fatalf("stop took %v", d)
	}
	b.Close()
	if set.active() != 0 {
		t.Fatalf("lingering %d after stop, want 0", set.active())
	}
	for _, c := range []*lingerConn{a, b} {
		if _, err := c.Conn.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after stop: %v, want net.ErrClosed", err)
		}
	}
}
