package proxy

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/valyala/fasthttp"
)

// shadowJob is the work of one mirrored request. It owns copies of
// everything it uses: the request headers, the spooled body, the captures.
//
// Its two sides finish independently: the shadow worker's exchange
// (runShadow), and the served response's capture (servedBody.Close, through
// doneWithServed). Whichever arrives last hands the job to the compare queue
// (arrive, comparequeue.go), which owns it from then on and releases it.
type shadowJob struct {
	srv         *Server
	rt          *route
	req         *fasthttp.Request // headers only; the body comes from the spool
	spool       *spool
	servedByNew bool
	requestID   string
	method      string
	path        string
	at          time.Time
	servedTTFB  time.Duration
	secrets     []string // credential values the client sent (see Exchange.Secrets)
	hostless    bool     // the client sent no Host: each copy gets its backend's (Server.hostFor)

	servedCap *capture
	caps      []*capture // the shadow-side captures, released with the job
	// pending counts the sides not yet finished: the shadow exchange and
	// the served capture. The one that brings it to zero hands the job on.
	pending    atomic.Int32
	servedResp *compare.Response // set before servedDone is closed
	servedDone chan struct{}
	// servedBy is when waiting for servedDone gives up (zero until the
	// first wait), so that every wait of one job shares one bound.
	servedBy time.Time

	// Set by the shadow worker before it arrives.
	shadowResp *compare.Response
	shadowTTFB time.Duration
	secondary  *compare.Response // nil without a secondary, or when its breaker refused
	noCompare  bool              // the shadow was not sent: nothing to compare
}

func (s *Server) newJob(rt *route, out *fasthttp.Request, sp *spool, servedByNew bool, id []byte, ttfb time.Duration) *shadowJob {
	req := fasthttp.AcquireRequest()
	out.Header.CopyTo(&req.Header)
	req.SetURI(out.URI()) // the parts buildOutbound set, not a string to parse again
	req.UseHostHeader = true
	req.Header.SetBytesKV(hdrXTandemShadow, []byte("1"))
	j := &shadowJob{
		srv:         s,
		rt:          rt,
		req:         req,
		spool:       sp,
		servedByNew: servedByNew,
		requestID:   string(id),
		method:      string(out.Header.Method()),
		path:        string(out.URI().PathOriginal()),
		at:          time.Now(),
		servedTTFB:  ttfb,
		servedCap:   newCapture(s.compareMax, s.captureMem),
		servedDone:  make(chan struct{}),
		secrets:     requestSecrets(&out.Header),
	}
	j.pending.Store(2)
	return j
}

// requestSecrets collects the credential values of a request: the
// Authorization and Proxy-Authorization values (whole, and the credentials
// after the scheme) and every cookie value.
func requestSecrets(h *fasthttp.RequestHeader) []string {
	var out []string
	for _, name := range []string{"Authorization", "Proxy-Authorization"} {
		if v := h.Peek(name); len(v) > 0 {
			out = append(out, string(v))
			if i := bytes.IndexByte(v, ' '); i > 0 && i+1 < len(v) {
				out = append(out, string(bytes.TrimSpace(v[i+1:])))
			}
		}
	}
	h.VisitAllCookie(func(_, v []byte) {
		if len(v) > 0 {
			out = append(out, string(v))
		}
	})
	return out
}

// doneWithServed is called once, by the served body stream, when the served
// side's capture is complete (servedResp set, servedDone closed). It must
// not touch j afterwards.
func (j *shadowJob) doneWithServed() { j.srv.arrive(j) }

// release frees everything the job holds; it runs once, when both sides
// have arrived and the pair is compared, dropped or not comparable.
func (j *shadowJob) release() {
	for _, c := range j.caps {
		c.release()
	}
	j.caps = nil
	if j.servedCap != nil {
		j.servedCap.release()
	}
	if j.req != nil {
		fasthttp.ReleaseRequest(j.req)
		j.req = nil
	}
	if j.spool != nil {
		j.spool.release()
		j.spool = nil
	}
}

// runShadow sends the shadow copy (and the secondary copy, when the route
// has one) and arrives with the answers; the comparison runs on a compare
// worker once the served side is complete too. The shadow worker is freed
// as soon as the exchanges end, whatever the client is doing.
func (s *Server) runShadow(j *shadowJob, buf []byte) {
	rt := j.rt
	target := rt.new
	if j.servedByNew {
		target = rt.legacy
	}
	shadowResp, shadowTTFB, ok := s.sendCopy(j, target, buf)
	if !ok {
		rt.m.shadow[exchange.BreakerOpen].Inc()
		j.noCompare = true
		s.endExchange(j)
		return
	}
	if shadowResp.Err != "" {
		rt.m.shadow[exchange.Error].Inc()
	} else {
		rt.m.shadow[exchange.Sent].Inc()
	}
	var secondary *compare.Response
	if rt.secondary != nil {
		secondary, _, _ = s.sendCopy(j, rt.secondary, buf)
	}
	j.shadowResp, j.shadowTTFB, j.secondary = shadowResp, shadowTTFB, secondary
	s.endExchange(j)
}

// endExchange frees what only the exchange needed (the request and its
// spooled body) and arrives.
func (s *Server) endExchange(j *shadowJob) {
	if j.spool != nil {
		j.spool.release()
		j.spool = nil
	}
	if j.req != nil {
		fasthttp.ReleaseRequest(j.req)
		j.req = nil
	}
	s.arrive(j)
}

// shadowServedWait bounds how long a shadow body past compare_max_body waits
// for a served response of unknown size (chunked, still being written to
// the client) to learn its size: briefly, because the wait holds a shadow
// worker.
const shadowServedWait = time.Second

// servedSize returns the served response's size when it can be known
// without holding the shadow worker long: its full size when the served
// side is complete, else its declared Content-Length, else whatever a wait
// of shadowServedWait brings.
func (s *Server) servedSize(j *shadowJob) (int64, bool) {
	select {
	case <-j.servedDone:
		return j.servedResp.Size, true
	default:
	}
	if n := j.servedCap.declaredLength(); n >= 0 {
		return n, true
	}
	if s.waitServed(j) {
		return j.servedResp.Size, true
	}
	return 0, false
}

// waitServed waits for the served side's capture and reports whether it
// is complete (j.servedResp is then set). The wait is bounded by
// shadowServedWait, and all the waits of one job share that bound.
func (s *Server) waitServed(j *shadowJob) bool {
	select {
	case <-j.servedDone:
		return true
	default:
	}
	if j.servedBy.IsZero() {
		j.servedBy = time.Now().Add(shadowServedWait)
	}
	wait := time.NewTimer(time.Until(j.servedBy))
	defer wait.Stop()
	select {
	case <-j.servedDone:
		return true
	case <-wait.C:
		return false
	}
}

// errShadowTooLarge marks a shadow response body cut at its bound; it is
// what the breaker and the connection close are told.
var errShadowTooLarge = errors.New("shadow response body over its bound")

// copyShadowBody reads a shadow response body into c, up to a bound, and
// reports whether the body went over it (c then holds limit+1 bytes' worth
// of size; the rest of the body is left unread).
//
// The bound is max(compare_max_body, 2 × the served response's size):
//   - Up to compare_max_body the bytes are worth reading whatever the served
//     side turns out to be: they are what the comparison keeps, and reading
//     them needs no wait, so an ordinary shadow never waits for the client.
//   - Past it, the served side's size is needed: known when it is complete
//     (usually long done), or from its Content-Length, else waited for
//     briefly (servedSize). A body larger than twice the served one already differs
//     from it by size, so the verdict is known; reading on would only burn
//     CPU (hashing at loopback speed) and hold a worker for an answer that
//     may never end. Twice, not once, keeps the cut far from ordinary size
//     differences, whose exact sizes and hashes are still reported.
//   - limits.max_body would bound nothing useful: it is the upload limit
//     (1 GiB by default), and sixteen shadows reading a flood to 1 GiB each
//     take the CPU the served requests need.
func (s *Server) copyShadowBody(j *shadowJob, c *capture, r io.Reader, buf []byte) (over bool, err error) {
	limit, widened := s.compareMax, false
	for {
		// Read at most limit+1 bytes in all: enough to know it is over.
		p := buf
		if room := limit + 1 - c.resp.Size; room < int64(len(p)) {
			p = p[:max(room, 0)]
		}
		if len(p) == 0 {
			if !widened {
				widened = true
				if n, ok := s.servedSize(j); ok {
					limit = max(limit, 2*n)
				}
				if c.resp.Size <= limit {
					continue
				}
			}
			return true, nil
		}
		n, rerr := r.Read(p)
		if n > 0 {
			c.Write(p[:n])
		}
		switch {
		case rerr == io.EOF:
			return false, nil
		case rerr != nil:
			return false, rerr
		}
	}
}

// sendCopy sends the job's request with the spooled body to b through its
// shadow pool and captures the answer. ok is false when b's breaker refused.
func (s *Server) sendCopy(j *shadowJob, b *backends.Backend, buf []byte) (r *compare.Response, ttfb time.Duration, ok bool) {
	done, err := b.Allow()
	if err != nil {
		return nil, 0, false
	}
	req := j.req
	req.URI().SetSchemeBytes(s.schemeFor(b))
	if j.hostless {
		req.Header.SetHostBytes(s.hostFor(b))
	}
	if j.spool.size > 0 || req.Header.ContentLength() != 0 {
		req.SetBodyStream(j.spool.reader(), int(j.spool.size))
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	start := time.Now()
	err = b.Do(req, resp, backends.Shadow)
	for i := 0; i < maxRetries && err != nil; i++ {
		// A kept-alive connection failed before any response byte: the
		// spooled body replays whole (see doServed).
		reason, ok := backends.Retryable(err)
		if !ok {
			break
		}
		j.rt.m.retry(b.Name, reason)
		if j.spool.size > 0 || req.Header.ContentLength() != 0 {
			req.SetBodyStream(j.spool.reader(), int(j.spool.size))
		}
		err = b.Do(req, resp, backends.Shadow)
	}
	ttfb = time.Since(start)
	c := newCapture(s.compareMax, s.captureMem)
	j.caps = append(j.caps, c)
	over := false
	if err == nil {
		c.setHeader(&resp.Header)
		if bs := resp.BodyStream(); bs != nil {
			over, err = s.copyShadowBody(j, c, bs, buf)
			if rc, ok := bs.(fasthttp.ReadCloserWithError); ok && over {
				// The rest of the body is unread: closing the stream with an
				// error closes the connection instead of pooling it mid-body.
				rc.CloseWithError(errShadowTooLarge)
			}
		}
		if cerr := resp.CloseBodyStream(); err == nil && !over && cerr != nil && cerr != io.EOF {
			err = cerr
		}
	}
	switch {
	case over:
		// The shadow answered, and its body is larger than the served one:
		// a size mismatch (outcome sent, one comparison: a body difference
		// by size, hash unknown). The backend is charged with it as a
		// protocol error (the closed reason set has no closer fit) and the
		// breaker hears of a failure, so a shadow that keeps answering
		// floods gets skipped.
		c.overBound(resp.Header.ContentLength())
		done(errShadowTooLarge)
		j.rt.m.backendError(b.Name, backends.ReasonProtocol)
	default:
		done(breakerResult(err, resp))
	}
	msg := ""
	if err != nil {
		reason := backends.Classify(err)
		j.rt.m.backendError(b.Name, reason)
		msg = string(reason) + ": " + err.Error()
	} else {
		j.rt.m.duration[b.Name][backends.Shadow].Update(ttfb.Seconds())
		if resp.StatusCode() >= 500 {
			j.rt.m.backendError(b.Name, backends.ReasonStatus)
		}
	}
	return c.finish(msg), ttfb, true
}
