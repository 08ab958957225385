package backends

import (
	"net"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/rawconn"
)

// dialRaw connects with and without a timeout (zero is fasthttp's default,
// as when HostClient dials for a queued request), and hands back a raw conn.
func TestDialRaw(t *testing.T) {
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
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	for _, timeout := range []int64{0, 2e9} {
		c, err := dialRaw(ln.Addr().String(), time.Duration(timeout))
		if err != nil {
			t.Fatalf("dialRaw with timeout %d: %v", timeout, err)
		}
		if _, ok := c.(*rawconn.Conn); !ok {
			t.Errorf("dialRaw returned %T, want *rawconn.Conn", c)
		}
		buf := make([]byte, 1)
		if n, err := c.Read(buf); n != 1 || err != nil {
			t.Errorf("read through the dialled conn: %d, %v", n, err)
		}
		c.Close()
	}
}
