package proxy

import (
	"context"
	"sync"
	"sync/atomic"
)

// shadowPool runs shadow jobs on a fixed set of workers behind a bounded
// admission: shadow_concurrency jobs queued or running at most, past which
// submit refuses (the handler counts queue_full and serves on). It owns its
// goroutines: start launches them, stop closes the queue and waits for them
// within a deadline. The Server holds one; the work itself (sending the
// copies, runShadow) is the function it is built with.
//
// Every admitted job holds one of the cap(jobs) places counted in busy
// until a worker has finished it, so sending on jobs never blocks; and
// admission is by that count, not by whether a worker happens to be parked
// on the channel at this instant. This is nginx's thread pool (a fixed set
// of threads, a bounded task queue, "queue overflow" past it) with the
// queue and the running tasks under one bound.
type shadowPool struct {
	jobs    chan *shadowJob // one slot per admitted job: see submit
	run     func(j *shadowJob, buf []byte)
	workers sync.WaitGroup
	busy    atomic.Int64 // jobs admitted and not finished, queued or running

	mu      sync.RWMutex // held for reading while sending on jobs, for writing to close it
	closed  bool         // under mu: stop closed jobs
	started bool         // under mu: start ran
}

// shadowBufSize is the size of each worker's copy buffer.
const shadowBufSize = 32 << 10

// newShadowPool returns a pool of n workers (n ≥ 1) that will run each job
// with run, passing the worker's own copy buffer. No goroutine runs until
// start; jobs submitted before it wait in the queue.
func newShadowPool(n int, run func(j *shadowJob, buf []byte)) *shadowPool {
	return &shadowPool{jobs: make(chan *shadowJob, max(n, 1)), run: run}
}

// start launches the workers, once; after stop it does nothing.
func (p *shadowPool) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	for i := 0; i < cap(p.jobs); i++ {
		p.workers.Add(1)
		go p.shadowWorker()
	}
}

// submit queues j for a worker, or reports false when cap(jobs) jobs are
// already queued or running, or the pool is stopping. It never blocks.
// A refused job stays the caller's to release.
func (p *shadowPool) submit(j *shadowJob) bool {
	if p.busy.Add(1) > int64(cap(p.jobs)) {
		p.busy.Add(-1)
		return false
	}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		p.busy.Add(-1)
		return false
	}
	p.jobs <- j
	p.mu.RUnlock()
	return true
}

// full reports whether submit would refuse for want of a place now: the
// handler's check before it spools a body for a shadow that cannot run.
func (p *shadowPool) full() bool { return p.busy.Load() >= int64(cap(p.jobs)) }

// inFlight is the number of jobs admitted and not finished, queued or
// running: the source of tandem_shadow_in_flight.
func (p *shadowPool) inFlight() int64 { return p.busy.Load() }

// stop closes the queue (submit refuses from now on: a handler still
// running after Shutdown's deadline must not send on a closed channel) and
// waits for the workers to finish what was admitted, until ctx is done.
// It returns the number of jobs still queued or running when ctx ended
// (0 when they all finished): the abandoned ones, which the workers go on
// running in the background. It may be called more than once; each call
// waits again.
func (p *shadowPool) stop(ctx context.Context) (abandoned int64) {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.jobs)
	}
	started := p.started
	p.mu.Unlock()
	if !started {
		// No worker will ever take the queued jobs: they are abandoned
		// (New failed after building the pool, or a test never started it).
		return p.busy.Load()
	}
	done := make(chan struct{})
	go p.waitWorkers(done)
	select {
	case <-done:
		return 0
	case <-ctx.Done():
		return p.busy.Load()
	}
}

// waitWorkers closes done when every worker has returned.
func (p *shadowPool) waitWorkers(done chan<- struct{}) {
	p.workers.Wait()
	close(done)
}

// shadowWorker runs jobs until the queue is closed and drained.
func (p *shadowPool) shadowWorker() {
	defer p.workers.Done()
	buf := make([]byte, shadowBufSize) // this worker's copy buffer
	for j := range p.jobs {
		p.run(j, buf)
		p.busy.Add(-1)
	}
}
