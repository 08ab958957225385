package proxy

import (
	"bytes"
	"io"

	"github.com/tandem-proxy/tandem/backends"
	"github.com/valyala/fasthttp"
)

// maxRetries bounds how many times one request is sent again after a
// kept-alive connection failed under it. Every pooled connection is checked
// before use, so a second failure in a row means the backend is closing
// connections as they come; a third send would not fare better.
const maxRetries = 2

// doServed sends the client's request to b. When a kept-alive connection
// fails before any byte of the answer arrives (the backend closed it while
// idle, and the check before reuse did not see it yet), the request is sent
// again if its body can be replayed (bodyReader.replay), at most maxRetries
// times, each counted in tandem_backend_retries_total. Nothing is sent again
// after a response byte, nor after a failure on a new connection (fasthttp
// reports neither as retryable): as Go's Transport (shouldRetryRequest) and
// nginx's upstream module (a failed cached connection costs no try) do.
func (s *Server) doServed(rt *route, b *backends.Backend, out *fasthttp.Request, resp *fasthttp.Response, body *bodyReader, cl int64) error {
	body.holdFrom(s.spools, cl)
	err := b.Do(out, resp, backends.Served)
	for i := 0; i < maxRetries && err != nil; i++ {
		reason, ok := backends.Retryable(err)
		if !ok || !body.replay(out, cl) {
			break
		}
		rt.m.retry(b.Name, reason)
		err = b.Do(out, resp, backends.Served)
	}
	body.releaseHold(s.spools)
	return err
}

// holdFrom gives a body that is not mirrored a buffer of the spool pool to
// be kept in while it is sent, when its declared length fits in a spool's
// memory (limits.spool_memory): the body is read straight into it and
// written from there, as a mirrored one is into its spool, so keeping it
// costs no copy, and the memory held per request stays within what a
// mirrored request may hold. Chunked bodies (length unknown) and longer
// ones are not kept, and cannot be replayed once sending has begun.
func (b *bodyReader) holdFrom(p *spoolPool, cl int64) {
	if b.tee != nil || b.r == nil || cl <= 0 || cl > p.memLimit || b.n != 0 {
		return
	}
	if cl <= smallBuf || p.memLimit <= smallBuf {
		b.hold = p.getBuf(&p.small, min(smallBuf, p.memLimit))
	} else {
		b.hold = p.getBuf(&p.large, p.memLimit)
	}
	b.holdLost = false
}

// releaseHold returns the hold's buffer to the spool pool.
func (b *bodyReader) releaseHold(p *spoolPool) {
	if b.hold != nil {
		p.putBuf(b.hold)
		b.hold = nil
	}
}

// replay sets out's body again for another send and reports whether it
// could: when the request has no body, when none of it has been read from
// the client yet, or when all that was read is held in the spool (the
// mirrored case) or in the hold (holdFrom), which is then sent first and the
// rest streamed from the client as before. A body partly sent and kept
// nowhere cannot be replayed.
func (b *bodyReader) replay(out *fasthttp.Request, cl int64) bool {
	switch {
	case cl == 0 || b.r == nil:
		return true
	case b.err != nil:
		return false
	case b.n == 0:
		out.SetBodyStream(b, int(cl))
		return true
	case b.hold != nil:
		if b.holdLost || int64(len(*b.hold)) != b.n {
			return false
		}
	case b.tee == nil || b.tee.failed != "" || b.tee.size != b.n:
		return false
	}
	// The held or spooled bytes are read before b reads (and keeps) any
	// more, and what b keeps goes after them, so they do not change under
	// the reader.
	var r io.Reader
	if b.hold != nil {
		r = bytes.NewReader(*b.hold)
	} else {
		r = b.tee.reader()
	}
	if !b.eof {
		r = io.MultiReader(r, b)
	}
	out.SetBodyStream(r, int(cl))
	return true
}
