package app

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/proxy"
	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/rulestore"
	"github.com/tandem-proxy/tandem/store"
)

// storeObserver hands finished comparisons to the diff store.
type storeObserver struct{ st DiffStore }

func (o storeObserver) Observe(ex *exchange.Exchange) { o.st.Record(ex) }

// observers fans one exchange out to several observers, in order.
type observers []proxy.Observer

func (o observers) Observe(ex *exchange.Exchange) {
	for _, x := range o {
		x.Observe(ex)
	}
}

var (
	_ proxy.Observer = observers(nil)
	_ proxy.Observer = storeObserver{}
	_ proxy.Observer = (*ramp.Controller)(nil)
)

// routeStatus builds GET /api/v1/routes from the rules, the data plane's
// counters and breakers, and the ramp controller.
func routeStatus(state rulestore.Store, px *proxy.Server, ctl *ramp.Controller) []admin.RouteStatus {
	cur := state.Current()
	counters := px.Counters()
	breakers := px.Breakers()
	out := make([]admin.RouteStatus, 0, len(cur.Routes))
	for i := range cur.Routes {
		r := &cur.Routes[i]
		c := counters[r.Name]
		s := admin.RouteStatus{
			Name: r.Name, Legacy: r.Legacy, New: r.New, ServeNew: r.ServeNew, Mirror: r.Mirror, Sticky: r.Sticky,
			Breakers:     map[string]string{},
			Requests:     c.Requests(),
			ServedLegacy: c.ServedLegacy,
			ServedNew:    c.ServedNew,
			ServedTandem: c.ServedTandem,
			ServedErrors: store.ServedCounts{Legacy: c.Errors.Legacy, New: c.Errors.New, Tandem: c.Errors.Tandem},
			Fallback:     c.Fallback,
			Mirrored:     c.Mirrored,
			Matched:      c.Compare[compare.OutcomeMatch],
			Mismatched:   c.Compare[compare.OutcomeMismatch],
			Noise:        c.Compare[compare.OutcomeNoise],
		}
		s.Compared = s.Matched + s.Mismatched + s.Noise
		if s.Compared > 0 {
			s.DiffRate = float64(s.Mismatched) / float64(s.Compared)
		}
		for _, b := range []string{r.Legacy, r.New, r.Secondary} {
			if b != "" {
				s.Breakers[b] = breakers[b].String()
			}
		}
		if rs := ctl.Status(r); rs != nil {
			s.Ramp = rs
		}
		out = append(out, s)
	}
	return out
}

// registerStoreMetrics exports the diff store's own counters.
func registerStoreMetrics(ms *metrics.Set, st DiffStore) {
	gauge := func(name string, f func(store.StoreStats) int64) {
		ms.NewGauge(name, func() float64 { return float64(f(st.Stats())) })
	}
	gauge("tandem_store_queued", func(s store.StoreStats) int64 { return s.Queued })
	gauge("tandem_store_dropped_total", func(s store.StoreStats) int64 { return s.Dropped })
	for i, reason := range store.WriteErrorReasons {
		gauge(fmt.Sprintf(`tandem_store_write_errors_total{reason=%q}`, reason), func(s store.StoreStats) int64 { return s.WriteErrorsBy[i] })
	}
	gauge("tandem_store_written_total", func(s store.StoreStats) int64 { return s.Written })
}
