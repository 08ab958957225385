package compare

import (
	"sync"
	"sync/atomic"
	"time"
)

// DecodeBudget bounds the memory of image decoding: every decode given the
// same budget reserves its estimated cost (width × height × bytes a pixel,
// from the header, before any pixel buffer exists; see
// imagefmt.DecodedBytes) and returns it when its pixels are no longer used.
// A decode that does not fit waits up to the budget's wait for others to
// finish, then is refused: the comparison goes by hash and size with
// Result.Limit LimitDecodeBudget. A decode larger than the whole budget is
// refused at once.
//
// A comparison reserves both of its images at once, so two comparisons can
// never each hold one image and wait for the other. A nil *DecodeBudget
// bounds nothing (each image is still bounded by max_image_pixels).
// Methods are safe for concurrent use.
type DecodeBudget struct {
	size int64
	wait time.Duration

	mu    sync.Mutex
	used  int64         // under mu
	freed chan struct{} // under mu: closed and replaced whenever bytes come back

	peak    atomic.Int64
	refused atomic.Int64
}

// NewDecodeBudget returns a budget of size bytes; a decode that does not fit
// waits up to wait (0: not at all) for room.
func NewDecodeBudget(size int64, wait time.Duration) *DecodeBudget {
	return &DecodeBudget{size: size, wait: wait, freed: make(chan struct{})}
}

// Size returns the budget's size in bytes.
func (b *DecodeBudget) Size() int64 { return b.size }

// Used returns the bytes reserved now.
func (b *DecodeBudget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Peak returns the most bytes ever reserved at once.
func (b *DecodeBudget) Peak() int64 { return b.peak.Load() }

// Refused returns how many reservations were refused.
func (b *DecodeBudget) Refused() int64 { return b.refused.Load() }

// acquire reserves n bytes, waiting up to b.wait for room, and reports
// whether it got them. A nil budget always grants.
func (b *DecodeBudget) acquire(n int64) bool {
	if b == nil {
		return true
	}
	if n > b.size {
		b.refused.Add(1)
		return false
	}
	var timeout <-chan time.Time
	for {
		b.mu.Lock()
		if b.used+n <= b.size {
			b.used += n
			if b.used > b.peak.Load() {
				b.peak.Store(b.used) // under mu: no lost update
			}
			b.mu.Unlock()
			return true
		}
		freed := b.freed
		b.mu.Unlock()
		if timeout == nil {
			if b.wait <= 0 {
				b.refused.Add(1)
				return false
			}
			t := time.NewTimer(b.wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			b.refused.Add(1)
			return false
		}
	}
}

// release returns n bytes reserved by acquire.
func (b *DecodeBudget) release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		b.mu.Unlock()
		panic("BUG: decode budget released more than it reserved")
	}
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}
