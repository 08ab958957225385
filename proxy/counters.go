package proxy

import (
	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
)

// RouteCounters are one route's cumulative counters since the process
// started, read from its metrics.
//
// Every answer tandem gave a client on the route is in exactly one of
// ServedLegacy, ServedNew and ServedTandem, its own 502, 504 and refusals
// included; Mirrored and Errors count some of those same answers. They are
// read from one set of cells (answerCounts), so Requests() ≥ Mirrored holds
// in every snapshot and in the difference of any two.
type RouteCounters struct {
	// ServedLegacy and ServedNew count the requests sent to that side,
	// whatever came of them: its answer, or tandem's 502/504 when it failed.
	// ServedTandem counts the requests tandem answered itself, no backend at
	// fault: the client's body refused (400, 408, 413), or a request that
	// cannot be forwarded.
	ServedLegacy, ServedNew, ServedTandem int64
	// Mirrored counts the served requests whose copy was handed to the
	// shadow side (whatever the shadow then did: see Shadow).
	Mirrored int64
	// Errors counts the error answers clients got, by who served them: a
	// failed exchange (tandem's 502/504), a 5xx from the backend, or a body
	// that broke off after the status went out; every answer served by
	// tandem is one.
	Errors   ServedCounts
	Fallback int64
	// Shadow counts shadow outcomes: sent, error and the skip reasons.
	Shadow map[exchange.Outcome]int64
	// Compare counts comparison results.
	Compare map[compare.Outcome]int64
}

// ServedCounts are counts by who answered the client.
type ServedCounts struct{ Legacy, New, Tandem int64 }

// Total is the sum of the three.
func (c ServedCounts) Total() int64 { return c.Legacy + c.New + c.Tandem }

// Requests is the number of requests answered on the route.
func (c RouteCounters) Requests() int64 { return c.ServedLegacy + c.ServedNew + c.ServedTandem }

// Counters returns the counters of every route in the rules in force.
func (s *Server) Counters() map[string]RouteCounters {
	t := s.table.Load()
	out := make(map[string]RouteCounters, len(t.routes))
	for _, r := range t.routes {
		c := RouteCounters{
			Fallback: int64(r.m.fallback.Get()),
			Shadow:   make(map[exchange.Outcome]int64, len(exchange.Outcomes)),
			Compare:  make(map[compare.Outcome]int64, len(compareResults)),
		}
		var served, errs [nServedBy]int64
		for by := range nServedBy {
			errs[by] = int64(r.m.answers.cut[by].Load()) // before the cells: see answerCounts
		}
		for by := range nServedBy {
			for mirrored := range 2 {
				for failed := range 2 {
					n := int64(r.m.answers.c[by][mirrored][failed].Load())
					served[by] += n
					errs[by] += n * int64(failed)
					c.Mirrored += n * int64(mirrored)
				}
			}
		}
		c.ServedLegacy, c.ServedNew, c.ServedTandem = served[byLegacy], served[byNew], served[byTandem]
		c.Errors = ServedCounts{Legacy: errs[byLegacy], New: errs[byNew], Tandem: errs[byTandem]}
		for o, m := range r.m.shadow {
			c.Shadow[o] = int64(m.Get())
		}
		for o, m := range r.m.compare {
			c.Compare[o] = int64(m.Get())
		}
		out[r.Name] = c
	}
	return out
}

// Breakers returns every backend's breaker state.
func (s *Server) Breakers() map[string]backends.State {
	out := make(map[string]backends.State, len(s.backends))
	for name, b := range s.backends {
		out[name] = b.BreakerState()
	}
	return out
}
