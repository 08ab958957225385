//go:build linux && !race

package rawconn

import (
	"io"
	"testing"
)

// A Read or Write on a wrapped connection allocates nothing: the proxy's
// pass-through path is held to zero allocations per request.
func TestReadWriteAllocsZero(t *testing.T) {
	a, b := pair(t, true)
	out, back := make([]byte, 1024), make([]byte, 1024)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := a.Write(out); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(b, back); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per Write+Read, want 0", allocs)
	}
}

// CheckIdle allocates nothing: it runs once per reuse of a pooled backend
// connection.
func TestCheckIdleAllocsZero(t *testing.T) {
	a, _ := pair(t, true)
	c := a.(*Conn)
	if n := testing.AllocsPerRun(200, func() { c.CheckIdle() }); n != 0 {
		t.Fatalf("%.1f allocations per CheckIdle, want 0", n)
	}
}
