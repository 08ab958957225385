package proxy

import (
	"crypto/sha256"
	"hash"
	"sync/atomic"
	"unsafe"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/valyala/fasthttp"
)

// capture records one side's response for comparison: status and headers,
// the first limit bytes of the body, and the size and sha256 of all of it.
// It owns its memory.
type capture struct {
	limit  int64
	budget *memBudget
	held   int64 // bytes taken from budget
	h      hash.Hash
	resp   compare.Response
	cut    bool // the body was cut at a bound: its hash is unknown
	// declared is the response's Content-Length + 1, or 0 when unknown
	// (headers not yet seen, or no length). Atomic: a shadow worker reads
	// the served capture's while the handler sets it (servedSize).
	declared atomic.Int64
}

func newCapture(limit int64, budget *memBudget) *capture {
	return &capture{limit: limit, budget: budget, h: sha256.New()}
}

// memBudget is a byte budget shared by every capture of a server.
type memBudget struct {
	left atomic.Int64
}

func newMemBudget(n int64) *memBudget {
	b := &memBudget{}
	b.left.Store(n)
	return b
}

// take reserves up to n bytes and returns how many it got.
func (b *memBudget) take(n int64) int64 {
	for {
		left := b.left.Load()
		got := min(n, left)
		if got <= 0 {
			return 0
		}
		if b.left.CompareAndSwap(left, left-got) {
			return got
		}
	}
}

// release returns the bytes a capture held; its body must no longer be used
// by the proxy (an observer may still hold it, briefly).
func (c *capture) release() {
	if c.held > 0 {
		c.budget.left.Add(c.held)
		c.held = 0
	}
}

// setHeader snapshots the status and headers (copied: src is pooled).
// Every name and value is copied into one buffer and the strings point into
// it: two allocations per response instead of two per header.
func (c *capture) setHeader(src *fasthttp.ResponseHeader) {
	c.resp.Status = src.StatusCode()
	if n := src.ContentLength(); n >= 0 {
		c.declared.Store(int64(n) + 1)
	}
	n, size := 0, 0
	for k, v := range src.All() {
		n++
		size += len(k) + len(v)
	}
	if n == 0 {
		return
	}
	arena := make([]byte, 0, size)
	fields := make([]compare.HeaderField, 0, n)
	str := func(b []byte) string {
		start := len(arena)
		arena = append(arena, b...) // within capacity: never moves
		return unsafe.String(unsafe.SliceData(arena[start:]), len(b))
	}
	for k, v := range src.All() {
		if len(fields) == n || len(arena)+len(k)+len(v) > size {
			break // the header cannot change under us; be safe anyway
		}
		fields = append(fields, compare.HeaderField{Name: str(k), Value: str(v)})
	}
	c.resp.Header = fields
}

// reserve sizes the body buffer once, before the first byte, for a
// response of declared length: one allocation of what will be kept, instead
// of a buffer doubling up to it (a 6 MiB body allocated 12 MiB and copied
// 6 MiB in pieces of up to 4 MiB, each copy holding its P).
func (c *capture) reserve() {
	n := c.declaredLength()
	if n <= 0 {
		return
	}
	n = min(n, c.limit)
	got := c.budget.take(n)
	c.held += got
	c.resp.Body = make([]byte, 0, got)
	if got < n {
		c.limit = got // over the shared budget: keep what fits, hash the rest
	}
}

// declaredLength returns the Content-Length set by setHeader, or -1.
func (c *capture) declaredLength() int64 { return c.declared.Load() - 1 }

func (c *capture) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.resp.Size += int64(len(p))
	if c.resp.Body == nil && c.limit > 0 {
		c.reserve()
	}
	if room := c.limit - int64(len(c.resp.Body)); room > 0 && c.limit > 0 {
		q := p
		if int64(len(q)) > room {
			q = q[:room]
		}
		got := int64(len(q))
		if int64(cap(c.resp.Body)-len(c.resp.Body)) < got {
			got = c.budget.take(got) // beyond what reserve took
			c.held += got
		}
		c.resp.Body = append(c.resp.Body, q[:got]...)
		if got < int64(len(q)) {
			// Over the shared budget: keep what we have, hash the rest.
			c.limit = int64(len(c.resp.Body))
		}
	}
	return len(p), nil
}

// overBound marks a body that was cut past its bound (see copyShadowBody):
// its size is the declared Content-Length when that is larger than what was
// read, else what was read (a lower bound), and its hash is unknown (zero),
// so a comparison goes by size and never claims a hash of a prefix.
func (c *capture) overBound(declared int) {
	c.resp.Size = max(c.resp.Size, int64(declared))
	c.cut = true
}

// finish completes the capture; a non-empty errMsg marks a failed exchange.
func (c *capture) finish(errMsg string) *compare.Response {
	c.resp.Err = errMsg
	if !c.cut {
		c.h.Sum(c.resp.SHA256[:0])
	}
	return &c.resp
}
