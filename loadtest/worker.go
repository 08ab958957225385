package loadtest

import (
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// worker owns one Request and Response, reused for every hit it sends.
type worker struct {
	a    *Attacker
	req  fasthttp.Request
	resp fasthttp.Response
	h    hit
}

func (a *Attacker) newWorker() *worker {
	w := &worker{a: a}
	w.req.SetRequestURI(a.targets.URL)
	w.req.Header.SetMethod(a.method)
	w.req.Header.SetNoDefaultContentType(true)
	if a.hostHdr != "" {
		w.req.UseHostHeader = true
		w.req.Header.SetHost(a.hostHdr)
	}
	for k, vs := range a.targets.Header {
		if strings.EqualFold(k, "Host") {
			continue
		}
		for _, v := range vs {
			w.req.Header.Add(k, v)
		}
	}
	return w
}

// fire sends hit n, intended for the time at, and records its outcome.
func (w *worker) fire(n uint64, at time.Time) {
	a := w.a
	out := 0
	expect := &a.expect[0]
	if bodies := a.targets.Bodies; len(bodies) > 0 {
		i := n % uint64(len(bodies))
		b := &bodies[i]
		expect = &a.expect[i]
		w.req.SetBodyRaw(b.Data)
		if !a.fixedCT {
			w.req.Header.SetContentType(b.ContentType)
		}
		out = len(b.Data)
	}
	if a.ids != nil {
		w.req.Header.Set(a.targets.UserHeader, a.ids[userIndex(n, len(a.ids))])
	}
	a.sent.Add(1)
	sent := time.Now()
	err := a.hc.DoTimeout(&w.req, &w.resp, a.opts.Timeout)
	w.h = hit{intended: at, sent: sent, done: time.Now(), bytesOut: out}
	if err != nil {
		w.h.errKind = errorKind(err)
		a.failed.Add(1)
	} else {
		w.h.status = w.resp.StatusCode()
		w.h.bytesIn = len(w.resp.Body())
		w.h.expected = expect.Has(w.h.status)
		if !w.h.expected {
			a.failed.Add(1)
		}
	}
	w.resp.ResetBody()
	a.col.record(&w.h)
	a.done.Add(1)
}
