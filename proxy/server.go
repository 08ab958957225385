package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/valyala/fasthttp"
)

// Observer receives every finished comparison (the diff store, reports). It
// is called from shadow workers and must not block for long.
type Observer interface {
	Observe(*exchange.Exchange)
}

// Defaults for the zero values of Options.
const (
	DefaultMaxBody           = 1 << 30
	DefaultSpoolMemory       = 1 << 20
	DefaultSpoolDisk         = 4 << 30
	DefaultShadowConcurrency = 64
	DefaultCompareMaxBody    = 32 << 20
	DefaultCompareMemory     = 64 << 20
	DefaultCompareQueue      = 64
	DefaultDecodeMemory      = 256 << 20
	DefaultHeaderTimeout     = 10 * time.Second
	DefaultBodyTimeout       = 10 * time.Minute
	DefaultWriteTimeout      = 10 * time.Minute
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeader         = 64 << 10
)

// Options configure a Server. Only Backends is required; every other zero
// value has a documented meaning. The defaults are those of the config
// file's keys of the same names (limits.*, client.*).
type Options struct {
	// Backends by name, as built by backends.New. Required.
	Backends map[string]*backends.Backend
	// Rules are the rules in force at start. Nil: no routes (every request
	// gets 404) until SetRules.
	Rules *rules.Rules
	// Logger receives start-up, shutdown and error lines. Nil: slog.Default().
	Logger *slog.Logger
	// Observer, if non-nil, receives every finished comparison.
	Observer Observer
	// Learner holds learned and marked noise. Nil: a fresh one.
	Learner *compare.Learner
	// Metrics is the set the server's metrics are created in; the caller
	// exports it. Nil: a set of the server's own (see Server.Metrics). Two
	// servers must not share a set.
	Metrics *metrics.Set
	// AccessLog is the share of requests (0..1) logged, one line each, at
	// Info level; the sample is chosen by request id. Zero: no access log.
	AccessLog float64
	// SpoolDir holds the shadow bodies spooled to disk (unlinked at
	// creation). Empty: "tandem-spool" under os.TempDir().
	SpoolDir string

	// MaxBody is the largest request body accepted; larger gets 413.
	// Zero: DefaultMaxBody (1 GiB).
	MaxBody int64
	// SpoolMemory is the per-request body bytes kept in memory before
	// spooling to disk. Zero: DefaultSpoolMemory (1 MiB).
	SpoolMemory int64
	// SpoolDisk is the total disk for spooled shadow bodies; past it the
	// shadow is skipped (spool_full). Zero: DefaultSpoolDisk (4 GiB).
	SpoolDisk int64
	// ShadowConcurrency is the number of shadow requests in flight; past it
	// the shadow is skipped (queue_full). Zero: DefaultShadowConcurrency (64).
	ShadowConcurrency int
	// CompareMaxBody is the response bytes kept for comparison; beyond, the
	// bodies are compared by hash and size. Zero: DefaultCompareMaxBody (32 MiB).
	CompareMaxBody int64
	// CompareMemory bounds the response bytes held for comparison by all
	// shadow jobs together. Zero: DefaultCompareMemory (64 MiB).
	CompareMemory int64
	// CompareWorkers is the number of goroutines comparing finished pairs.
	// Zero: max(1, GOMAXPROCS/2).
	CompareWorkers int
	// CompareQueue is the number of finished pairs waiting for a compare
	// worker; past it a pair is dropped. Zero: DefaultCompareQueue (64).
	CompareQueue int
	// DecodeMemory bounds the memory of image decoding by all comparisons
	// (and the admin heat maps sharing DecodeBudget). Zero:
	// DefaultDecodeMemory (256 MiB).
	DecodeMemory int64

	// HeaderTimeout is the time allowed to receive a request's headers.
	// Zero: DefaultHeaderTimeout (10s).
	HeaderTimeout time.Duration
	// BodyTimeout is the time allowed to receive a whole request body.
	// Zero: DefaultBodyTimeout (10m).
	BodyTimeout time.Duration
	// WriteTimeout is the time allowed to write a whole response.
	// Zero: DefaultWriteTimeout (10m).
	WriteTimeout time.Duration
	// IdleTimeout is how long an idle keep-alive connection stays open.
	// Zero: DefaultIdleTimeout (60s).
	IdleTimeout time.Duration
	// MaxHeader is the largest request header block; larger gets 431.
	// Zero: DefaultMaxHeader (64 KiB).
	MaxHeader int
	// UnderscoresInHeaders keeps request headers whose names contain an
	// underscore. Zero (false): they are dropped before any backend sees
	// them, as nginx does (see config's client.underscores_in_headers).
	UnderscoresInHeaders bool
	// DisableRawSyscalls makes client connections read and write through
	// Go's net package instead of raw system calls (internal/rawconn).
	// Zero (false): raw calls, on Linux only.
	DisableRawSyscalls bool
}

func (o *Options) fill() {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxBody, DefaultMaxBody)
	def(&o.SpoolMemory, DefaultSpoolMemory)
	def(&o.SpoolDisk, DefaultSpoolDisk)
	def(&o.CompareMaxBody, DefaultCompareMaxBody)
	def(&o.CompareMemory, DefaultCompareMemory)
	def(&o.DecodeMemory, DefaultDecodeMemory)
	if o.ShadowConcurrency <= 0 {
		o.ShadowConcurrency = DefaultShadowConcurrency
	}
	if o.CompareQueue <= 0 {
		o.CompareQueue = DefaultCompareQueue
	}
	if o.MaxHeader <= 0 {
		o.MaxHeader = DefaultMaxHeader
	}
	defDur(&o.HeaderTimeout, DefaultHeaderTimeout)
	defDur(&o.BodyTimeout, DefaultBodyTimeout)
	defDur(&o.WriteTimeout, DefaultWriteTimeout)
	defDur(&o.IdleTimeout, DefaultIdleTimeout)
	if o.SpoolDir == "" {
		o.SpoolDir = filepath.Join(os.TempDir(), "tandem-spool")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Learner == nil {
		o.Learner = compare.NewLearner()
	}
}

// Server is the client-facing proxy.
type Server struct {
	o        Options // filled
	log      *slog.Logger
	backends map[string]*backends.Backend
	table    atomic.Pointer[table]
	srv      *fasthttp.Server
	spools   *spoolPool
	learner  *compare.Learner
	observer Observer
	m        *serverMetrics

	shadows    *shadowPool     // runs the shadow copies (shadowpool.go)
	compares   chan *shadowJob // finished pairs waiting for a compare worker (comparequeue.go)
	cmpWorkers sync.WaitGroup
	cmpMu      sync.RWMutex // held for reading while sending on compares, for writing to close it
	cmpClosed  bool         // under cmpMu
	decode     *compare.DecodeBudget
	idPrefix   [16]byte // hex of 8 random bytes
	idCounter  atomic.Uint64
	maxBody    int64
	compareMax int64
	captureMem *memBudget               // response bytes held for comparison, all jobs together
	accessLog  uint32                   // buckets of rules.Buckets logged; 0 = off
	targets    map[string]backendTarget // by backend name (hostFor, schemeFor)
	lingers    lingerSet                // client connections draining before close (linger.go)
}

// New builds a Server with o.Rules in force.
func New(o Options) (*Server, error) {
	o.fill()
	s := &Server{
		o:          o,
		log:        o.Logger,
		backends:   o.Backends,
		learner:    o.Learner,
		observer:   o.Observer,
		maxBody:    o.MaxBody,
		compareMax: o.CompareMaxBody,
		captureMem: newMemBudget(o.CompareMemory),
		accessLog:  rules.Threshold(100 * o.AccessLog),
	}
	s.targets = backendTargets(o.Backends)
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("cannot seed request ids: %w", err)
	}
	hex.Encode(s.idPrefix[:], rnd[:])
	var err error
	s.spools, err = newSpoolPool(o.SpoolDir, o.SpoolMemory, o.SpoolDisk)
	if err != nil {
		return nil, err
	}
	s.shadows = newShadowPool(o.ShadowConcurrency, s.runShadow)
	s.m = newServerMetrics(s, o.Metrics)
	s.startCompares()
	initial := rules.Rules{}
	if o.Rules != nil {
		initial = *o.Rules
	}
	if err := s.SetRules(initial.Version, initial.Routes); err != nil {
		return nil, err
	}
	s.srv = &fasthttp.Server{
		Handler:                       s.handle,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		StreamRequestBody:             true,
		DisablePreParseMultipartForm:  true,
		MaxRequestBodySize:            int(o.MaxBody),
		ReadBufferSize:                o.MaxHeader,
		WriteBufferSize:               16 << 10,
		ReadTimeout:                   o.HeaderTimeout,
		WriteTimeout:                  o.WriteTimeout,
		IdleTimeout:                   o.IdleTimeout,
		CloseOnShutdown:               true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fasthttpLogger{s.log},
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: o.BodyTimeout}
		},
		ErrorHandler: s.parseError,
		ExpectHandler: func(ctx *fasthttp.RequestCtx) int {
			if int64(ctx.Request.Header.ContentLength()) > s.maxBody {
				s.m.clientError(fasthttp.StatusRequestEntityTooLarge)
				return fasthttp.StatusRequestEntityTooLarge
			}
			return fasthttp.StatusContinue
		},
	}
	s.shadows.start()
	return s, nil
}

// backendTarget is what an outbound request's URI takes from the backend it
// goes to.
type backendTarget struct {
	// host is the Host header a request that has none is sent with: the
	// host[:port] of the backend's (first) URL, as configured; nginx's
	// proxy_pass sends its upstream's name the same way.
	host []byte
	// scheme is the URL's: fasthttp's client refuses (before any byte) a
	// request whose URI scheme is not its connection's, so an https backend
	// got none of its requests.
	scheme []byte
}

// backendTargets maps every backend to its backendTarget. A backend without
// a parsable URL gets its name as host and http.
func backendTargets(bs map[string]*backends.Backend) map[string]backendTarget {
	out := make(map[string]backendTarget, len(bs))
	for name, b := range bs {
		t := backendTarget{host: []byte(name), scheme: strHTTP}
		if u, err := url.Parse(b.URL); err == nil && u.Host != "" {
			t.host = []byte(u.Host)
			if u.Scheme == "https" {
				t.scheme = strHTTPS
			}
		}
		out[name] = t
	}
	return out
}

// hostFor is the Host sent to b for a request whose client sent none.
func (s *Server) hostFor(b *backends.Backend) []byte { return s.targets[b.Name].host }

// schemeFor is the scheme of the URI of a request sent to b.
func (s *Server) schemeFor(b *backends.Backend) []byte { return s.targets[b.Name].scheme }

// Metrics returns the set the server's metrics are in (Options.Metrics, or
// its own).
func (s *Server) Metrics() *metrics.Set { return s.m.set }

// SetRules compiles routes and makes them the rules for the next request.
// On error the previous rules stay in force.
func (s *Server) SetRules(version int64, routes []rules.Route) error {
	t, err := compileTable(version, routes, s.backends, s.m, s.decode)
	if err != nil {
		return err
	}
	for _, r := range routes {
		s.learner.Configure(r.Name, r.Compare)
	}
	s.table.Store(t)
	return nil
}

// RulesSource is where the data plane takes its rules from: a rules store
// (rulestore.State) that calls f with the rules in force at once and then
// with every new version, in order.
type RulesSource interface {
	Subscribe(f func(rules.Rules))
}

// Follow puts every version src publishes in force. A version that does not
// compile (which a store validating with CheckRules never publishes) is
// logged and the previous rules stay.
func (s *Server) Follow(src RulesSource) {
	src.Subscribe(func(r rules.Rules) {
		if err := s.SetRules(r.Version, r.Routes); err != nil {
			s.log.Error("BUG: rules not applied to the data plane", "version", r.Version, "err", err)
		}
	})
}

// CheckRules compiles routes as SetRules would, without putting them in
// force or creating their metrics: a dry run, so that a rules store can
// refuse a version the data plane could not serve (the app makes it part of
// the rules state's validator).
func (s *Server) CheckRules(routes []rules.Route) error {
	_, err := compileTable(0, routes, s.backends, nil, s.decode)
	return err
}

// RulesVersion returns the version of the rules in force.
func (s *Server) RulesVersion() int64 { return s.table.Load().version }

// Learner returns the server's noise learner.
func (s *Server) Learner() *compare.Learner { return s.learner }

// Serve accepts connections on ln until Shutdown. Connections the proxy
// closes first linger briefly, so that the client reads the last response
// (linger.go).
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(&lingerListener{Listener: ln, set: &s.lingers, plain: s.o.DisableRawSyscalls})
}

// Shutdown stops accepting connections, waits for in-flight served requests
// (bounded by ctx), then lets running shadow jobs finish within what is left
// of ctx, counting the ones abandoned in tandem_shadow_abandoned_total, and
// then the queued comparisons.
func (s *Server) Shutdown(ctx context.Context) error {
	s.lingers.stop() // from now on connections close at once
	err := s.srv.ShutdownWithContext(ctx)
	if n := s.shadows.stop(ctx); n > 0 {
		s.m.abandoned.Add(int(n))
		s.log.Warn("shutdown deadline passed with shadow requests in flight", "abandoned", n)
	}
	s.closeCompares()
	compared := make(chan struct{})
	go func() { s.cmpWorkers.Wait(); close(compared) }()
	select {
	case <-compared:
	case <-ctx.Done():
	}
	return err
}

// handle serves one client request. See the package doc for ownership rules.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	if st, msg := checkRequestLine(&ctx.Request.Header); st != 0 {
		s.fail(ctx, st, msg, true) // no backend sees it, so none mirrors it
		return
	}
	meta := metaPool.Get().(*reqMeta)
	defer metaPool.Put(meta)
	meta.keepUnderscores = s.o.UnderscoresInHeaders
	if err := scanHeaders(ctx.Request.Header.RawHeaders(), meta); err != nil {
		s.fail(ctx, fasthttp.StatusBadRequest, err.Error(), true)
		return
	}
	t := s.table.Load()
	rt := t.match(ctx.Method(), ctx.Path())
	if rt == nil {
		s.fail(ctx, fasthttp.StatusNotFound, "no route matches this request", false)
		return
	}
	cl := int64(ctx.Request.Header.ContentLength())
	if cl > s.maxBody {
		s.refuse(ctx, rt, fasthttp.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	if cl == -2 {
		cl = 0 // no Content-Length and no Transfer-Encoding: no body
	}

	var idBuf [40]byte
	id := ctx.Request.Header.PeekBytes(hdrXRequestID)
	if !validRequestID(id) {
		id = s.newRequestID(idBuf[:0])
	}

	// Decide who serves and whether to mirror.
	servedByNew := false
	if rt.new != nil && rt.serveThreshold > 0 {
		key := stickyKey(ctx, rt, id)
		servedByNew = rules.Bucket(rt.Name, b2s(key)) < rt.serveThreshold
	}
	serving := rt.legacy
	var newDone func(error)
	if servedByNew {
		done, err := rt.new.Allow()
		if err != nil {
			servedByNew = false
			rt.m.fallback.Inc()
		} else {
			serving, newDone = rt.new, done
		}
	}

	// Shadow admission: every mirrored-or-not decision is counted once.
	var sp *spool
	var skip exchange.Outcome
	if rt.new != nil {
		shadowTarget := rt.new
		if servedByNew {
			shadowTarget = rt.legacy
		}
		switch {
		case rules.MirrorBucket(rt.Name, b2s(id)) >= rt.mirrorThreshold:
			skip = exchange.Sampling
		case shadowTarget.BreakerState() == backends.StateOpen:
			skip = exchange.BreakerOpen
		case s.shadows.full():
			skip = exchange.QueueFull
		default:
			sp, skip = s.spools.get(cl)
		}
	}

	out := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(out)
	if err := buildOutbound(ctx, meta, id, out, s.hostFor(serving), s.schemeFor(serving)); err != nil {
		// No backend sees it, so no breaker hears of it: new's done is
		// told the exchange says nothing about new.
		if newDone != nil {
			newDone(backends.ErrNotTried)
		}
		if sp != nil {
			sp.release()
		}
		s.refuse(ctx, rt, fasthttp.StatusBadRequest, err.Error())
		return
	}

	body := bodyPool.Get().(*bodyReader)
	*body = bodyReader{r: ctx.RequestBodyStream(), limit: s.maxBody}
	defer bodyPool.Put(body)
	if sp != nil {
		body.tee = sp
	}
	setBody := func() {
		if cl != 0 && body.r != nil {
			out.SetBodyStream(body, int(cl))
		}
	}
	setBody()

	resp := fasthttp.AcquireResponse()
	start := time.Now()
	err := s.doServed(rt, serving, out, resp, body, cl)
	if newDone != nil {
		newDone(servedBreakerResult(err, resp, body))
		if err != nil && body.n == 0 && backends.IsConnectError(err) {
			// new refused before any byte was sent: legacy serves instead.
			rt.m.backendError(rt.new.Name, backends.ReasonConnect)
			rt.m.fallback.Inc()
			servedByNew, serving = false, rt.legacy
			out.URI().SetSchemeBytes(s.schemeFor(serving))
			if meta.hostless {
				out.Header.SetHostBytes(s.hostFor(serving))
			}
			setBody()
			start = time.Now()
			err = s.doServed(rt, serving, out, resp, body, cl)
		}
	}
	ttfb := time.Since(start)
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		if sp != nil {
			sp.release()
			sp, skip = nil, exchange.Error
		}
		s.countShadowSkip(rt, skip)
		s.upstreamFailed(ctx, rt, serving, servedByNew, body, err)
		return
	}
	rt.m.duration[serving.Name][backends.Served].Update(ttfb.Seconds())
	if resp.StatusCode() >= 500 {
		rt.m.backendError(serving.Name, backends.ReasonStatus)
	}
	if s.accessLog > 0 && rules.MirrorBucket("access-log", b2s(id)) < s.accessLog {
		s.log.Info("request", "id", string(id), "route", rt.Name, "method", string(ctx.Method()),
			"path", string(ctx.Path()), "status", resp.StatusCode(), "served_by", serving.Name,
			"ttfb_ms", float64(ttfb.Microseconds())/1000, "mirrored", sp != nil)
	}

	// Hand the shadow its own copy of the request before the handler returns.
	var job *shadowJob
	if sp != nil {
		if sp.failed == "" && cl >= 0 && body.n != cl {
			sp.fail(exchange.Error) // the backend answered before reading the whole body
		}
		if sp.failed == "" && cl < 0 && !body.eof {
			sp.fail(exchange.Error)
		}
		if sp.failed != "" {
			skip = sp.failed
			sp.release()
		} else {
			job = s.newJob(rt, out, sp, servedByNew, id, ttfb)
			job.hostless = meta.hostless
			if !s.shadows.submit(job) {
				job.release()
				job, skip = nil, exchange.QueueFull
			}
		}
	}
	s.countShadowSkip(rt, skip)
	by := byLegacy
	if servedByNew {
		by = byNew
	}
	rt.m.answers.add(by, job != nil, resp.StatusCode() >= 500)

	copyResponseHeaders(&resp.Header, &ctx.Response.Header)
	if body.unreadOverDrain(cl) {
		// The backend answered before reading the whole body (an early 413,
		// say). After the answer, fasthttp drains at most
		// maxUnreadClientBody of what the client still sends and otherwise
		// closes the connection, unannounced when the answer is streamed: a
		// client that reused it for its next request got EOF. Announce it.
		ctx.SetConnectionClose()
	}
	sb := servedBodyPool.Get().(*servedBody)
	*sb = servedBody{upstream: resp, r: resp.BodyStream(), job: job, rt: rt, backend: serving, by: by}
	if job != nil {
		job.servedCap.setHeader(&resp.Header)
	}
	respCL := resp.Header.ContentLength()
	switch {
	case ctx.IsHead():
		if respCL >= 0 {
			ctx.Response.Header.SetContentLength(respCL)
		}
		ctx.Response.SkipBody = true
		sb.Close()
	case respCL == 0:
		ctx.Response.Header.SetContentLength(0)
		sb.Close()
	default:
		// -1 (chunked) and -2 (until close) are both relayed chunked.
		if respCL < 0 {
			respCL = -1
		}
		ctx.Response.SetBodyStream(sb, respCL)
	}
}

// parseError answers requests fasthttp could not parse (the connection is
// then closed): 431 for headers over client.max_header, 408 for a client too
// slow to send its headers, 400 otherwise (at once for a header line ended
// by a bare LF: third_party/fasthttp patch 4). No backend sees these requests.
func (s *Server) parseError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne *net.OpError
	switch {
	case errors.As(err, &small):
		s.fail(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "request headers too large", true)
	case errors.As(err, &ne) && ne.Timeout():
		s.fail(ctx, fasthttp.StatusRequestTimeout, "request timeout", true)
	case errors.Is(err, fasthttp.ErrBareLF):
		s.fail(ctx, fasthttp.StatusBadRequest, "request header lines must end with CRLF", true)
	default:
		s.fail(ctx, fasthttp.StatusBadRequest, "malformed request", true)
	}
}

// upstreamFailed answers the client after the serving backend's exchange
// failed, and counts the answer: served by tandem when the client's body was
// the problem or tandem could not send the request (no backend at fault, no
// backend error counted), else by the serving side, as an error.
func (s *Server) upstreamFailed(ctx *fasthttp.RequestCtx, rt *route, b *backends.Backend, servedByNew bool, body *bodyReader, err error) {
	if body.err != nil {
		// The client's body was the problem, not the backend.
		var ne net.Error
		switch {
		case errors.Is(body.err, fasthttp.ErrBodyTooLarge):
			s.refuse(ctx, rt, fasthttp.StatusRequestEntityTooLarge, "request body too large")
		case errors.As(body.err, &ne) && ne.Timeout():
			s.refuse(ctx, rt, fasthttp.StatusRequestTimeout, "request body not received within client.body_timeout")
		default:
			// Malformed chunking or a broken connection; the details (socket
			// addresses) are for the log, not the client.
			s.log.Debug("cannot read request body", "err", body.err)
			s.refuse(ctx, rt, fasthttp.StatusBadRequest, "malformed or incomplete request body")
		}
		return
	}
	if unsendable(err) {
		// fasthttp refused to write the request (buildOutbound should
		// have made that impossible): tandem's failure, not the backend's.
		s.log.Warn("cannot send request", "backend", b.Name, "err", err)
		s.fail(ctx, fasthttp.StatusBadGateway, "cannot send the request to backend "+b.Name, true)
		rt.m.answers.add(byTandem, false, true)
		return
	}
	by := byLegacy
	if servedByNew {
		by = byNew
	}
	rt.m.answers.add(by, false, true)
	reason := backends.Classify(err)
	rt.m.backendError(b.Name, reason)
	if reason == backends.ReasonTimeout {
		s.fail(ctx, fasthttp.StatusGatewayTimeout, "backend "+b.Name+" timed out", true)
		return
	}
	s.fail(ctx, fasthttp.StatusBadGateway, "backend "+b.Name+" failed: "+string(reason), true)
}

// refuse answers a request on route rt that tandem will not forward, or
// whose body it stopped reading, and counts it as served by tandem.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, rt *route, status int, msg string) {
	s.fail(ctx, status, msg, true)
	rt.m.answers.add(byTandem, false, true)
}

func (s *Server) countShadowSkip(rt *route, skip exchange.Outcome) {
	if skip != "" {
		rt.m.shadow[skip].Inc()
	}
}

// fail answers with a short plain-text reason.
func (s *Server) fail(ctx *fasthttp.RequestCtx, status int, msg string, closeConn bool) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("tandem: " + msg + "\n")
	if closeConn {
		ctx.SetConnectionClose()
	}
	s.m.clientError(status)
}

// breakerResult tells the breaker whether an exchange failed: transport
// errors and 5xx answers do. A request fasthttp would not write says nothing
// about the backend (backends.ErrNotTried).
func breakerResult(err error, resp *fasthttp.Response) error {
	if unsendable(err) {
		return backends.ErrNotTried
	}
	if err != nil {
		return err
	}
	if resp.StatusCode() >= 500 {
		return errStatus5xx
	}
	return nil
}

var errStatus5xx = errors.New("5xx answer")

// servedBreakerResult is breakerResult for the served exchange: when the
// client's body failed (too large, too slow, malformed), the exchange says
// nothing about the backend.
func servedBreakerResult(err error, resp *fasthttp.Response, body *bodyReader) error {
	if err != nil && body.err != nil {
		return backends.ErrNotTried
	}
	return breakerResult(err, resp)
}

// unsendable reports whether err is fasthttp's client refusing to write a
// request for a reason of the request itself, before any byte went out.
// Before buildOutbound set the target from parts, an absolute-form target
// whose scheme differed from the backend's got
// ErrHostClientRedirectToDifferentScheme, and a request without Host got
// "missing required host header"; both were charged to the backend.
func unsendable(err error) bool {
	return err != nil && (errors.Is(err, fasthttp.ErrHostClientRedirectToDifferentScheme) ||
		errors.Is(err, fasthttp.ErrorInvalidURI))
}

// validRequestID accepts client request ids of printable ASCII up to 128 bytes.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// newRequestID appends a fresh id: a random per-process prefix and a counter.
func (s *Server) newRequestID(dst []byte) []byte {
	dst = append(dst, s.idPrefix[:]...)
	n := s.idCounter.Add(1)
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		dst = append(dst, digits[(n>>uint(i))&0xf])
	}
	return dst
}

// stickyKey returns the route's sticky key for the request, or id.
func stickyKey(ctx *fasthttp.RequestCtx, rt *route, id []byte) []byte {
	var k []byte
	switch rt.sticky.Kind {
	case rules.StickyHeader:
		k = ctx.Request.Header.Peek(rt.sticky.Name)
	case rules.StickyCookie:
		k = ctx.Request.Header.Cookie(rt.sticky.Name)
	case rules.StickyQuery:
		k = ctx.QueryArgs().Peek(rt.sticky.Name)
	case rules.StickyIP:
		k = ctx.RemoteIP()
	}
	if len(k) == 0 {
		return id
	}
	return k
}

// b2s converts without copying; the string must not outlive b.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

var metaPool = sync.Pool{New: func() any { return &reqMeta{scratch: make([]byte, 0, 64)} }}

// bodyReader reads the client's body for the serving backend, enforces
// max_body, and tees the bytes into the spool when the request is mirrored.
type bodyReader struct {
	r     io.Reader
	tee   *spool
	n     int64
	limit int64
	err   error // first client-side error other than io.EOF
	eof   bool
	// hold keeps the body of a request that is not mirrored, when its
	// declared length fits in a spool's memory, so that it can be sent
	// again (retry.go); holdLost says some of it was read without being
	// kept. A buffer of the spool pool's, returned by releaseHold.
	hold     *[]byte
	holdLost bool
}

var bodyPool = sync.Pool{New: func() any { return new(bodyReader) }}

// maxUnreadClientBody is what fasthttp's server reads and drops of a request
// body its handler left unread before it reads the connection's next
// request (maxUnreadStreamBodySize in third_party/fasthttp/server.go); past
// it the connection is closed.
const maxUnreadClientBody = 256 << 10

// unreadOverDrain reports whether more of the client's body is left unread
// than the server will drain after the answer, so that the connection will
// close: a known length with over maxUnreadClientBody left, or a chunked
// body not read to its end.
func (b *bodyReader) unreadOverDrain(cl int64) bool {
	if b.r == nil || b.eof {
		return false
	}
	if cl < 0 {
		return true
	}
	return cl-b.n > maxUnreadClientBody
}

func (b *bodyReader) Read(p []byte) (int, error) { return b.read(p, intoNone) }

// Where bodyReader.read's p is.
const (
	intoNone  = iota // a buffer of the caller's
	intoSpool        // the spool's free memory (spool.room)
	intoHold         // the hold's free memory
)

// read reads into p; into says whether p is the spool's or the hold's own
// free memory, so the bytes are committed to it rather than copied.
func (b *bodyReader) read(p []byte, into int) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	if n > 0 {
		b.n += int64(n)
		if b.n > b.limit {
			b.err = fasthttp.ErrBodyTooLarge
			return 0, b.err
		}
		switch {
		case into == intoSpool:
			b.tee.commit(n)
		case into == intoHold:
			*b.hold = (*b.hold)[:len(*b.hold)+n]
		case b.tee != nil:
			b.tee.Write(p[:n])
		case b.hold != nil:
			if h := *b.hold; len(h)+n <= cap(h) {
				*b.hold = append(h, p[:n]...)
			} else {
				b.holdLost = true
			}
		}
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
	}
	return n, err
}

// WriteTo copies the rest of the body to w. fasthttp prefers it to its own
// copy, which for bodies larger than the connection's write buffer went
// through net.TCPConn.ReadFrom and io.Copy: two small allocations and a fresh
// 32 KiB buffer per request. A mirrored body is read straight into the
// spool's memory and written from there, so it is never copied in user
// space; otherwise (or once the spool moves to disk) a pooled 64 KiB buffer
// carries it. Large buffers move big bodies in few read and write calls.
func (b *bodyReader) WriteTo(w io.Writer) (int64, error) {
	var bp *[]byte
	defer func() {
		if bp != nil {
			copyBufPool.Put(bp)
		}
	}()
	var total int64
	for {
		var p []byte
		into := intoNone
		switch {
		case b.tee != nil:
			if room := b.tee.room(); len(room) >= 4<<10 {
				p, into = room, intoSpool
			}
		case b.hold != nil && !b.holdLost:
			if h := *b.hold; len(h) < cap(h) {
				p, into = h[len(h):cap(h)], intoHold
			}
		}
		if p == nil {
			if bp == nil {
				bp = copyBufPool.Get().(*[]byte)
			}
			p = *bp
		}
		n, rerr := b.read(p, into)
		if n > 0 {
			m, werr := w.Write(p[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

var servedBodyPool = sync.Pool{New: func() any { return new(servedBody) }}

// servedBody is the client response's body stream: it relays the serving
// backend's body, captures it for the comparison when there is a shadow job,
// and on Close (called by fasthttp after writing, or on reset) releases the
// upstream response and tells the job the served side is complete.
type servedBody struct {
	upstream *fasthttp.Response
	r        io.Reader
	job      *shadowJob
	err      error
	closed   bool
	// the route, backend and side that served, to count a body that broke
	// off as an error the client got
	rt      *route
	backend *backends.Backend
	by      servedBy
}

func (b *servedBody) Read(p []byte) (int, error) {
	if b.r == nil {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if n > 0 && b.job != nil {
		b.job.servedCap.Write(p[:n])
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *servedBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if b.err != nil {
		// The client had the status and part of the body: an error it got,
		// the serving backend's.
		b.rt.m.answers.cut[b.by].Add(1)
		b.rt.m.backendError(b.backend.Name, backends.Classify(b.err))
	}
	b.upstream.CloseBodyStream()
	fasthttp.ReleaseResponse(b.upstream)
	if b.job != nil {
		msg := ""
		if b.err != nil {
			msg = "served response body: " + b.err.Error()
		}
		b.job.servedResp = b.job.servedCap.finish(msg)
		close(b.job.servedDone)
		b.job.doneWithServed()
	}
	// fasthttp drops its reference after Close, so the value can be reused.
	*b = servedBody{}
	servedBodyPool.Put(b)
	return nil
}

// fasthttpLogger routes fasthttp's own messages to slog at debug level.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
}
