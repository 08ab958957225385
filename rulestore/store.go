package rulestore

import (
	"time"

	"github.com/tandem-proxy/tandem/rules"
)

// Store is a rules store: what tandem's application, admin API and ramp use
// of State, and what a second implementation must provide.
type Store interface {
	// Current returns a copy of the rules in force.
	Current() rules.Rules
	// Apply changes the rules by mutate as one new version, if ifMatch is 0
	// or the current version (else the error wraps rules.ErrStale), and if
	// the result validates (else a *rules.ValidationError); ev is its audit
	// event. The bool reports whether the rules changed.
	Apply(ifMatch int64, ev rules.Event, mutate func(*rules.Rules) error) (rules.Rules, bool, error)
	// Subscribe calls f with the current rules at once, then with every
	// new version, in version order.
	Subscribe(f func(rules.Rules))
	// Record appends an event that changes no rules to the audit log.
	Record(rules.Event) error
	// Events returns the audit log's events at or after since (zero: all),
	// oldest first; limit > 0 keeps only the newest limit.
	Events(since time.Time, limit int) ([]rules.Event, error)
	// Recovered says what opening the store had to repair, or "".
	Recovered() string
}

var _ Store = (*State)(nil)

// Summarize describes what changed from old to neu as the audit event's Old
// and New texts, as State does; route is the route the change is about, if
// one. For other implementations of Store.
func Summarize(old, neu []rules.Route, route string) (string, string) {
	return summarize(old, neu, route)
}

// RoutesDigest identifies a set of routes by their persisted form (the
// digest FileChanged compares); "" if they cannot be encoded.
func RoutesDigest(rs []rules.Route) string { return routesDigest(rs) }

// SameRoutes reports whether a and b persist identically: a change that
// leaves them so makes no version.
func SameRoutes(a, b []rules.Route) bool { return sameRoutes(a, b) }
