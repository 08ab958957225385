//go:build linux

package rawconn

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn is a *net.TCPConn with raw Read and Write. Everything else (deadlines,
// CloseWrite, addresses, Close, ReadFrom's sendfile) is the TCPConn's. As on
// a net.Conn, a Read and a Write may run at the same time; concurrent Reads
// (or Writes) take turns.
type Conn struct {
	*net.TCPConn
	rc    syscall.RawConn
	plain bool // WrapChecked: Read and Write are the TCPConn's

	// State of the call in progress, one set per direction under its mutex;
	// the closures are made once per connection, so a call allocates nothing.
	rmu     sync.Mutex
	rbuf    []byte
	rn      int
	rerr    syscall.Errno
	readFn  func(uintptr) bool
	wmu     sync.Mutex
	wbuf    []byte
	wn      int
	werr    syscall.Errno
	writeFn func(uintptr) bool

	// State of CheckIdle, under its own mutex.
	imu    sync.Mutex
	ibuf   [1]byte
	istate IdleState
	peekFn func(uintptr)
}

// Wrap returns c as a *Conn if it is a *net.TCPConn, and c itself otherwise.
func Wrap(c net.Conn) net.Conn { return wrap(c, false) }

// WrapChecked is Wrap without the raw calls: Read and Write are the
// TCPConn's own, and only CheckIdle (so Usable) is raw. It is what a
// configuration that turns the raw calls off gets, so that connections are
// still checked before reuse.
func WrapChecked(c net.Conn) net.Conn { return wrap(c, true) }

func wrap(c net.Conn, plain bool) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	w := &Conn{TCPConn: tc, rc: rc, plain: plain}
	w.readFn = w.doRead
	w.writeFn = w.doWrite
	w.peekFn = w.doPeek
	return w
}

func (c *Conn) doRead(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch e {
		case 0:
			c.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for readability, then call again
		default:
			c.rerr = e
			return true
		}
	}
}

// Read reads into p like net.TCPConn.Read: io.EOF at the end, *net.OpError
// otherwise.
func (c *Conn) Read(p []byte) (int, error) {
	if c.plain {
		return c.TCPConn.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, e := c.rn, c.rerr
	c.rbuf = nil
	c.rmu.Unlock()
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case e != 0:
		return 0, c.opError("read", os.NewSyscallError("read", e))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *Conn) doWrite(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		rest := c.wbuf[c.wn:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch e {
		case 0:
			c.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait for writability, then call again
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// Write writes all of p like net.TCPConn.Write, waiting for the socket to
// drain as often as needed.
func (c *Conn) Write(p []byte) (int, error) {
	if c.plain {
		return c.TCPConn.Write(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	c.wbuf, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n, e := c.wn, c.werr
	c.wbuf = nil
	c.wmu.Unlock()
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case e != 0:
		return n, c.opError("write", os.NewSyscallError("write", e))
	}
	return n, nil
}

// opError shapes err as net does, so errors.Is(err, os.ErrDeadlineExceeded),
// net.ErrClosed and the syscall errors match as they would on the TCPConn.
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err // RawConn's own wrapping names the op "raw-read"/"raw-write"
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

func (c *Conn) doPeek(fd uintptr) {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.ibuf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			c.istate = IdleClean
		case e != 0:
			c.istate = IdleBroken
		case n == 0:
			c.istate = IdleClosed
		default:
			c.istate = IdleUnsolicited
		}
		return
	}
}

// CheckIdle tells, with one non-blocking recvfrom(MSG_PEEK), what the peer
// did to a connection that carries no request: nothing (IdleClean), closed
// it, reset it, or sent bytes no request asked for. Nothing is consumed. It
// is what nginx's upstream keepalive module asks of a cached connection
// when it becomes readable (ngx_http_upstream_keepalive_close_handler).
func (c *Conn) CheckIdle() IdleState {
	c.imu.Lock()
	defer c.imu.Unlock()
	c.istate = IdleBroken
	if err := c.rc.Control(c.peekFn); err != nil {
		return IdleBroken // closed on our side
	}
	return c.istate
}

// Usable reports whether c, an idle kept-alive connection, may carry a
// request: true unless CheckIdle finds it closed, reset or dirty. A
// connection that is not a *Conn (nor a *tls.Conn over one) is not checked.
// Bytes a TLS peer sent unasked (a close_notify alert, a late session
// ticket) count as dirty, which at worst costs a new connection.
func Usable(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	rc, ok := c.(*Conn)
	return !ok || rc.CheckIdle() == IdleClean
}
