package app

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tandem-proxy/tandem/admin"

	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/proxy"
	"github.com/tandem-proxy/tandem/store"
)

// job is one periodic task of the instance: a named goroutine that calls
// run every interval until its stop, and then final (if any) once.
type job struct {
	name     string
	interval time.Duration
	run      func()
	final    func() // after stop: e.g. the last counter flush

	stop chan struct{}
	done chan struct{}
}

// jobs are the instance's periodic jobs, started and stopped together.
type jobs struct {
	mu   sync.Mutex
	list []*job
}

// start starts j in its own goroutine.
func (js *jobs) start(j *job) {
	j.stop, j.done = make(chan struct{}), make(chan struct{})
	js.mu.Lock()
	js.list = append(js.list, j)
	js.mu.Unlock()
	go j.loop()
}

func (j *job) loop() {
	defer close(j.done)
	t := time.NewTicker(j.interval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			if j.final != nil {
				j.final()
			}
			return
		case <-t.C:
			j.run()
		}
	}
}

// stopAll stops every job and waits for each (and its final call) to end.
func (js *jobs) stopAll() {
	js.mu.Lock()
	list := js.list
	js.list = nil
	js.mu.Unlock()
	for _, j := range list {
		close(j.stop)
	}
	for _, j := range list {
		<-j.done
	}
}

// counterFlusher sends the data plane's counters' growth to the store.
type counterFlusher struct {
	px   *proxy.Server
	st   DiffStore
	last map[string]proxy.RouteCounters // only the flush job's goroutine uses it
}

// flush sends the counters' growth since the last flush to the store.
// Requests, the served counts, their errors and Sent (mirrored) come from one
// snapshot of the route's answer cells (proxy.RouteCounters), so every delta,
// and so every window of the report, has Sent ≤ Requests. Shadow outcomes
// that are skips (exchange.Outcome.Skipped) go to the store's skip counts; a
// copy that was sent and failed is mirrored, not skipped.
func (f *counterFlusher) flush() {
	now := time.Now()
	for route, c := range f.px.Counters() {
		p := f.last[route]
		d := store.Counters{
			Requests:     c.Requests() - p.Requests(),
			ServedLegacy: c.ServedLegacy - p.ServedLegacy,
			ServedNew:    c.ServedNew - p.ServedNew,
			ServedTandem: c.ServedTandem - p.ServedTandem,
			ServedErrors: store.ServedCounts{
				Legacy: c.Errors.Legacy - p.Errors.Legacy,
				New:    c.Errors.New - p.Errors.New,
				Tandem: c.Errors.Tandem - p.Errors.Tandem,
			},
			Fallback: c.Fallback - p.Fallback,
			Sent:     c.Mirrored - p.Mirrored,
			Skipped:  map[exchange.Outcome]int64{},
		}
		var skipped int64
		for _, o := range exchange.Outcomes {
			if o.Skipped() {
				d.Skipped[o] = c.Shadow[o] - p.Shadow[o]
				skipped += d.Skipped[o]
			}
		}
		if d.Requests == 0 && d.Sent == 0 && d.Fallback == 0 && skipped == 0 {
			continue
		}
		if f.st.AddCounters(route, now, d) {
			f.last[route] = c
		}
	}
}

// diffRateEvery is how often the report-gauge job refreshes
// tandem_report_diff_rate; fleetReportEvery is how often in a fleet, where
// the same read also gives the routes view the fleet's counts.
const (
	diffRateEvery    = 10 * time.Second
	fleetReportEvery = 5 * time.Second
)

// diffRateGauges export tandem_report_diff_rate{route}: each route's diff
// rate as GET /api/v1/report gives it over all the store's data, that is
// with noise applied by the noise model as it stands when read. Unlike
// tandem_compare_total, whose outcome is fixed when the comparison is
// counted (a counter cannot go back), this gauge falls when a path is
// learned or marked as noise after the fact. It is refreshed by the
// report-gauge job every diffRateEvery and once at start-up; a route of
// the rules in force that the report does not hold yet is 0 (the report's
// rate with nothing compared), and a route that is in neither is dropped.
type diffRateGauges struct {
	ms     *metrics.Set
	st     DiffStore
	routes func() []string // the routes of the rules in force
	log    *slog.Logger
	// fleet: the store holds the whole fleet's numbers, and fill gives
	// them to the routes view in place of this instance's counters.
	fleet bool

	mu    sync.Mutex
	rates map[string]reportRate // by route; the gauges' callbacks read it
}

// reportRate is one route's numbers of the last report read.
type reportRate struct {
	rate     float64
	compared int64
	rep      *store.RouteReport // nil: the route had no data
}

func diffRateName(route string) string {
	return fmt.Sprintf(`tandem_report_diff_rate{route=%q}`, route)
}

// refresh reads the report and sets every route's gauge to its diff rate.
// On a failed read the gauges keep their values and the failure is logged.
func (g *diffRateGauges) refresh() {
	reps, err := g.st.Report("", time.Time{})
	if err != nil {
		g.log.Warn("tandem_report_diff_rate not refreshed", "err", err)
		return
	}
	next := map[string]reportRate{}
	for _, r := range g.routes() {
		next[r] = reportRate{}
	}
	for i := range reps {
		r := &reps[i]
		next[r.Route] = reportRate{rate: r.DiffRate, compared: r.Compared, rep: r}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for route := range g.rates {
		if _, ok := next[route]; !ok {
			g.ms.UnregisterMetric(diffRateName(route))
		}
	}
	old := g.rates
	g.rates = next
	for route := range next {
		if _, ok := old[route]; ok {
			continue
		}
		g.ms.GetOrCreateGauge(diffRateName(route), func() float64 {
			g.mu.Lock()
			defer g.mu.Unlock()
			return g.rates[route].rate
		})
	}
}

// fill sets the report's numbers of the last refresh on rs (GET
// /api/v1/routes), next to the proxy's own counts. In a fleet the counts
// themselves are the fleet's, from the same read (every
// fleetReportEvery): requests, served, errors, mirrored and the
// comparisons of every instance, over all stored data; the breakers and
// the ramp stay this instance's view.
func (g *diffRateGauges) fill(rs []admin.RouteStatus) []admin.RouteStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range rs {
		r := g.rates[rs[i].Name]
		rs[i].ReportDiffRate, rs[i].ReportCompared = r.rate, r.compared
		if g.fleet {
			fleetCounts(&rs[i], r.rep)
		}
	}
	return rs
}

// fleetCounts puts a fleet report's counts in place of one instance's (a
// route with no data yet: zeros).
func fleetCounts(s *admin.RouteStatus, r *store.RouteReport) {
	if r == nil {
		r = &store.RouteReport{}
	}
	s.Requests, s.ServedLegacy, s.ServedNew, s.ServedTandem = r.Requests, r.ServedLegacy, r.ServedNew, r.ServedTandem
	s.ServedErrors, s.Fallback, s.Mirrored = r.ServedErrors, r.Fallback, r.Mirrored
	s.Matched, s.Mismatched, s.Noise = r.Matched, r.Mismatched, r.Noise
	s.Compared = s.Matched + s.Mismatched + s.Noise
	s.DiffRate = 0
	if s.Compared > 0 {
		s.DiffRate = float64(s.Mismatched) / float64(s.Compared)
	}
}
