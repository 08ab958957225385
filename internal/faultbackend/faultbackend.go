package faultbackend

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/recorder"
)

// Kind is what the Backend does with a request.
type Kind int

const (
	// KindOK reads the whole body and answers 200 with Mode.Body and a
	// Content-Length, keeping the connection open.
	KindOK Kind = iota
	// KindLatency is KindOK after waiting Mode.Delay.
	KindLatency
	// KindBandwidth is KindOK with the response (headers and body) written
	// at Mode.BytesPerSec.
	KindBandwidth
	// KindHang reads the whole body and never answers; the connection stays
	// open until the client or Close closes it.
	KindHang
	// KindResetBody reads at most Mode.N bytes of the request body, then
	// closes the connection with SO_LINGER 0 (the peer sees a TCP RST)
	// without answering.
	KindResetBody
	// KindResetResponse reads the whole body, sends the response headers
	// (Content-Length len(Mode.Body)) and the first Mode.N bytes of the body,
	// then resets the connection.
	KindResetResponse
	// KindSlowClose answers like KindOK with Connection: close, then waits
	// Mode.Delay before closing the connection.
	KindSlowClose
	// KindGarbage reads the whole body, writes bytes that are not an HTTP
	// response and closes the connection.
	KindGarbage
	// KindTruncated reads the whole body, answers with Content-Length
	// len(Mode.Body) but sends only the first Mode.N bytes, then closes
	// (FIN, not RST).
	KindTruncated
	// KindEndlessChunked reads the whole body and streams a chunked response
	// that never ends: it stops only when the peer goes away, on Close, or
	// after MaxEndless bytes (a safety bound; it then resets the connection).
	KindEndlessChunked
)

var kindNames = [...]string{"ok", "latency", "bandwidth", "hang", "reset-body", "reset-response",
	"slow-close", "garbage", "truncated", "endless-chunked"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// MaxEndless bounds what KindEndlessChunked writes on one connection.
const MaxEndless = 1 << 30

// Garbage is what KindGarbage writes.
const Garbage = "\x00\x01\x02 faultbackend: not HTTP \xff\xfe\r\n\r\n"

// DefaultBody is the response body when Mode.Body is nil.
var DefaultBody = []byte("faultbackend ok\n")

// Mode is what the Backend does. A request uses the Mode in force when its
// headers were parsed.
type Mode struct {
	// Kind is the fault. The zero value is KindOK.
	Kind Kind
	// Every applies the fault to every Every-th request (the Every-th, the
	// 2×Every-th, ...) and answers the others like KindOK. 0 or 1: every
	// request.
	Every int
	// Delay is the wait of KindLatency and KindSlowClose. Zero: none.
	Delay time.Duration
	// BytesPerSec is KindBandwidth's rate (zero or negative: 1024), and
	// KindEndlessChunked's (zero or negative: as fast as the peer reads).
	BytesPerSec int
	// N is a byte count: how much request body KindResetBody reads, how much
	// response body KindResetResponse and KindTruncated send. Zero means none.
	N int64
	// Body is the response body. Nil means DefaultBody.
	Body []byte
	// Status is the response status. Zero means 200.
	Status int
}

// Received is one request as the Backend saw it, recorded when it stopped
// reading the body.
type Received struct {
	Method, Path  string
	RequestID     string // X-Request-Id
	Shadow        bool   // X-Tandem-Shadow == "1"
	ContentLength int64  // as declared; -1 when unknown
	BodyRead      int64  // body bytes read
	Complete      bool   // the body was read to its end
	Kind          Kind   // the fault applied to this request
}

// Backend is a running fault-injecting server. Create it with Start.
type Backend struct {
	URL  string // http://127.0.0.1:port
	Addr string // 127.0.0.1:port

	ln       net.Listener
	done     chan struct{}
	wg       sync.WaitGroup
	conns    atomic.Int64
	accepted atomic.Int64
	seq      atomic.Int64
	endless  atomic.Int64

	mu   sync.Mutex
	mode Mode
	recs recorder.Log[Received]
	open map[net.Conn]struct{}
	once sync.Once
}

// Start starts a Backend on 127.0.0.1 with an ephemeral port and registers
// t.Cleanup(b.Close).
func Start(t testing.TB, m Mode) *Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultbackend: cannot listen: %v", err)
	}
	b := &Backend{
		Addr: ln.Addr().String(), ln: ln, done: make(chan struct{}), mode: m,
		open: map[net.Conn]struct{}{},
	}
	b.URL = "http://" + b.Addr
	b.wg.Add(1)
	go b.acceptLoop()
	t.Cleanup(b.Close)
	return b
}

// SetMode changes the mode for requests parsed from now on.
func (b *Backend) SetMode(m Mode) {
	b.mu.Lock()
	b.mode = m
	b.mu.Unlock()
}

// Received returns a copy of the recorded requests in recording order.
func (b *Backend) Received() []Received { return b.recs.All() }

// Count returns the number of recorded requests.
func (b *Backend) Count() int { return b.recs.Len() }

// WaitCount waits up to timeout for at least n recorded requests.
func (b *Backend) WaitCount(n int, timeout time.Duration) bool {
	return b.recs.Wait(n, timeout, b.done)
}

// Conns returns the number of connections open now.
func (b *Backend) Conns() int { return int(b.conns.Load()) }

// EndlessBytes returns the body bytes written by KindEndlessChunked so far.
func (b *Backend) EndlessBytes() int64 { return b.endless.Load() }

// Accepted returns the number of connections accepted so far.
func (b *Backend) Accepted() int { return int(b.accepted.Load()) }

// Close stops accepting, closes every connection and waits for every
// connection goroutine to return. It is idempotent.
func (b *Backend) Close() {
	b.once.Do(func() {
		close(b.done)
		b.ln.Close()
		b.mu.Lock()
		for c := range b.open {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
}

func (b *Backend) acceptLoop() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return // closed
		}
		b.mu.Lock()
		select {
		case <-b.done:
			b.mu.Unlock()
			c.Close()
			return
		default:
		}
		b.open[c] = struct{}{}
		b.conns.Add(1)
		b.accepted.Add(1)
		b.wg.Add(1)
		b.mu.Unlock()
		go b.serveConn(c)
	}
}

func (b *Backend) record(r Received) { b.recs.Add(r) }

// modeFor returns the mode of the next request with Every applied.
func (b *Backend) modeFor() Mode {
	b.mu.Lock()
	m := b.mode
	b.mu.Unlock()
	n := b.seq.Add(1)
	if m.Every > 1 && n%int64(m.Every) != 0 {
		m.Kind = KindOK
	}
	return m
}

// connDeadline bounds one connection's life, so that nothing here loops forever.
const connDeadline = 5 * time.Minute

func (b *Backend) serveConn(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		c.Close()
		b.mu.Lock()
		delete(b.open, c)
		b.mu.Unlock()
		b.conns.Add(-1)
	}()
	_ = c.SetDeadline(time.Now().Add(connDeadline))
	br := bufio.NewReader(c)
	for i := 0; i < 1_000_000; i++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		m := b.modeFor()
		keep, err := b.serveOne(c, req, m)
		if err != nil || !keep || req.Close {
			return
		}
	}
}

// reset closes c so that the peer sees a TCP RST.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (b *Backend) serveOne(c net.Conn, req *http.Request, m Mode) (keep bool, err error) {
	rec := Received{
		Method: req.Method, Path: req.URL.Path, RequestID: req.Header.Get("X-Request-Id"),
		Shadow: req.Header.Get("X-Tandem-Shadow") == "1", ContentLength: req.ContentLength, Kind: m.Kind,
	}
	limit := int64(-1)
	if m.Kind == KindResetBody {
		limit = m.N
	}
	rec.BodyRead, rec.Complete = readBody(req.Body, limit, req.ContentLength)
	b.record(rec)
	if m.Kind == KindResetBody {
		reset(c)
		return false, nil
	}
	if !rec.Complete {
		return false, nil
	}
	body := m.Body
	if body == nil {
		body = DefaultBody
	}
	status := m.Status
	if status == 0 {
		status = 200
	}
	head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/octet-stream\r\nX-Backend: fault\r\n", status, http.StatusText(status))
	clHead := head + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
	switch m.Kind {
	case KindOK:
		return true, writeAll(c, clHead+"\r\n", body)
	case KindLatency:
		if !b.sleep(m.Delay) {
			return false, nil
		}
		return true, writeAll(c, clHead+"\r\n", body)
	case KindBandwidth:
		rate := m.BytesPerSec
		if rate <= 0 {
			rate = 1024
		}
		return true, b.throttled(c, append([]byte(clHead+"\r\n"), body...), rate)
	case KindHang:
		// Hold the connection until the peer or Close closes it.
		_, _ = io.Copy(io.Discard, c)
		return false, nil
	case KindResetResponse:
		_ = writeAll(c, clHead+"\r\n", body[:min(m.N, int64(len(body)))])
		reset(c)
		return false, nil
	case KindSlowClose:
		err := writeAll(c, clHead+"Connection: close\r\n\r\n", body)
		b.sleep(m.Delay)
		return false, err
	case KindGarbage:
		_, _ = io.WriteString(c, Garbage)
		return false, nil
	case KindTruncated:
		_ = writeAll(c, clHead+"\r\n", body[:min(m.N, int64(len(body)))])
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		return false, nil
	case KindEndlessChunked:
		if err := writeAll(c, head+"Transfer-Encoding: chunked\r\n\r\n", nil); err != nil {
			return false, err
		}
		chunk := []byte(fmt.Sprintf("%x\r\n%s\r\n", len(body), body))
		for sent := int64(0); sent < MaxEndless; sent += int64(len(body)) {
			select {
			case <-b.done:
				return false, nil
			default:
			}
			if m.BytesPerSec > 0 && !b.sleep(time.Duration(float64(time.Second)*float64(len(body))/float64(m.BytesPerSec))) {
				return false, nil
			}
			if _, err := c.Write(chunk); err != nil {
				return false, err
			}
			b.endless.Add(int64(len(body)))
		}
		reset(c)
		return false, nil
	}
	return false, errors.New("faultbackend: unknown kind " + m.Kind.String())
}

// readBody reads and discards the body, at most limit bytes when limit >= 0
// (never more, so a reset happens exactly after limit bytes). cl is the
// declared length (-1 if unknown).
func readBody(r io.Reader, limit, cl int64) (n int64, complete bool) {
	if limit >= 0 {
		n, err := io.Copy(io.Discard, io.LimitReader(r, limit))
		return n, err == nil && (n < limit || n == cl)
	}
	n, err := io.Copy(io.Discard, r)
	return n, err == nil
}

func writeAll(c net.Conn, head string, body []byte) error {
	if _, err := io.WriteString(c, head); err != nil {
		return err
	}
	if len(body) > 0 {
		_, err := c.Write(body)
		return err
	}
	return nil
}

// throttled writes p at rate bytes per second in 10 slices a second.
func (b *Backend) throttled(c net.Conn, p []byte, rate int) error {
	step := max(rate/10, 1)
	for len(p) > 0 {
		n := min(step, len(p))
		if _, err := c.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if len(p) > 0 && !b.sleep(100*time.Millisecond) {
			return errors.New("faultbackend: closed")
		}
	}
	return nil
}

// sleep waits d or until Close; it reports whether d passed.
func (b *Backend) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.done:
		return false
	}
}
