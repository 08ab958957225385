package loadtest

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// The client is fasthttp's HostClient, one per attack: it reuses each
// connection's buffers and a worker's Request and Response across hits, so
// a hit allocates next to nothing and the client is not what limits the
// rate. Its conveniences that would falsify a measurement are turned off:
// no retries (a failed hit is reported, not resent), no waiting for a free
// connection (there is one connection per worker), and paths and header
// names go out exactly as given.

// newHostClient returns the client for an attack on u with at most conns
// connections, which dial calls.
func newHostClient(u *url.URL, conns int, timeout time.Duration, dial fasthttp.DialFuncWithTimeout) *fasthttp.HostClient {
	isTLS := u.Scheme == "https"
	return &fasthttp.HostClient{
		Addr:                          fasthttp.AddMissingPort(u.Host, isTLS),
		IsTLS:                         isTLS,
		DialTimeout:                   dial,
		Name:                          "tandem-loadtest",
		MaxConns:                      conns,
		MaxConnWaitTimeout:            timeout,
		MaxIdemponentCallAttempts:     1,
		RetryIfErr:                    func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		ReadTimeout:                   timeout,
		WriteTimeout:                  timeout,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		ConnPoolStrategy:              fasthttp.LIFO, // reuse the hot connections
		// Close idle connections before a typical server would, so a
		// stale one does not fail a hit (there are no retries).
		MaxIdleConnDuration: 2 * time.Second,
	}
}

// dialer opens the attack's connections, TLS handshake included, and
// counts those being opened: the open-loop attacker starts no more workers
// while too many are still connecting, so that a slow start or a stall on
// the attacker's own machine does not snowball into thousands of dials.
type dialer struct {
	tls     *tls.Config // nil for http://
	dialing atomic.Int64
	done    func() // called after each dial; may be nil
}

func newDialer(u *url.URL, cfg *tls.Config) *dialer {
	d := &dialer{}
	if u.Scheme == "https" {
		if cfg == nil {
			cfg = &tls.Config{}
		} else {
			cfg = cfg.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		d.tls = cfg
	}
	return d
}

func (d *dialer) dial(addr string, timeout time.Duration) (net.Conn, error) {
	d.dialing.Add(1)
	defer func() {
		d.dialing.Add(-1)
		if d.done != nil {
			d.done()
		}
	}()
	deadline := time.Now().Add(timeout)
	conn, err := fasthttp.DialTimeout(addr, timeout)
	if err != nil || d.tls == nil {
		return conn, err
	}
	tc := tls.Client(conn, d.tls)
	tc.SetDeadline(deadline)
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// Transport error kinds: the closed set of keys of Results.Errors.
const (
	ErrTimeout = "timeout" // no complete response within Options.Timeout
	ErrRefused = "refused" // connection refused
	ErrReset   = "reset"   // connection reset or broken pipe
	ErrClosed  = "closed"  // the server closed the connection before the response was complete
	ErrDial    = "dial"    // any other failure to connect (DNS, unreachable network)
	ErrTLS     = "tls"     // TLS handshake failure
	ErrNoConns = "no_conns"
	ErrOther   = "other"
)

// errorKind maps a transport error to one of the Err* kinds.
func errorKind(err error) string {
	var (
		ne   net.Error
		dial *fasthttp.ErrDialWithUpstream
		rec  tls.RecordHeaderError
		ver  *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ErrReset
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, fasthttp.ErrTLSHandshakeTimeout),
		errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrClosed
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return ErrNoConns
	case errors.As(err, &rec), errors.As(err, &ver):
		return ErrTLS
	case errors.As(err, &dial):
		return ErrDial
	}
	return ErrOther
}
