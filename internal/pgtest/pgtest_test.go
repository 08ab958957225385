package pgtest

import (
	"net"
	"strings"
	"testing"
	"time"
)

// A cluster starts, takes connections on its port, creates databases, stops
// (the port refuses) and starts again on the same port.
func TestClusterLifecycle(t *testing.T) {
	c := Start(t)
	dial := func() error {
		conn, err := net.DialTimeout("tcp", c.Addr(), time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("running cluster refuses: %v", err)
	}
	u1, u2 := c.NewDatabase(), c.NewDatabase()
	if u1 == u2 || !strings.HasPrefix(u1, "postgres://postgres@127.0.0.1:") {
		t.Fatalf("database URLs %q, %q", u1, u2)
	}
	c.Stop()
	if err := dial(); err == nil {
		t.Fatal("stopped cluster still accepts connections")
	}
	c.Restart()
	if err := dial(); err != nil {
		t.Fatalf("restarted cluster refuses: %v", err)
	}
}
