package proxy

import (
	"crypto/sha256"
	"hash"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/valyala/fasthttp"
)

// capture records one side's response for comparison: status and headers,
// the first limit bytes of the body, and the size and sha256 of all of it.
// It owns its memory.
type capture struct {
	limit int64
	h     hash.Hash
	resp  compare.Response
}

func newCapture(limit int64) *capture {
	return &capture{limit: limit, h: sha256.New()}
}

// setHeader snapshots the status and headers (copied: src is pooled).
func (c *capture) setHeader(src *fasthttp.ResponseHeader) {
	c.resp.Status = src.StatusCode()
	for k, v := range src.All() {
		c.resp.Header = append(c.resp.Header, compare.HeaderField{Name: string(k), Value: string(v)})
	}
}

func (c *capture) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.resp.Size += int64(len(p))
	if room := c.limit - int64(len(c.resp.Body)); room > 0 {
		q := p
		if int64(len(q)) > room {
			q = q[:room]
		}
		c.resp.Body = append(c.resp.Body, q...)
	}
	return len(p), nil
}

// finish completes the capture; a non-empty errMsg marks a failed exchange.
func (c *capture) finish(errMsg string) *compare.Response {
	c.resp.Err = errMsg
	c.h.Sum(c.resp.SHA256[:0])
	return &c.resp
}
