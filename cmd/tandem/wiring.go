package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/proxy"
	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/store"
)

// storeObserver hands finished comparisons to the diff store.
type storeObserver struct{ st *store.Store }

func (o storeObserver) Observe(ex *exchange.Exchange) { o.st.Record(ex) }

// observers fans one exchange out to several observers, in order.
type observers []proxy.Observer

func (o observers) Observe(ex *exchange.Exchange) {
	for _, x := range o {
		x.Observe(ex)
	}
}

// noiseFile persists the learner's state (learned and marked noise) in
// data_dir/noise.json, written atomically.
type noiseFile struct {
	path    string
	learner *compare.Learner
}

func (n *noiseFile) load() error {
	b, err := os.ReadFile(n.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", n.path, err)
	}
	if err := n.learner.Restore(b); err != nil {
		bad := fmt.Sprintf("%s.corrupt", n.path)
		os.Rename(n.path, bad)
		return fmt.Errorf("%s is unreadable (moved to %s; noise will be learned again): %w", n.path, bad, err)
	}
	return nil
}

func (n *noiseFile) save() error {
	b, err := n.learner.Snapshot()
	if err != nil {
		return err
	}
	return writeFileAtomic(n.path, b)
}

// writeFileAtomic writes via a synced temp file and a rename.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// routeStatus builds GET /api/v1/routes from the rules, the data plane's
// counters and breakers, and the ramp controller.
func routeStatus(state *rules.State, px *proxy.Server, ctl *ramp.Controller) []admin.RouteStatus {
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
func registerStoreMetrics(ms *metrics.Set, st *store.Store) {
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
