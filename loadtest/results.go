package loadtest

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/tandem-proxy/tandem/internal/latency"
)

// Results summarises an attack.
type Results struct {
	// Mode is "open" (paced) or "closed" (back-to-back workers).
	Mode string
	// TargetRate is the pacer's rate in hits per second, when it has one
	// (a ConstantPacer); zero otherwise.
	TargetRate float64

	// Requests is the number of hits sent (answered or failed).
	Requests uint64
	// Responses is the number of hits that got a complete HTTP response,
	// whatever its status.
	Responses uint64
	// Success is the number of responses with an expected status
	// (Options.Expect, Body.Expect; 200 to 399 by default).
	Success uint64
	// Expect says which statuses were expected: "2xx,3xx", or per body
	// ("200 for 14 bodies, 400 for 5").
	Expect string
	// Unexpected counts responses whose status was not expected, by status
	// code. They are failures, with transport errors.
	Unexpected map[int]uint64
	// Missed is the number of hits that were due before the attack's
	// Duration ran out but were never sent, because every one of
	// MaxWorkers workers was busy. Non-zero Missed means the target rate
	// was not offered.
	Missed uint64
	// Status counts responses by status code.
	Status map[int]uint64
	// Errors counts transport errors by kind (the Err* constants).
	Errors map[string]uint64

	// BytesOut is the request body bytes of every hit sent; BytesIn the
	// response body bytes received.
	BytesOut, BytesIn uint64

	// Duration is the time from the first hit's send to the last one's;
	// Wait the time from the last send to the last response.
	Duration, Wait time.Duration
	// Rate is the offered rate: hits per second over Duration.
	Rate float64
	// Throughput is successful responses per second over Duration+Wait.
	Throughput float64

	// Latency is measured for every hit sent, answered or failed, from its
	// intended send time (its due time in an open-loop attack, so time
	// spent waiting for a free worker counts) to the end of the response
	// body or the error.
	Latency Latency

	// Workers is the most workers the attack ran at once; MaxWorkers the
	// limit it had (equal to the concurrency of a closed-loop attack).
	Workers, MaxWorkers int

	// Checks are the criteria the last Check judged, in order; nil before.
	Checks []Check

	hist *hdrhistogram.Histogram
}

// Latency holds percentiles of the latency distribution, read from an HDR
// histogram. All are zero when nothing was sent.
type Latency struct {
	Min, Mean, P50, P90, P99, P999, Max time.Duration
}

// Histogram returns the latency histogram, in microseconds, with
// internal/latency's geometry (1 µs to 1 h, 2 significant digits). The
// caller must not modify it.
func (r *Results) Histogram() *hdrhistogram.Histogram { return r.hist }

// SuccessRatio returns successful responses (with an expected status)
// over hits sent; zero when none were sent.
func (r *Results) SuccessRatio() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Success) / float64(r.Requests)
}

// hit is the outcome of one hit, handed by a worker to the collector.
type hit struct {
	intended, sent, done time.Time
	status               int    // 0 if err is set
	expected             bool   // status is one the hit was told to expect
	errKind              string // "" if status is set
	bytesOut, bytesIn    int
}

// collector aggregates hits from all workers. One mutex guards it: a
// record is a few dozen nanoseconds, far below what a hit costs, and one
// histogram for the attack keeps memory flat however many workers run.
type collector struct {
	mu                        sync.Mutex
	hist                      *hdrhistogram.Histogram
	requests, responses, succ uint64
	status, unexpected        map[int]uint64
	errs                      map[string]uint64
	bytesOut, bytesIn         uint64
	firstSent, lastSent, last time.Time
}

func newCollector() *collector {
	return &collector{
		hist:       latency.New(),
		status:     make(map[int]uint64),
		unexpected: make(map[int]uint64),
		errs:       make(map[string]uint64),
	}
}

func (c *collector) record(h *hit) {
	d := h.done.Sub(h.intended)
	c.mu.Lock()
	latency.Record(c.hist, d)
	c.requests++
	if h.errKind != "" {
		c.errs[h.errKind]++
	} else {
		c.responses++
		c.status[h.status]++
		if h.expected {
			c.succ++
		} else {
			c.unexpected[h.status]++
		}
	}
	c.bytesOut += uint64(h.bytesOut)
	c.bytesIn += uint64(h.bytesIn)
	if c.firstSent.IsZero() || h.sent.Before(c.firstSent) {
		c.firstSent = h.sent
	}
	if h.sent.After(c.lastSent) {
		c.lastSent = h.sent
	}
	if h.done.After(c.last) {
		c.last = h.done
	}
	c.mu.Unlock()
}

// results builds the Results once every worker has stopped.
func (c *collector) results() *Results {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Results{
		Requests:   c.requests,
		Responses:  c.responses,
		Success:    c.succ,
		Status:     c.status,
		Unexpected: c.unexpected,
		Errors:     c.errs,
		BytesOut:   c.bytesOut,
		BytesIn:    c.bytesIn,
		hist:       c.hist,
	}
	if c.requests > 0 {
		r.Duration = c.lastSent.Sub(c.firstSent)
		r.Wait = c.last.Sub(c.lastSent)
		if r.Duration > 0 {
			// n hits span n-1 intervals.
			r.Rate = float64(c.requests-1) / r.Duration.Seconds()
		}
		if total := r.Duration + r.Wait; total > 0 {
			r.Throughput = float64(c.succ) / total.Seconds()
		}
		r.Latency = Latency{
			Min:  latency.Duration(c.hist.Min()),
			Mean: time.Duration(c.hist.Mean() * float64(time.Microsecond)),
			P50:  latency.Percentile(c.hist, 50),
			P90:  latency.Percentile(c.hist, 90),
			P99:  latency.Percentile(c.hist, 99),
			P999: latency.Percentile(c.hist, 99.9),
			Max:  latency.Duration(c.hist.Max()),
		}
	}
	return r
}
