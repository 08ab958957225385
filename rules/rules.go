package rules

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Rules is one version of the routing rules: the document that GET and PUT
// /api/v1/rules exchange (JSON) and that dir/rules.json holds.
type Rules struct {
	// Version counts changes: 1 for the first seed, +1 for every change.
	// The State assigns it; a Version set by a mutation is ignored.
	Version int64   `json:"version" yaml:"version"`
	Routes  []Route `json:"routes" yaml:"routes"`
}

// Clone returns a deep copy of r: no slice or pointer is shared with r.
func (r Rules) Clone() Rules {
	return Rules{Version: r.Version, Routes: CloneRoutes(r.Routes)}
}

// CloneRoutes returns a deep copy of rs.
func CloneRoutes(rs []Route) []Route {
	if rs == nil {
		return nil
	}
	out := make([]Route, len(rs))
	for i := range rs {
		out[i] = rs[i].clone()
	}
	return out
}

// clone deep-copies a Route. TestCloneSharesNothing fails when a field that
// holds a slice, map or pointer is added here or in compare.Settings and not
// copied.
func (r Route) clone() Route {
	c := r
	c.Match.Methods = cloneSlice(r.Match.Methods)
	c.Compare.IgnoreHeaders = cloneSlice(r.Compare.IgnoreHeaders)
	c.Compare.CompareHeaders = cloneSlice(r.Compare.CompareHeaders)
	c.Compare.IgnoreJSON = cloneSlice(r.Compare.IgnoreJSON)
	if r.Ramp != nil {
		rp := *r.Ramp
		rp.Steps = cloneSlice(r.Ramp.Steps)
		c.Ramp = &rp
	}
	return c
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

// Event is one audit-log entry (one JSON line of dir/audit.log).
type Event struct {
	Time time.Time `json:"time"`
	// Actor says who made the change: "file" (the config file), "api",
	// "cli", "ramp" (the automatic ramp) or "tandem" (start-up recovery).
	Actor string `json:"actor"`
	// Kind is one of "seed", "replace", "reload", "reload_error", "promote",
	// "rollback", "ramp_step", "ramp_rollback", "ramp_done", "noise",
	// "recovered".
	Kind   string `json:"kind"`
	Route  string `json:"route,omitempty"`
	Reason string `json:"reason,omitempty"`
	// OldVersion and NewVersion are the rules versions before and after a
	// change; zero (omitted) for events that change no rules.
	OldVersion int64 `json:"old_version,omitempty"`
	NewVersion int64 `json:"new_version,omitempty"`
	// Old and New are short human summaries of what changed, such as
	// "serve_new 5" and "serve_new 25". The State fills them for changes.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
	// Details holds gate values for ramp decisions and errors for
	// reload_error. Values must encode as JSON.
	Details map[string]any `json:"details,omitempty"`
	// Instance names the fleet instance that wrote the event (fleet.instance);
	// empty for an instance alone (rulestore.State).
	Instance string `json:"instance,omitempty"`
}

// Event kinds written by the State itself.
const (
	KindSeed      = "seed"
	KindReplace   = "replace"
	KindReload    = "reload"
	KindPromote   = "promote"
	KindRollback  = "rollback"
	KindRecovered = "recovered"
)

var (
	// ErrStale means the If-Match version is not the current version:
	// someone else changed the rules since the caller read them.
	ErrStale = errors.New("rules changed since that version (If-Match is stale)")
	// ErrUnknownRoute means no route has the given name.
	ErrUnknownRoute = errors.New("unknown route")
	// ErrUnavailable means the rules store could not be reached (a fleet's
	// database is down): nothing was changed, the rules in force stay, and
	// the caller may retry later (the admin API answers 503).
	ErrUnavailable = errors.New("the rules store is unavailable")
)

// ValidationError carries every problem found in rules that a change would
// have produced. Nothing was changed.
type ValidationError struct{ Errs []error }

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return "invalid rules: " + strings.Join(msgs, "; ")
}

// Unwrap returns the individual problems, so errors.As finds each one.
func (e *ValidationError) Unwrap() []error { return e.Errs }

// Validator checks a complete set of routes and returns every problem. The
// caller supplies it because it knows the backends; typically
// func(rs []Route) []error { return Validate(rs, cfg.HasBackend) }.
type Validator func([]Route) []error

// SetServeNew returns the change that sets route's serve_new to percent,
// for Apply: if from is non-nil and the route's serve_new is no longer
// *from, the change is refused with an error wrapping ErrStale (a
// compare-and-set on the percentage, for decisions made on older rules).
// A percentage the route cannot take (outside 0..100, more than two
// decimals, above 0 on a route without a new backend) is refused with a
// *ValidationError that names the route and the field, as a person typed
// them: `route "upload": serve_new 150 must be within 0..100`, not the
// route's index in the list.
func SetServeNew(route string, percent float64, from *float64) func(*Rules) error {
	return func(r *Rules) error {
		for i := range r.Routes {
			rt := &r.Routes[i]
			if rt.Name != route {
				continue
			}
			var errs []error
			bad := func(field, format string, args ...any) {
				errs = append(errs, fmt.Errorf("route %q: %s %s", route, field, fmt.Sprintf(format, args...)))
			}
			checkPercent(bad, "serve_new", percent)
			if len(errs) == 0 && percent != 0 && rt.New == "" {
				bad("serve_new", "%v needs a new backend, and the route has none", percent)
			}
			if len(errs) > 0 {
				return &ValidationError{Errs: errs}
			}
			if from != nil && Threshold(rt.ServeNew) != Threshold(*from) {
				return fmt.Errorf("%w: route %q serve_new is %v, not %v", ErrStale, route, rt.ServeNew, *from)
			}
			rt.ServeNew = percent
			return nil
		}
		return fmt.Errorf("%w %q", ErrUnknownRoute, route)
	}
}
