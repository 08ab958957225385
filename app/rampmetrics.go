package app

import (
	"fmt"
	"io"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/rules"
)

// rampStatus is what the ramp metrics need of the controller.
type rampStatus interface {
	Status(r *rules.Route) *ramp.Status
}

// registerRampMetrics exports every ramped route's ramp, computed at each
// scrape from the same ramp.Status as GET /api/v1/routes' "ramp", so the
// dashboard and the API cannot disagree:
//
//	tandem_ramp_gate_limit{route,gate}  the gate's limit in the rules (max_diff_rate, …)
//	tandem_ramp_gate_value{route,gate}  the value the last evaluation saw
//	tandem_ramp_gate_bound{route,gate}  its bound: the Wilson upper bound of a rate, the ratio itself for latency_ratio
//	tandem_ramp_step_percent{route}     the serve_new percentage the ramp is at
//	tandem_ramp_state{route}            the state's index in ramp.States (0 waiting … 5 done)
//
// gate is one of ramp.GateNames; route one of the rules' routes with a
// ramp and a new backend. Value and bound are absent before a route's
// first evaluation (a ramp's Status has no gates then); the limit is there
// from the start.
func registerRampMetrics(ms *metrics.Set, current func() rules.Rules, ctl rampStatus) {
	ms.RegisterMetricsWriter(func(w io.Writer) { writeRampMetrics(w, current(), ctl) })
}

func writeRampMetrics(w io.Writer, cur rules.Rules, ctl rampStatus) {
	type ramped struct {
		r  *rules.Route
		st *ramp.Status
	}
	var rs []ramped
	for i := range cur.Routes {
		r := &cur.Routes[i]
		if st := ctl.Status(r); st != nil {
			rs = append(rs, ramped{r, st})
		}
	}
	if len(rs) == 0 {
		return
	}
	gauge := func(family, route, gate string, v float64) {
		name := fmt.Sprintf(`%s{route=%q}`, family, route)
		if gate != "" {
			name = fmt.Sprintf(`%s{route=%q,gate=%q}`, family, route, gate)
		}
		metrics.WriteGaugeFloat64(w, name, v)
	}
	for _, x := range rs {
		for _, g := range ramp.GateNames {
			limit, _ := ramp.Limit(x.r.Ramp, g)
			gauge("tandem_ramp_gate_limit", x.r.Name, g, limit)
		}
	}
	for _, x := range rs {
		for _, g := range x.st.Gates {
			gauge("tandem_ramp_gate_value", x.r.Name, g.Name, g.Value)
		}
	}
	for _, x := range rs {
		for _, g := range x.st.Gates {
			gauge("tandem_ramp_gate_bound", x.r.Name, g.Name, g.Bound)
		}
	}
	for _, x := range rs {
		gauge("tandem_ramp_step_percent", x.r.Name, "", x.st.Current)
	}
	for _, x := range rs {
		gauge("tandem_ramp_state", x.r.Name, "", float64(ramp.StateCode(x.st.State)))
	}
}
