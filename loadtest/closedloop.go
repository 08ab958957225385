package loadtest

import (
	"context"
	"sync"
	"time"
)

// runClosed runs Concurrency workers back to back and returns their number.
func (a *Attacker) runClosed(ctx context.Context) int {
	var wg sync.WaitGroup
	for range a.opts.Concurrency {
		a.workers.Add(1)
		wg.Add(1)
		go a.closedWorker(ctx, &wg)
	}
	wg.Wait()
	return a.opts.Concurrency
}

// closedWorker sends hit after hit until a bound is reached or ctx is done.
func (a *Attacker) closedWorker(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	defer a.workers.Add(-1)
	w := a.newWorker()
	for ctx.Err() == nil {
		n := a.next.Add(1) - 1
		if a.opts.Requests > 0 && n >= a.opts.Requests {
			return
		}
		now := time.Now()
		if a.opts.Duration > 0 && now.Sub(a.began) >= a.opts.Duration {
			return
		}
		w.fire(n, now)
	}
}
