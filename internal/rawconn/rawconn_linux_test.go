//go:build linux

package rawconn

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection, each wrapped when
// raw is true.
func pair(t testing.TB, raw bool) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	b = r.c
	if raw {
		a, b = Wrap(a), Wrap(b)
		if _, ok := a.(*Conn); !ok {
			t.Fatalf("Wrap(%T) = %T, want *Conn", r.c, a)
		}
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// smallBuffers makes the kernel buffers small, so big writes come back
// partial or EAGAIN and reads see the data in many pieces.
func smallBuffers(t *testing.T, cs ...net.Conn) {
	for _, c := range cs {
		tc := tcpConn(c)
		if err := tc.SetWriteBuffer(32 << 10); err != nil {
			t.Fatal(err)
		}
		if err := tc.SetReadBuffer(32 << 10); err != nil {
			t.Fatal(err)
		}
	}
}

func tcpConn(c net.Conn) *net.TCPConn {
	if rc, ok := c.(*Conn); ok {
		return rc.TCPConn
	}
	return c.(*net.TCPConn)
}

// Both directions at once, 8 MiB each way through 32 KiB socket buffers: every
// byte arrives, in order, while a Read and a Write run concurrently on each
// end. The plain TCPConn runs the same test as a control.
func TestFullDuplexLargeTransfer(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(connName(raw), func(t *testing.T) { fullDuplex(t, raw) })
	}
}

func connName(raw bool) string {
	if raw {
		return "rawconn.Conn"
	}
	return "net.TCPConn"
}

func fullDuplex(t *testing.T, raw bool) {
	a, b := pair(t, raw)
	smallBuffers(t, a, b)
	const size = 8 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	pa, pb := make([]byte, size), make([]byte, size)
	for i := range pa {
		pa[i], pb[i] = byte(rng.Uint32()), byte(rng.Uint32())
	}
	send := func(c net.Conn, p []byte, errc chan<- error) {
		n, err := c.Write(p)
		if err == nil && n != len(p) {
			err = io.ErrShortWrite
		}
		errc <- err
	}
	recv := func(c net.Conn, want []byte, errc chan<- error) {
		got := make([]byte, 0, len(want))
		buf := make([]byte, 70000)
		r := rand.New(rand.NewPCG(3, 4))
		for len(got) < len(want) {
			n, err := c.Read(buf[:1+r.IntN(len(buf))])
			got = append(got, buf[:n]...)
			if err != nil {
				errc <- err
				return
			}
		}
		if sha256.Sum256(got) != sha256.Sum256(want) {
			errc <- errors.New("received bytes differ from the sent ones")
			return
		}
		errc <- nil
	}
	errc := make(chan error, 4)
	go send(a, pa, errc)
	go send(b, pb, errc)
	go recv(b, pa, errc)
	go recv(a, pb, errc)
	for range 4 {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("transfer did not finish in 30s")
		}
	}
}

// What a caller sees at the edges is what net.TCPConn gives: io.EOF itself at
// the end, a timeout *net.OpError past a deadline (and the connection still
// usable after it), net.ErrClosed after Close, the syscall error on a reset.
func TestErrorsMatchTCPConn(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(connName(raw), func(t *testing.T) {
			t.Run("eof", func(t *testing.T) {
				a, b := pair(t, raw)
				b.Write([]byte("bye"))
				b.(interface{ CloseWrite() error }).CloseWrite()
				got, err := io.ReadAll(a)
				if err != nil || string(got) != "bye" {
					t.Fatalf("ReadAll = %q, %v", got, err)
				}
				n, err := a.Read(make([]byte, 8))
				if n != 0 || err != io.EOF {
					t.Fatalf("Read after end = %d, %v; want 0, io.EOF itself", n, err)
				}
			})
			t.Run("read deadline", func(t *testing.T) {
				a, b := pair(t, raw)
				a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
				_, err := a.Read(make([]byte, 8))
				checkOpError(t, err, "read")
				var ne net.Error
				if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("Read past deadline = %v; want a timeout matching os.ErrDeadlineExceeded", err)
				}
				a.SetReadDeadline(time.Time{})
				b.Write([]byte("later"))
				buf := make([]byte, 8)
				n, err := a.Read(buf)
				if err != nil || string(buf[:n]) != "later" {
					t.Fatalf("Read after the deadline was cleared = %q, %v", buf[:n], err)
				}
			})
			t.Run("write deadline", func(t *testing.T) {
				a, b := pair(t, raw) // b reads only after the Write gave up
				tcpConn(a).SetWriteBuffer(4 << 10)
				p := make([]byte, 64<<20)
				a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
				n, err := a.Write(p)
				checkOpError(t, err, "write")
				if !errors.Is(err, os.ErrDeadlineExceeded) || n < 0 || n >= len(p) {
					t.Fatalf("Write past deadline = %d, %v; want fewer than %d bytes and os.ErrDeadlineExceeded", n, err, len(p))
				}
				// The count is exactly what reached the peer (0 is possible
				// when the deadline passed before the first write).
				a.Close()
				b.SetReadDeadline(time.Now().Add(10 * time.Second))
				got, err := io.Copy(io.Discard, b)
				if err != nil || got != int64(n) {
					t.Fatalf("peer received %d bytes (%v); Write reported %d", got, err, n)
				}
			})
			t.Run("close while reading", func(t *testing.T) {
				a, _ := pair(t, raw)
				errc := make(chan error, 1)
				go func() { _, err := a.Read(make([]byte, 8)); errc <- err }()
				time.Sleep(20 * time.Millisecond) // let the Read block (it passes either way)
				a.Close()
				select {
				case err := <-errc:
					checkOpError(t, err, "read")
					if !errors.Is(err, net.ErrClosed) {
						t.Fatalf("Read on a closed conn = %v; want net.ErrClosed", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("Close did not end the blocked Read")
				}
			})
			t.Run("reset", func(t *testing.T) {
				a, b := pair(t, raw)
				a.Write([]byte("unread")) // unread data makes b's close a reset
				time.Sleep(10 * time.Millisecond)
				tcpConn(b).SetLinger(0)
				b.Close()
				a.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err := a.Read(make([]byte, 8))
				checkOpError(t, err, "read")
				var se *os.SyscallError
				if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &se) || se.Syscall != "read" {
					t.Fatalf("Read after a reset = %v; want *os.SyscallError read: ECONNRESET", err)
				}
				// Writing to the dead connection fails with EPIPE (the kernel's
				// SIGPIPE is ignored by Go's runtime for sockets, raw or not).
				_, err = a.Write([]byte("more"))
				checkOpError(t, err, "write")
				if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("Write after a reset = %v; want EPIPE or ECONNRESET", err)
				}
			})
		})
	}
}

func checkOpError(t *testing.T, err error, op string) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op || oe.Net != "tcp" || oe.Addr == nil || oe.Source == nil {
		t.Fatalf("error %#v; want *net.OpError{Op: %q, Net: \"tcp\"} with both addresses", err, op)
	}
}

func TestWrapLeavesOtherConnsAlone(t *testing.T) {
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if got := Wrap(p1); got != p1 {
		t.Fatalf("Wrap(net.Pipe conn) = %T, want the conn itself", got)
	}
}

func TestEmptyReadAndWrite(t *testing.T) {
	a, b := pair(t, true)
	if n, err := a.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v", n, err)
	}
	if n, err := b.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
	a.Write([]byte("x"))
	buf := make([]byte, 4)
	if n, err := b.Read(buf); n != 1 || err != nil || !bytes.Equal(buf[:1], []byte("x")) {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
}

// pingPong sends size bytes from a to b and back, n times.
func pingPong(tb testing.TB, a, b net.Conn, size, n int) {
	out, back := make([]byte, size), make([]byte, size)
	for range n {
		if _, err := a.Write(out); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(b, back); err != nil {
			tb.Fatal(err)
		}
		if _, err := b.Write(back); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(a, out); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkPingPong compares a request/response exchange over loopback on
// plain TCPConns and on wrapped ones. Run with -cpu 2 and a second process
// loading the CPUs to see the difference the P hand-offs make; on an idle
// machine the two are close.
func BenchmarkPingPong(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		for _, raw := range []bool{false, true} {
			name := map[bool]string{false: "net", true: "raw"}[raw]
			b.Run(fmt.Sprintf("%s/%dKiB", name, size>>10), func(b *testing.B) {
				a, c := pair(b, raw)
				b.ReportAllocs()
				b.SetBytes(int64(2 * size))
				b.ResetTimer()
				pingPong(b, a, c, size, b.N)
			})
		}
	}
}
