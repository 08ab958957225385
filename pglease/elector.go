package pglease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults of Config: a dead holder's lease is taken by another instance
// within TTL + RenewEvery = 13 s (plus one database round trip).
const (
	DefaultTTL        = 10 * time.Second
	DefaultRenewEvery = 3 * time.Second
)

// Config of an Elector. Zero fields take the defaults noted.
type Config struct {
	// Holder is this instance's name in the lease rows (fleet.instance).
	// Required. Two processes with the same Holder never hold one lease at
	// once (Acquire refuses a held lease whoever asks), but give each
	// instance its own name so that status shows who drives.
	Holder string
	// Names are the leases to hold, e.g. one per route ("ramp:" + route).
	// Required, no duplicates.
	Names []string
	// TTL is the term length: how long a lease outlives its last renewal.
	// Zero means DefaultTTL.
	TTL time.Duration
	// RenewEvery is how often a holder renews and a follower tries to
	// acquire. Zero means DefaultRenewEvery. Must be below TTL - Margin.
	RenewEvery time.Duration
	// Margin is how long before the term's expiry (as last renewed) the
	// holder stops trusting it and reports the loss. Zero means TTL/5.
	Margin time.Duration
	// OnChange, if not nil, is called when this instance gains or loses a
	// lease: for one name in order (gained, lost, gained, …), for
	// different names possibly concurrently. It runs on the lease's
	// goroutine and delays its next renewal, so it must return quickly
	// (hand the event to the driver's own goroutine). A loss is reported
	// no later than Margin before the term can expire in the database,
	// except when OnChange or the process is stalled for longer than
	// that: a driver also checks Held (or relies on Fence) before acting.
	OnChange func(Event)
	// Logf, if not nil, receives one line per renewal or acquisition
	// error. Nil means errors are only counted (Errors).
	Logf func(format string, args ...any)
}

// Event says that Token's term was gained (Held) or lost (!Held).
type Event struct {
	Token Token
	Held  bool
}

// Elector holds a set of leases for one instance: it acquires each when
// free, renews it while held, and reports gains and losses. Run it once.
type Elector struct {
	store *Store
	cfg   Config

	mu     sync.Mutex
	held   map[string]heldTerm
	errors int64

	skipRelease bool // tests: stop as a crash would, without releasing
}

type heldTerm struct {
	tok          Token
	trustedUntil time.Time // local monotonic clock
}

// NewElector validates cfg and returns an Elector on store.
func NewElector(store *Store, cfg Config) (*Elector, error) {
	if cfg.Holder == "" {
		return nil, errors.New("pglease: elector needs a Holder")
	}
	if len(cfg.Names) == 0 {
		return nil, errors.New("pglease: elector needs at least one lease name")
	}
	seen := map[string]bool{}
	for _, n := range cfg.Names {
		if n == "" || seen[n] {
			return nil, fmt.Errorf("pglease: lease name %q is empty or repeated", n)
		}
		seen[n] = true
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.RenewEvery == 0 {
		cfg.RenewEvery = DefaultRenewEvery
	}
	if cfg.Margin == 0 {
		cfg.Margin = cfg.TTL / 5
	}
	if cfg.TTL < 0 || cfg.RenewEvery < 0 || cfg.Margin < 0 || cfg.RenewEvery >= cfg.TTL-cfg.Margin {
		return nil, fmt.Errorf("pglease: need 0 < RenewEvery (%v) < TTL (%v) - Margin (%v)", cfg.RenewEvery, cfg.TTL, cfg.Margin)
	}
	cfg.Names = append([]string(nil), cfg.Names...)
	return &Elector{store: store, cfg: cfg, held: map[string]heldTerm{}}, nil
}

// Held returns the token of name's term while this instance holds it and
// still trusts it (before its local deadline, Margin ahead of the
// database's expiry), even if the renewal goroutine is stalled.
func (e *Elector) Held(name string) (Token, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h, ok := e.held[name]
	if !ok || !time.Now().Before(h.trustedUntil) {
		return Token{}, false
	}
	return h.tok, true
}

// Errors counts failed database round trips (acquire, renew, release).
func (e *Elector) Errors() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.errors
}

func (e *Elector) fail(err error) {
	e.mu.Lock()
	e.errors++
	e.mu.Unlock()
	if e.cfg.Logf != nil {
		e.cfg.Logf("%v", err)
	}
}

// Run holds the leases until ctx is done, then releases those held (so
// that another instance takes them at its next attempt) and returns after
// reporting their loss.
func (e *Elector) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, name := range e.cfg.Names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.leaseLoop(ctx, name)
		}()
	}
	wg.Wait()
}

// sleep waits d or until ctx is done; false when ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// leaseLoop is the goroutine of one lease: follower (try to acquire every
// RenewEvery) and holder (renew every RenewEvery) in turn.
func (e *Elector) leaseLoop(ctx context.Context, name string) {
	for ctx.Err() == nil {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, e.cfg.RenewEvery)
		tok, rem, ok, err := e.store.Acquire(actx, name, e.cfg.Holder, e.cfg.TTL)
		cancel()
		if err != nil && ctx.Err() == nil {
			e.fail(err)
		}
		if ok {
			// The term began no earlier than start (the statement ran
			// after it was sent), so start + rem is no later than the
			// database's expiry, whatever the two clocks read.
			if trusted := start.Add(rem - e.cfg.Margin); time.Now().Before(trusted) {
				e.hold(ctx, tok, trusted)
				continue
			}
			// The reply came too late to trust: leave it to expire.
		}
		if !sleep(ctx, e.cfg.RenewEvery-time.Since(start)) {
			return
		}
	}
}

// hold runs one term: report the gain, renew until lost, report the loss.
func (e *Elector) hold(ctx context.Context, tok Token, trusted time.Time) {
	e.set(tok.Name, &heldTerm{tok: tok, trustedUntil: trusted})
	e.report(Event{Token: tok, Held: true})
	defer e.report(Event{Token: tok, Held: false})
	defer e.set(tok.Name, nil)
	wait := e.cfg.RenewEvery
	for {
		if left := time.Until(trusted); wait > left {
			wait = left
		}
		if !sleep(ctx, wait) {
			e.set(tok.Name, nil) // stop acting before the release is sent
			if !e.skipRelease {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RenewEvery)
				if err := e.store.Release(rctx, tok); err != nil {
					e.fail(err) // the term expires on its own
				}
				cancel()
			}
			return
		}
		start := time.Now()
		left := trusted.Sub(start)
		if left <= 0 {
			e.fail(fmt.Errorf("pglease: %s: could not renew before the deadline; stepping down", tok))
			return
		}
		rctx, cancel := context.WithTimeout(ctx, left)
		rem, err := e.store.Renew(rctx, tok, e.cfg.TTL)
		cancel()
		switch {
		case errors.Is(err, ErrLost):
			e.fail(err)
			return
		case err != nil:
			if ctx.Err() != nil {
				continue // the next sleep sees ctx done and releases
			}
			e.fail(err)
			wait = e.cfg.RenewEvery / 4 // retry soon: the deadline is nearer
		default:
			trusted = start.Add(rem - e.cfg.Margin)
			e.set(tok.Name, &heldTerm{tok: tok, trustedUntil: trusted})
			wait = e.cfg.RenewEvery
		}
	}
}

func (e *Elector) set(name string, h *heldTerm) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if h == nil {
		delete(e.held, name)
	} else {
		e.held[name] = *h
	}
}

func (e *Elector) report(ev Event) {
	if e.cfg.OnChange != nil {
		e.cfg.OnChange(ev)
	}
}
