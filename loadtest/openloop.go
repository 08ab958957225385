package loadtest

import (
	"context"
	"sync"
	"time"
)

// maxStarting bounds the open-loop workers starting up (started but not
// yet sending, or connecting): past it the attacker waits for one of them
// rather than start more.
const maxStarting = 32

// tick is one scheduled hit.
type tick struct {
	n  uint64
	at time.Time // intended send time
}

// openWorker is a worker of an open-loop attack, fed one hit at a time.
type openWorker struct {
	*worker
	ticks chan tick // capacity 1; sent to only while the worker is idle
}

// idleStack holds the open-loop workers waiting for a hit. The worker idle
// most recently gets the next hit, so a steady load runs on a small hot set
// of workers and connections while the rest stay parked; handing hits out
// in turn instead (as a shared channel does) would cycle through every
// worker ever started, and after a slow spell touch thousands of cold
// connections per second.
type idleStack struct {
	mu    sync.Mutex
	ws    []*openWorker
	freed chan struct{} // capacity 1: poked when a worker becomes idle
}

func (s *idleStack) pop() *openWorker {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.ws)
	if n == 0 {
		return nil
	}
	w := s.ws[n-1]
	s.ws[n-1] = nil
	s.ws = s.ws[:n-1]
	return w
}

func (s *idleStack) push(w *openWorker) {
	s.mu.Lock()
	s.ws = append(s.ws, w)
	s.mu.Unlock()
	s.poke()
}

// poke wakes the scheduler if it waits for a worker.
func (s *idleStack) poke() {
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

// runOpen schedules hits with the pacer and hands each to an idle worker,
// starting one when none is idle (up to MaxWorkers). It returns the number
// of workers started and the hits missed for want of one.
func (a *Attacker) runOpen(ctx context.Context) (started int, missed uint64) {
	idle := &idleStack{freed: make(chan struct{}, 1)}
	a.dialer.done = idle.poke
	var (
		all []*openWorker
		wg  sync.WaitGroup
	)
	spawn := func() *openWorker {
		w := &openWorker{worker: a.newWorker(), ticks: make(chan tick, 1)}
		all = append(all, w)
		a.workers.Add(1)
		a.fresh.Add(1)
		wg.Add(1)
		go a.runOpenWorker(w, idle, &wg)
		return w
	}
	for range a.opts.Concurrency {
		idle.push(spawn())
	}
	defer func() {
		for _, w := range all {
			close(w.ticks)
		}
		wg.Wait()
	}()

	var deadline <-chan time.Time
	if a.opts.Duration > 0 {
		dt := time.NewTimer(a.opts.Duration - time.Since(a.began))
		defer dt.Stop()
		deadline = dt.C
	}
	sleep := time.NewTimer(time.Hour)
	sleep.Stop()
	defer sleep.Stop()

	for n := uint64(0); a.opts.Requests == 0 || n < a.opts.Requests; n++ {
		due, ok := a.waitUntilDue(ctx, n, sleep)
		if !ok {
			return len(all), 0
		}
		w := idle.pop()
		for w == nil { // every worker is busy
			if len(all) < a.opts.MaxWorkers && a.fresh.Load()+a.dialer.dialing.Load() < maxStarting {
				w = spawn()
				break
			}
			// No more workers allowed, or enough are still connecting:
			// wait for a worker or a connection. The hit is late, and its
			// latency will say so.
			select {
			case <-idle.freed:
				w = idle.pop()
			case <-ctx.Done():
				return len(all), 0
			case <-deadline:
				return len(all), countDue(a.opts.Pacer, a.opts.Duration, n, a.opts.Requests)
			}
		}
		w.ticks <- tick{n: n, at: a.began.Add(due)} // does not block: w is idle
	}
	return len(all), 0
}

// waitUntilDue asks the pacer when hit n is due and waits until then. It
// returns the due time, or false if the attack is over (the pacer stopped,
// the hit falls after Duration, or ctx is done). Long waits use sleep, a
// timer, until about a millisecond before the due time; the rest is slept
// with sleepFine, so hits leave within about 0.1 ms of their due time
// instead of up to 1 ms late.
func (a *Attacker) waitUntilDue(ctx context.Context, n uint64, sleep *time.Timer) (time.Duration, bool) {
	for {
		elapsed := time.Since(a.began)
		wait, stop := a.opts.Pacer.Next(elapsed, n)
		if stop {
			return 0, false
		}
		due := elapsed + wait
		if a.opts.Duration > 0 && due >= a.opts.Duration {
			return 0, false
		}
		switch {
		case wait <= 0:
			return due, true
		case wait <= fineSleepMax:
			sleepFine(wait)
			return due, true
		}
		sleep.Reset(wait - fineSleepMax/2)
		select {
		case <-sleep.C:
		case <-ctx.Done():
			return 0, false
		}
	}
}

// fineSleepMax is the longest wait slept with sleepFine; longer waits
// sleep on a timer until about half of it is left.
const fineSleepMax = 2 * time.Millisecond

// runOpenWorker sends the hits handed to w until its channel is closed,
// going back on the idle stack after each.
func (a *Attacker) runOpenWorker(w *openWorker, idle *idleStack, wg *sync.WaitGroup) {
	defer wg.Done()
	defer a.workers.Add(-1)
	first := true
	for t := range w.ticks {
		if first {
			a.fresh.Add(-1) // from now on, dialing counts it if it connects
			first = false
		}
		w.fire(t.n, t.at)
		idle.push(w)
	}
}

// countDue counts the hits from number from on (and below limit, if not
// zero) that p has due before end, by exponential then binary search on
// the monotone due times.
func countDue(p Pacer, end time.Duration, from, limit uint64) uint64 {
	isDue := func(n uint64) bool {
		if limit > 0 && n >= limit {
			return false
		}
		wait, stop := p.Next(end, n)
		return !stop && wait < 0
	}
	if !isDue(from) {
		return 0
	}
	lo, step := from, uint64(1) // isDue(lo)
	hi := from + step
	for isDue(hi) {
		lo = hi
		if step > 1<<62 {
			return hi - from
		}
		step *= 2
		hi = from + step
	}
	for hi-lo > 1 { // isDue(lo) && !isDue(hi)
		mid := lo + (hi-lo)/2
		if isDue(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi - from
}
