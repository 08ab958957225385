//go:build linux

package rawconn

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// waitState polls CheckIdle until it reports want: what the peer did
// reaches this end's socket a moment after the peer's call returns.
func waitState(t *testing.T, c *Conn, want IdleState) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := c.CheckIdle()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CheckIdle = %v, want %v", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// CheckIdle tells a clean idle connection from one the peer closed, reset
// or wrote to, without consuming anything.
func TestCheckIdle(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		a, _ := pair(t, true)
		if got := a.(*Conn).CheckIdle(); got != IdleClean {
			t.Fatalf("idle connection: %v, want clean", got)
		}
		if !Usable(a) {
			t.Fatal("a clean idle connection is not usable")
		}
	})
	t.Run("eof", func(t *testing.T) {
		a, b := pair(t, true)
		b.Close()
		waitState(t, a.(*Conn), IdleClosed)
		if Usable(a) {
			t.Fatal("a connection the peer closed is usable")
		}
	})
	t.Run("reset", func(t *testing.T) {
		a, b := pair(t, true)
		tcpConn(b).SetLinger(0) // close sends RST
		b.Close()
		waitState(t, a.(*Conn), IdleBroken)
		if Usable(a) {
			t.Fatal("a reset connection is usable")
		}
	})
	t.Run("unsolicited", func(t *testing.T) {
		a, b := pair(t, true)
		b.Write([]byte("HTTP/1.1 200 OK\r\n"))
		waitState(t, a.(*Conn), IdleUnsolicited)
		if Usable(a) {
			t.Fatal("a connection with unasked bytes is usable")
		}
		// Peeking consumed nothing.
		buf := make([]byte, 64)
		n, err := a.Read(buf)
		if err != nil || string(buf[:n]) != "HTTP/1.1 200 OK\r\n" {
			t.Fatalf("read after CheckIdle: %q, %v", buf[:n], err)
		}
	})
	t.Run("closed_here", func(t *testing.T) {
		a, _ := pair(t, true)
		a.Close()
		if got := a.(*Conn).CheckIdle(); got != IdleBroken {
			t.Fatalf("closed connection: %v, want broken", got)
		}
	})
	t.Run("tls_over_raw", func(t *testing.T) {
		a, b := pair(t, true)
		tc := tls.Client(a, &tls.Config{InsecureSkipVerify: true})
		if !Usable(tc) {
			t.Fatal("a clean TLS connection over a raw one is not usable")
		}
		b.Close()
		waitState(t, a.(*Conn), IdleClosed)
		if Usable(tc) {
			t.Fatal("a TLS connection whose TCP peer closed is usable")
		}
	})
	t.Run("not_raw", func(t *testing.T) {
		a, b := pair(t, false)
		b.Close()
		if !Usable(a) {
			t.Fatal("a connection that is not a *Conn is not checked, so it is usable")
		}
	})
}

var _ net.Conn = (*Conn)(nil)

// BenchmarkCheckIdle is the cost of the check a pooled connection gets
// before each reuse.
func BenchmarkCheckIdle(b *testing.B) {
	a, _ := pair(b, true)
	c := a.(*Conn)
	b.ReportAllocs()
	for b.Loop() {
		if c.CheckIdle() != IdleClean {
			b.Fatal("not clean")
		}
	}
}
