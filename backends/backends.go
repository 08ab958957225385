package backends

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/tandem-proxy/tandem/internal/rawconn"
	"github.com/valyala/fasthttp"
)

// Role says which pool a request uses.
type Role uint8

const (
	Served Role = iota // the request whose response the client gets
	Shadow             // the mirrored copy; optional work
)

func (r Role) String() string {
	if r == Shadow {
		return "shadow"
	}
	return "served"
}

// ErrBreakerOpen is returned by Allow while the backend's breaker refuses traffic.
var ErrBreakerOpen = errors.New("circuit breaker open")

// ErrNotTried, given to Allow's done, says the exchange told nothing about
// the backend: tandem refused the request itself (the client's body was too
// large, too slow or malformed) or could not send it for reasons of its own.
// The breaker counts it neither as a success nor as a failure.
var ErrNotTried = errors.New("request not tried on the backend")

// doer is what both fasthttp.HostClient and fasthttp.LBClient offer.
type doer interface {
	Do(req *fasthttp.Request, resp *fasthttp.Response) error
}

// Backend is one upstream service with its two pools and its breaker.
// It is safe for concurrent use.
type Backend struct {
	Name    string
	Timeout time.Duration
	// URL is the first instance's base URL, as given in Options.URLs: the
	// proxy takes from it the Host header of a request that has none, and
	// the scheme of its URI.
	URL     string
	served  doer
	shadow  doer
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
}

// Defaults for the zero values of Options.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultMaxConns        = 1024
	DefaultShadowConns     = 64
	DefaultBreakerFailures = 5
	DefaultBreakerOpenFor  = 10 * time.Second
)

// Options configure one backend. Every zero value has a documented meaning;
// only URLs is required.
type Options struct {
	// URLs are the instances' base URLs (http or https, host and port, no
	// path), balanced by least load. At least one is required.
	URLs []string
	// Timeout bounds one whole exchange with the backend, body included.
	// Zero means DefaultTimeout (30s).
	Timeout time.Duration
	// MaxConns bounds the connections to each instance for served traffic.
	// Zero means DefaultMaxConns (1024).
	MaxConns int
	// ShadowConns bounds the shadow pool's connections per instance.
	// Zero means DefaultShadowConns (64).
	ShadowConns int
	// BreakerFailures is the number of consecutive failures that opens the
	// breaker. Zero means DefaultBreakerFailures (5).
	BreakerFailures int
	// BreakerOpenFor is how long the breaker stays open before it lets one
	// probe through (half-open). Zero means DefaultBreakerOpenFor (10s).
	BreakerOpenFor time.Duration
	// OnBreakerChange, if non-nil, is called on every breaker state change.
	OnBreakerChange func(backend string, from, to State)
	// DisableRawSyscalls makes connections read and write through Go's
	// net package instead of raw system calls (internal/rawconn); the idle
	// check before a kept-alive connection is reused stays. Zero (false):
	// raw calls, on Linux only; elsewhere there are none either way.
	DisableRawSyscalls bool
}

func (o *Options) fill() {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.ShadowConns <= 0 {
		o.ShadowConns = DefaultShadowConns
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerOpenFor <= 0 {
		o.BreakerOpenFor = DefaultBreakerOpenFor
	}
}

// State is a breaker state; the values are those of tandem_breaker_state.
type State int

const (
	StateClosed   State = 0
	StateHalfOpen State = 1
	StateOpen     State = 2
)

func (s State) String() string {
	switch s {
	case StateHalfOpen:
		return "half-open"
	case StateOpen:
		return "open"
	}
	return "closed"
}

func fromGobreaker(s gobreaker.State) State {
	switch s {
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	case gobreaker.StateOpen:
		return StateOpen
	}
	return StateClosed
}

// New builds the clients of backend name.
func New(name string, o Options) (*Backend, error) {
	o.fill()
	if len(o.URLs) == 0 {
		return nil, fmt.Errorf("cannot build backend %s: no URL", name)
	}
	b := &Backend{Name: name, Timeout: o.Timeout, URL: o.URLs[0]}
	dial := dialRaw
	if o.DisableRawSyscalls {
		dial = dialChecked
	}
	mk := func(maxConns int) (doer, error) {
		var hcs []fasthttp.BalancingClient
		var first *fasthttp.HostClient
		for _, raw := range o.URLs {
			hc, err := newHostClient(name, raw, maxConns, b.Timeout, dial)
			if err != nil {
				return nil, err
			}
			if first == nil {
				first = hc
			}
			hcs = append(hcs, hc)
		}
		if len(hcs) == 1 {
			return timeoutDoer{first, b.Timeout}, nil
		}
		return &fasthttp.LBClient{Clients: hcs, Timeout: b.Timeout}, nil
	}
	var err error
	if b.served, err = mk(o.MaxConns); err != nil {
		return nil, err
	}
	if b.shadow, err = mk(o.ShadowConns); err != nil {
		return nil, err
	}
	failures := uint32(o.BreakerFailures)
	b.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     o.BreakerOpenFor,
		ReadyToTrip: func(cn gobreaker.Counts) bool { return cn.ConsecutiveFailures >= failures },
		IsExcluded:  func(err error) bool { return errors.Is(err, ErrNotTried) },
		OnStateChange: func(n string, from, to gobreaker.State) {
			if o.OnBreakerChange != nil {
				o.OnBreakerChange(n, fromGobreaker(from), fromGobreaker(to))
			}
		},
	})
	return b, nil
}

// writeBufferSize is the buffer a request is written through. A request of
// up to 64 KiB of body plus 8 KiB of headers leaves in one write; with 16 KiB
// (fasthttp's default is 4) the headers and the start of the body went out
// first and the rest in a second write. Measured at 64 KiB uploads under wrk:
// 2.6 instead of 4.9 writes per request (strace -c, requests counted by the
// backend), and tandem CPU 173 against 192 µs per request (old and new
// binaries alternating, 3 pairs; the machine's noise is about ±10%). A writer
// is held only while one request is written, so this costs 72 KiB per request
// being written, not per connection.
const writeBufferSize = 72 << 10

func newHostClient(name, raw string, maxConns int, timeout time.Duration, dial fasthttp.DialFuncWithTimeout) (*fasthttp.HostClient, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("cannot parse URL of backend %s: %w", name, err)
	}
	hc := &fasthttp.HostClient{
		Addr:                     hostPort(u),
		Name:                     "",
		NoDefaultUserAgentHeader: true,
		IsTLS:                    u.Scheme == "https",
		MaxConns:                 maxConns,
		MaxIdleConnDuration:      30 * time.Second,
		// A proxy must not retry: a retried upload would reach legacy twice.
		MaxIdemponentCallAttempts: 1,
		RetryIf:                   func(*fasthttp.Request) bool { return false },
		ReadBufferSize:            16 << 10,
		WriteBufferSize:           writeBufferSize,
		StreamResponseBody:        true,
		DisablePathNormalizing:    true,
		// Bodies are streamed, so a slow peer is bounded by the request
		// deadline (the backend's timeout), not by per-read timeouts.
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		DialTimeout:  dial,
		// A kept-alive connection the backend closed, reset or wrote to
		// unasked while it sat in the pool is closed, not reused: one
		// non-blocking peek per reuse (internal/rawconn). Answers that say
		// the connection closes, and bytes left after an answer, are known
		// without it (the patched fasthttp never pools those).
		IdleConnCheck: rawconn.Usable,
	}
	if hc.IsTLS {
		hc.TLSConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	return hc, nil
}

// dialRaw dials as fasthttp does without a dial function (a zero timeout
// means fasthttp's default one, not an expired one) and wraps the
// connection for raw reads and writes (internal/rawconn).
func dialRaw(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := dialPlain(addr, timeout)
	if err != nil {
		return nil, err
	}
	return rawconn.Wrap(c), nil
}

// dialChecked is dialRaw without the raw calls: reads and writes go through
// the net package, and the connection can still be checked before reuse.
func dialChecked(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := dialPlain(addr, timeout)
	if err != nil {
		return nil, err
	}
	return rawconn.WrapChecked(c), nil
}

func dialPlain(addr string, timeout time.Duration) (net.Conn, error) {
	if timeout > 0 {
		return fasthttp.DialTimeout(addr, timeout)
	}
	return fasthttp.Dial(addr)
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// timeoutDoer applies the backend timeout to a single HostClient (LBClient
// applies its own).
type timeoutDoer struct {
	hc      *fasthttp.HostClient
	timeout time.Duration
}

func (d timeoutDoer) Do(req *fasthttp.Request, resp *fasthttp.Response) error {
	req.SetTimeout(d.timeout)
	return d.hc.Do(req, resp)
}

// Do sends req through the pool of role and fills resp. The response body is
// streamed: the caller reads resp.BodyStream() and must call
// resp.CloseBodyStream(). req's body may be a stream.
func (b *Backend) Do(req *fasthttp.Request, resp *fasthttp.Response, role Role) error {
	if role == Shadow {
		return b.shadow.Do(req, resp)
	}
	return b.served.Do(req, resp)
}

// Allow asks the breaker whether optional traffic may go to this backend. On
// success the caller must call done exactly once with the exchange's outcome
// (nil for success; ErrNotTried when the exchange says nothing about the
// backend). It returns ErrBreakerOpen while the breaker refuses.
func (b *Backend) Allow() (done func(error), err error) {
	done, err = b.breaker.Allow()
	if err != nil {
		return nil, ErrBreakerOpen
	}
	return done, nil
}

// BreakerState returns the breaker's current state.
func (b *Backend) BreakerState() State { return fromGobreaker(b.breaker.State()) }

// Reason is a closed set of upstream failure reasons (a metric label).
type Reason string

const (
	ReasonConnect  Reason = "connect"    // could not connect (refused, no route, DNS)
	ReasonTimeout  Reason = "timeout"    // the backend's timeout expired
	ReasonReset    Reason = "reset"      // the connection was closed or reset mid-exchange
	ReasonProtocol Reason = "protocol"   // the backend answered something that is not HTTP
	ReasonStatus   Reason = "status_5xx" // the backend answered 5xx
	ReasonBusy     Reason = "busy"       // every pooled connection was in use
)

// Classify maps an upstream error to its reason. It returns "" for nil.
func Classify(err error) Reason {
	if err == nil {
		return ""
	}
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, fasthttp.ErrConnPoolStrategyNotImpl):
		return ReasonBusy
	case IsConnectError(err):
		return ReasonConnect
	case errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return ReasonReset
	}
	return ReasonProtocol
}

// RetryReason is a closed set of reasons a request is sent again (the reason
// label of tandem_backend_retries_total).
type RetryReason string

const (
	// RetryReusedClosed: the kept-alive connection it was written on had
	// been closed by the backend (EOF before any response byte).
	RetryReusedClosed RetryReason = "reused_closed"
	// RetryReusedReset: the kept-alive connection was reset (ECONNRESET or
	// EPIPE before any response byte).
	RetryReusedReset RetryReason = "reused_reset"
)

// RetryReasons lists every RetryReason.
var RetryReasons = []RetryReason{RetryReusedClosed, RetryReusedReset}

// Retryable reports whether err is a kept-alive connection's failure before
// any byte of the response arrived, and why. Such a request did not reach
// the backend's application, so it may be sent again, if its body can be
// replayed (the caller's part). A failure on a new connection, a timeout, or
// anything after a response byte is never retryable.
func Retryable(err error) (RetryReason, bool) {
	var re *fasthttp.ReusedConnError
	if !errors.As(err, &re) {
		return "", false
	}
	if errors.Is(re.Err, io.EOF) || errors.Is(re.Err, fasthttp.ErrConnectionClosed) {
		return RetryReusedClosed, true
	}
	return RetryReusedReset, true
}

// IsConnectError reports whether err happened while connecting, before any
// byte of the request was sent, so the request can safely go elsewhere.
func IsConnectError(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fasthttp.ErrDialTimeout)
}
