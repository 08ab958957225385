package app

import (
	"sync"
	"time"

	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/proxy"
	"github.com/tandem-proxy/tandem/store"
)

// job is one periodic task of the instance: a named goroutine that calls
// run every interval until its stop, and then final (if any) once.
type job struct {
	name     string
	interval time.Duration
	run      func()
	final    func() // after stop: e.g. the last counter flush

	stop chan struct{}
	done chan struct{}
}

// jobs are the instance's periodic jobs, started and stopped together.
type jobs struct {
	mu   sync.Mutex
	list []*job
}

// start starts j in its own goroutine.
func (js *jobs) start(j *job) {
	j.stop, j.done = make(chan struct{}), make(chan struct{})
	js.mu.Lock()
	js.list = append(js.list, j)
	js.mu.Unlock()
	go j.loop()
}

func (j *job) loop() {
	defer close(j.done)
	t := time.NewTicker(j.interval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			if j.final != nil {
				j.final()
			}
			return
		case <-t.C:
			j.run()
		}
	}
}

// stopAll stops every job and waits for each (and its final call) to end.
func (js *jobs) stopAll() {
	js.mu.Lock()
	list := js.list
	js.list = nil
	js.mu.Unlock()
	for _, j := range list {
		close(j.stop)
	}
	for _, j := range list {
		<-j.done
	}
}

// counterFlusher sends the data plane's counters' growth to the store.
type counterFlusher struct {
	px   *proxy.Server
	st   DiffStore
	last map[string]proxy.RouteCounters // only the flush job's goroutine uses it
}

// flush sends the counters' growth since the last flush to the store.
// Requests, the served counts, their errors and Sent (mirrored) come from one
// snapshot of the route's answer cells (proxy.RouteCounters), so every delta,
// and so every window of the report, has Sent ≤ Requests. Shadow outcomes
// that are skips (exchange.Outcome.Skipped) go to the store's skip counts; a
// copy that was sent and failed is mirrored, not skipped.
func (f *counterFlusher) flush() {
	now := time.Now()
	for route, c := range f.px.Counters() {
		p := f.last[route]
		d := store.Counters{
			Requests:     c.Requests() - p.Requests(),
			ServedLegacy: c.ServedLegacy - p.ServedLegacy,
			ServedNew:    c.ServedNew - p.ServedNew,
			ServedTandem: c.ServedTandem - p.ServedTandem,
			ServedErrors: store.ServedCounts{
				Legacy: c.Errors.Legacy - p.Errors.Legacy,
				New:    c.Errors.New - p.Errors.New,
				Tandem: c.Errors.Tandem - p.Errors.Tandem,
			},
			Fallback: c.Fallback - p.Fallback,
			Sent:     c.Mirrored - p.Mirrored,
			Skipped:  map[exchange.Outcome]int64{},
		}
		var skipped int64
		for _, o := range exchange.Outcomes {
			if o.Skipped() {
				d.Skipped[o] = c.Shadow[o] - p.Shadow[o]
				skipped += d.Skipped[o]
			}
		}
		if d.Requests == 0 && d.Sent == 0 && d.Fallback == 0 && skipped == 0 {
			continue
		}
		if f.st.AddCounters(route, now, d) {
			f.last[route] = c
		}
	}
}
