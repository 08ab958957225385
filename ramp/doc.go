// Package ramp is the whole of automatic promotion: the pure step decision
// (Step: a function of the time, the route's ramp, its serve_new, its
// Progress and its Stats, tested without sleeping), the statistics window
// that gathers Stats from finished exchanges (Window, Tracker), the
// controller that feeds the windows (it observes exchange.Exchange), ticks
// and carries out decisions (Apply) through the same versioned rules state
// as the API (actor "ramp"), and the ramp status of GET /api/v1/routes.
//
// The ramp's settings (rules.Ramp: steps, hold, gates) are part of the
// routing model in rules; everything that decides is here. It imports no
// network code and never imports proxy, store, admin or config.
package ramp
