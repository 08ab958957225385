// Package recorder is the waitable record log the test backends share: they
// append what they received, and tests read it or wait for a count without
// polling. Test fixtures only.
package recorder

import (
	"sync"
	"time"
)

// Log is an append-only list of T that callers can wait on. The zero value
// is ready to use; it is safe for concurrent use.
type Log[T any] struct {
	mu      sync.Mutex
	items   []T
	changed chan struct{} // closed and replaced on every Add
}

// changedLocked returns the channel closed by the next Add.
func (l *Log[T]) changedLocked() chan struct{} {
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

// Add appends v and wakes every waiter.
func (l *Log[T]) Add(v T) {
	l.mu.Lock()
	l.items = append(l.items, v)
	close(l.changedLocked())
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// All returns a copy of the items in the order they were added.
func (l *Log[T]) All() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.items...)
}

// Len returns the number of items.
func (l *Log[T]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}

// Reset forgets every item.
func (l *Log[T]) Reset() {
	l.mu.Lock()
	l.items = nil
	l.mu.Unlock()
}

// Wait waits until at least n items are in the log and reports whether that
// happened within timeout. It gives up early when stop is closed (nothing
// more can arrive).
func (l *Log[T]) Wait(n int, timeout time.Duration, stop <-chan struct{}) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		l.mu.Lock()
		got, ch := len(l.items), l.changedLocked()
		l.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return l.Len() >= n
		case <-stop:
			return l.Len() >= n
		}
	}
}
