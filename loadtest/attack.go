package loadtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Defaults for the zero values of Options.
const (
	DefaultMaxWorkers = 10000
	DefaultTimeout    = 30 * time.Second
)

// Options shape an attack.
type Options struct {
	// Pacer schedules an open-loop attack: each hit is handed to an idle
	// worker at its due time, and when every worker is busy the attacker
	// starts another (up to MaxWorkers), so a slow target does not lower
	// the offered rate. Nil means a closed-loop attack: Concurrency
	// workers each send their next hit as soon as the last one is answered
	// (the rate then follows the target's latency).
	Pacer Pacer

	// Concurrency is the number of workers of a closed-loop attack, and
	// the number an open-loop attack starts with. Zero means 1.
	Concurrency int

	// MaxWorkers caps the workers (and connections) of an open-loop
	// attack. When all are busy, due hits wait for one and their latency
	// includes the wait; hits still unsent when Duration runs out are
	// counted in Results.Missed. Workers are added no faster than they
	// connect: while 32 are still starting, the attacker waits for one
	// rather than add more, so a stall does not turn into a dial storm.
	// Zero means DefaultMaxWorkers. Ignored in a closed-loop attack.
	MaxWorkers int

	// Duration bounds the attack in time: no hit is sent (or, open loop,
	// is due) at or after Duration from the start. Hits in flight are
	// still awaited. Zero means no time bound.
	Duration time.Duration

	// Requests bounds the attack to that many hits. Zero means no bound.
	// With neither bound, the attack runs until its context is done.
	Requests uint64

	// Timeout bounds each hit, from connecting to the end of the response
	// body. Zero means DefaultTimeout.
	Timeout time.Duration

	// TLSConfig is used for https:// targets. Nil means the default
	// configuration (the system's roots).
	TLSConfig *tls.Config

	// Expect is the statuses that count as success, for bodies whose own
	// Body.Expect is empty (and for requests without a body). The zero set
	// means DefaultExpect (200 to 399). A response with any other status
	// is a failure, counted in Results.Unexpected.
	Expect StatusSet
}

// Progress is a snapshot of a running attack, safe to take at any time.
type Progress struct {
	Elapsed time.Duration // since the attack began; zero before Run
	Sent    uint64        // hits sent so far
	Done    uint64        // hits answered or failed
	Failed  uint64        // hits with a transport error or an unexpected status
	Workers int           // workers running
}

// An Attacker sends one attack. Build it with NewAttacker, call Run once,
// and call Progress from any goroutine while it runs.
type Attacker struct {
	targets  Targets
	opts     Options
	method   string
	ids      []string
	fixedCT  bool // Targets.Header sets Content-Type
	hostHdr  string
	hc       *fasthttp.HostClient
	dialer   *dialer
	col      *collector
	maxConns int
	expect   []StatusSet // by body (one entry when there are no bodies)

	ran     atomic.Bool
	started atomic.Bool // set after began
	began   time.Time
	next    atomic.Uint64 // closed loop: next hit number
	sent    atomic.Uint64
	done    atomic.Uint64
	failed  atomic.Uint64
	workers atomic.Int64
	fresh   atomic.Int64 // open loop: workers started that have not yet sent a hit
}

// NewAttacker checks t and o and prepares an attack. t is copied; its
// Bodies are shared, not copied.
func NewAttacker(t *Targets, o Options) (*Attacker, error) {
	u, err := t.validate()
	if err != nil {
		return nil, err
	}
	switch {
	case o.Concurrency < 0:
		return nil, errors.New("concurrency is negative")
	case o.MaxWorkers < 0:
		return nil, errors.New("max workers is negative")
	case o.Duration < 0:
		return nil, errors.New("duration is negative")
	case o.Timeout < 0:
		return nil, errors.New("timeout is negative")
	}
	o.Concurrency = max(o.Concurrency, 1)
	if o.MaxWorkers == 0 {
		o.MaxWorkers = DefaultMaxWorkers
	}
	o.MaxWorkers = max(o.MaxWorkers, o.Concurrency)
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	a := &Attacker{
		targets: *t,
		opts:    o,
		method:  t.method(),
		ids:     userIDs(t.Users),
		col:     newCollector(),
	}
	a.targets.Header = t.Header.Clone()
	for k, vs := range t.Header {
		switch {
		case strings.EqualFold(k, "Content-Length"), strings.EqualFold(k, "Transfer-Encoding"):
			return nil, fmt.Errorf("header %s is set from the body, not by hand", k)
		case strings.EqualFold(k, "Content-Type"):
			a.fixedCT = true
		case strings.EqualFold(k, "Host") && len(vs) > 0:
			a.hostHdr = vs[0]
		}
	}
	if o.Expect.IsZero() {
		o.Expect = DefaultExpect
		a.opts.Expect = o.Expect
	}
	a.expect = []StatusSet{o.Expect}
	if len(t.Bodies) > 0 {
		a.expect = make([]StatusSet, len(t.Bodies))
		for i := range t.Bodies {
			a.expect[i] = o.Expect
			if !t.Bodies[i].Expect.IsZero() {
				a.expect[i] = t.Bodies[i].Expect
			}
		}
	}
	a.maxConns = o.MaxWorkers
	if o.Pacer == nil {
		a.maxConns = o.Concurrency
	}
	a.dialer = newDialer(u, o.TLSConfig)
	a.hc = newHostClient(u, a.maxConns, o.Timeout, a.dialer.dial)
	return a, nil
}

// Progress returns a snapshot of the attack's counters.
func (a *Attacker) Progress() Progress {
	p := Progress{
		Sent:    a.sent.Load(),
		Done:    a.done.Load(),
		Failed:  a.failed.Load(),
		Workers: int(a.workers.Load()),
	}
	if a.started.Load() {
		p.Elapsed = time.Since(a.began)
	}
	return p
}

// Run sends the attack and returns its results once every hit has been
// answered or has failed. It stops early, without error, when ctx is done
// (hits in flight still finish, within Options.Timeout). Run may be called
// once.
func (a *Attacker) Run(ctx context.Context) (*Results, error) {
	if !a.ran.CompareAndSwap(false, true) {
		return nil, errors.New("attack already run")
	}
	a.began = time.Now()
	a.started.Store(true)
	var (
		peak   int
		missed uint64
	)
	if a.opts.Pacer == nil {
		peak = a.runClosed(ctx)
	} else {
		peak, missed = a.runOpen(ctx)
	}
	a.hc.CloseIdleConnections()
	r := a.col.results()
	r.Mode = "closed"
	if a.opts.Pacer != nil {
		r.Mode = "open"
		if rp, ok := a.opts.Pacer.(interface{ Rate() float64 }); ok {
			r.TargetRate = rp.Rate()
		}
	}
	r.Missed = missed
	r.Expect = describeExpect(a.expect)
	r.Workers = peak
	r.MaxWorkers = a.maxConns
	return r, nil
}

// describeExpect says what an attack expects: one set ("2xx,3xx"), or each
// distinct set with the number of bodies it applies to, most first
// ("200 for 14 bodies, 400 for 5 bodies").
func describeExpect(sets []StatusSet) string {
	count := map[string]int{}
	var order []string
	for _, s := range sets {
		if count[s.String()] == 0 {
			order = append(order, s.String())
		}
		count[s.String()]++
	}
	if len(order) == 1 {
		return order[0]
	}
	sort.SliceStable(order, func(i, j int) bool { return count[order[i]] > count[order[j]] })
	parts := make([]string, len(order))
	for i, s := range order {
		unit := "bodies"
		if count[s] == 1 {
			unit = "body"
		}
		parts[i] = fmt.Sprintf("%s for %d %s", s, count[s], unit)
	}
	return strings.Join(parts, ", ")
}
