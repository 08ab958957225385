package proxy

import (
	"net"
	"runtime"
	"testing"

	"github.com/tandem-proxy/tandem/internal/rawconn"
)

// Options.DisableRawSyscalls (client.raw_syscalls: false) leaves accepted
// client connections to Go's net package; by default, on Linux, they make
// raw calls (internal/rawconn). Either way they linger on close.
func TestRawSyscallsSwitch(t *testing.T) {
	for _, c := range []struct {
		plain   bool
		wantRaw bool
		why     string
	}{
		{false, runtime.GOOS == "linux", "the default: raw calls where there are any"},
		{true, false, "switched off: the TCPConn's own reads and writes"},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l := &lingerListener{Listener: ln, set: &lingerSet{}, plain: c.plain}
		go func() {
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				defer c.Close()
				c.Read(make([]byte, 1)) // until the server closes
			}
		}()
		conn, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		lc, ok := conn.(*lingerConn)
		if !ok {
			t.Fatalf("accepted %T, want a lingering connection", conn)
		}
		_, raw := lc.Conn.(*rawconn.Conn)
		if raw != c.wantRaw {
			t.Errorf("plain=%v: raw connection %v, want %v (%s)", c.plain, raw, c.wantRaw, c.why)
		}
		conn.Close()
		ln.Close()
	}
}
