package proxy

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandem-proxy/tandem/internal/rawconn"
)

// Lingering close.
//
// When the proxy answers before it has read the whole request (413 for a
// body over limits.max_body, 400 for broken framing, 408, an early backend
// answer) and closes the connection, the client may still be sending. Bytes
// that are unread in the socket when it is closed, or that arrive after, make
// the kernel answer with a RST, and a RST can destroy the response on its way
// or in the client's receive buffer: the client sees "connection reset by
// peer" instead of the status. So, like nginx's lingering_close, a connection
// the proxy closes first is half-closed (FIN after the response) and what the
// client still sends is read and thrown away, until the client closes its
// side, lingerBytes were discarded or lingerTime passed. Then it is closed.
//
// The drain runs in its own goroutine, so a slow or hostile client holds no
// server worker, and at most lingerMax connections linger at once; beyond
// that, and once the server is shutting down, connections close at once. A
// connection whose client already closed (a read returned EOF or failed) is
// closed at once too, as before: nothing more can arrive. The wrapper costs
// one allocation per connection and none per request.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20
	lingerMax   = 1024
)

// lingerListener wraps every accepted connection that can be half-closed.
type lingerListener struct {
	net.Listener
	set   *lingerSet
	plain bool // Options.DisableRawSyscalls: no rawconn wrapper
}

func (l *lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.plain {
		c = rawconn.Wrap(c)
	}
	cw, ok := c.(closeWriter)
	if !ok {
		return c, nil
	}
	return &lingerConn{Conn: c, cw: cw, set: l.set}, nil
}

type closeWriter interface{ CloseWrite() error }

// lingerConn is a client connection whose Close lingers. It embeds net.Conn
// (not *net.TCPConn), so reads can only go through Read.
type lingerConn struct {
	net.Conn
	cw       closeWriter
	set      *lingerSet
	peerDone atomic.Bool // a read saw EOF or a non-timeout error
	closed   atomic.Bool
}

func (c *lingerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.peerDone.Store(true)
	}
	return n, err
}

// Close half-closes the connection and leaves a goroutine to drain and close
// it, or closes it at once (see the comment at the top). Only the first call
// does anything.
func (c *lingerConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	if c.peerDone.Load() || !c.set.acquire(c) {
		return c.Conn.Close()
	}
	if err := c.cw.CloseWrite(); err != nil {
		c.set.release(c)
		return c.Conn.Close()
	}
	go c.drain()
	return nil
}

var lingerBufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

func (c *lingerConn) drain() {
	defer c.set.release(c)
	defer c.Conn.Close()
	bp := lingerBufPool.Get().(*[]byte)
	defer lingerBufPool.Put(bp)
	for n := 0; n < lingerBytes; {
		m, err := c.Conn.Read(*bp)
		n += m
		if err != nil {
			return
		}
	}
}

// lingerSet tracks the lingering connections of one server.
type lingerSet struct {
	mu      sync.Mutex
	conns   map[*lingerConn]struct{}
	stopped bool
	wg      sync.WaitGroup
}

// acquire registers c as lingering and sets its deadline, or reports that it
// must be closed at once.
func (s *lingerSet) acquire(c *lingerConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || len(s.conns) >= lingerMax {
		return false
	}
	// Under the lock, so that stop's deadline cannot be overwritten.
	if err := c.Conn.SetReadDeadline(time.Now().Add(lingerTime)); err != nil {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*lingerConn]struct{})
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *lingerSet) release(c *lingerConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// stop makes every later Close immediate, cuts the lingering connections
// short and waits until they are closed.
func (s *lingerSet) stop() {
	s.mu.Lock()
	s.stopped = true
	for c := range s.conns {
		c.Conn.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// active returns how many connections are lingering.
func (s *lingerSet) active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
