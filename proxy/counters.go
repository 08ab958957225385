package proxy

import (
	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/compare"
)

// RouteCounters are one route's cumulative counters since the process
// started, read from its metrics.
type RouteCounters struct {
	ServedLegacy, ServedNew, Fallback int64
	// Shadow counts shadow outcomes: sent, error and the skip reasons.
	Shadow map[string]int64
	// Compare counts comparison results.
	Compare map[compare.Outcome]int64
}

// Requests is the number of requests served.
func (c RouteCounters) Requests() int64 { return c.ServedLegacy + c.ServedNew }

// Counters returns the counters of every route in the rules in force.
func (s *Server) Counters() map[string]RouteCounters {
	t := s.table.Load()
	out := make(map[string]RouteCounters, len(t.routes))
	for _, r := range t.routes {
		c := RouteCounters{
			ServedLegacy: int64(r.m.servedLegacy.Get()),
			ServedNew:    int64(r.m.servedNew.Get()),
			Fallback:     int64(r.m.fallback.Get()),
			Shadow:       make(map[string]int64, len(shadowOutcomes)),
			Compare:      make(map[compare.Outcome]int64, len(compareResults)),
		}
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

// Observers fans one exchange out to several observers, in order.
type Observers []Observer

// Observe calls every observer.
func (o Observers) Observe(ex *Exchange) {
	for _, x := range o {
		x.Observe(ex)
	}
}

var _ Observer = Observers(nil)
