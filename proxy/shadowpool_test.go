package proxy

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Admission counts jobs, not parked workers: with no worker running at all
// (as just after start, or while each is finishing its last job), submit
// takes exactly cap(jobs) jobs, refuses the next, takes one again when a job
// finishes, and after the queue is closed refuses without panicking.
func TestSubmitAdmitsByCount(t *testing.T) {
	p := newShadowPool(2, func(*shadowJob, []byte) {})
	for i := 0; i < 2; i++ {
		if !p.submit(&shadowJob{}) {
			t.Fatalf("job %d refused with %d of 2 places taken", i+1, i)
		}
	}
	if p.submit(&shadowJob{}) {
		t.Fatal("a third job was admitted over shadow_concurrency 2")
	}
	if !p.full() {
		t.Fatal("full() = false with 2 of 2 places taken")
	}
	if got := p.inFlight(); got != 2 {
		t.Fatalf("inFlight = %d after a refusal, want 2", got)
	}
	<-p.jobs // a worker takes one and finishes it
	p.busy.Add(-1)
	if !p.submit(&shadowJob{}) {
		t.Fatal("refused with a place free")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n := p.stop(ctx); n != 2 {
		t.Fatalf("stop of a pool never started abandoned %d, want the 2 queued", n)
	}
	if p.submit(&shadowJob{}) {
		t.Fatal("admitted after the queue was closed")
	}
	if got, queued := p.inFlight(), len(p.jobs); got != 2 || queued != 2 {
		t.Fatalf("inFlight = %d, queued = %d after close, want 2 and 2", got, queued)
	}
}

// blockingPool is a started pool of n workers whose jobs each wait for
// release; ran receives every job as a worker takes it.
func blockingPool(t *testing.T, n int) (p *shadowPool, ran chan *shadowJob, release chan struct{}) {
	t.Helper()
	ran = make(chan *shadowJob, 64)
	release = make(chan struct{})
	p = newShadowPool(n, func(j *shadowJob, buf []byte) {
		if len(buf) != shadowBufSize {
			t.Errorf("worker buffer is %d bytes, want %d", len(buf), shadowBufSize)
		}
		ran <- j
		<-release
	})
	p.start()
	p.start() // a second start launches no second set of workers
	return p, ran, release
}

// The bound holds queued and running jobs together: with every worker busy
// no job waits in the queue beyond it, and a finished job frees its place.
func TestShadowPoolBound(t *testing.T) {
	p, ran, release := blockingPool(t, 3)
	for i := 0; i < 3; i++ {
		if !p.submit(&shadowJob{}) {
			t.Fatalf("job %d refused with %d of 3 places taken", i+1, i)
		}
	}
	for i := 0; i < 3; i++ {
		<-ran // all three running, none queued
	}
	if p.submit(&shadowJob{}) {
		t.Fatal("a fourth job was admitted with three running")
	}
	release <- struct{}{} // one finishes
	deadline := time.Now().Add(5 * time.Second)
	for p.inFlight() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("inFlight = %d after one job finished, want 2", p.inFlight())
		}
		time.Sleep(time.Millisecond) // polling a counter the worker decrements; no event to wait on
	}
	if !p.submit(&shadowJob{}) {
		t.Fatal("refused after a job finished")
	}
	close(release)
	if n := p.stop(context.Background()); n != 0 {
		t.Fatalf("stop abandoned %d with no deadline, want 0", n)
	}
}

// stop lets every admitted job run, queued ones included, and returns only
// when the workers are done; afterwards submit refuses.
func TestShadowPoolStopDrains(t *testing.T) {
	var mu sync.Mutex
	done := map[*shadowJob]bool{}
	p := newShadowPool(2, func(j *shadowJob, _ []byte) {
		mu.Lock()
		done[j] = true
		mu.Unlock()
	})
	jobs := []*shadowJob{{}, {}}
	for _, j := range jobs {
		if !p.submit(j) {
			t.Fatal("refused with places free")
		}
	}
	p.start() // the jobs queued before start run too
	if n := p.stop(context.Background()); n != 0 {
		t.Fatalf("stop abandoned %d, want 0", n)
	}
	mu.Lock()
	for i, j := range jobs {
		if !done[j] {
			t.Errorf("job %d did not run before stop returned", i)
		}
	}
	mu.Unlock()
	if got := p.inFlight(); got != 0 {
		t.Fatalf("inFlight = %d after stop, want 0", got)
	}
	if p.submit(&shadowJob{}) {
		t.Fatal("admitted after stop")
	}
	if n := p.stop(context.Background()); n != 0 {
		t.Fatalf("a second stop abandoned %d, want 0", n)
	}
}

// stop gives up at ctx's deadline and returns the jobs still queued or
// running (what Shutdown counts in tandem_shadow_abandoned_total); the
// workers finish them afterwards.
func TestShadowPoolStopAbandons(t *testing.T) {
	p, ran, release := blockingPool(t, 1)
	if !p.submit(&shadowJob{}) {
		t.Fatal("refused with places free")
	}
	<-ran // one running; a pool of one has no room for a second
	if p.submit(&shadowJob{}) {
		t.Fatal("admitted over shadow_concurrency 1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if n := p.stop(ctx); n != 1 {
		t.Fatalf("stop abandoned %d, want the 1 still running", n)
	}
	close(release)
	if n := p.stop(context.Background()); n != 0 {
		t.Fatalf("stop after the job finished abandoned %d, want 0", n)
	}
}
