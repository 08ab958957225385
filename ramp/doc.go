// Package ramp is the whole of automatic promotion: the pure step decision
// (Step: a function of the time, the route's ramp, its serve_new, its
// Progress and its Stats, tested without sleeping), the statistics window
// that gathers Stats from finished exchanges (Window, Tracker), the
// controller that feeds the windows (it observes exchange.Exchange), ticks
// and carries out decisions (Apply) through the same versioned rules state
// as the API (actor "ramp"), and the ramp status of GET /api/v1/routes.
//
// The window keeps each comparison's compare.Signature, not its verdict,
// and the gates classify the signatures with the app's noise model
// (compare.NoiseModel, the Learner) each time they are evaluated: a
// comparison made before a field was learned as noise stops counting once
// it is. The rate gates (diff_rate, error_rate) are statistical: a gate
// passes when the upper bound of a one-sided Wilson score interval at
// Confidence (95%) is at or below its limit, fails when the lower bound is
// above it, and holds otherwise (Gate, Wilson); the latency ratio is
// compared as it is. A ramp at 0% never rolls back: a gate that would fail
// there holds the ramp, which starts once the gates pass.
//
// A fleet (Options.Fleet; pgramp implements it on PostgreSQL) makes the
// ramps fleet-wide: every instance publishes its window for the route's
// StepKey (derived from the shared rules history, so the same on every
// instance) at each Tick, every instance evaluates Step on the merged
// snapshots of the live instances (MergeSnapshots) so that Status shows
// the fleet's gates everywhere, and only the holder of the route's lease
// (Fleet.Lead; Status.Driver) applies decisions, through the Fleet's
// fenced Apply and Record, an advance only once every live instance has
// applied the rules version it is computed from. The step starts, and the
// hold counts, when the step began fleet-wide. Without a Fleet each
// instance ramps on its own traffic, as before. The Fleet is an interface:
// this package stays free of the database.
//
// The ramp's settings (rules.Ramp: steps, hold, gates) are part of the
// routing model in rules; everything that decides is here. It imports no
// network code and never imports proxy, store, admin or config.
package ramp
