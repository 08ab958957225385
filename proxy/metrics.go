package proxy

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
)

var compareResults = []compare.Outcome{compare.OutcomeMatch, compare.OutcomeMismatch, compare.OutcomeNoise, compare.OutcomeError}

var mismatchKinds = []compare.Kind{compare.KindStatus, compare.KindHeader, compare.KindJSON, compare.KindImage, compare.KindBody}

var errorReasons = []backends.Reason{backends.ReasonConnect, backends.ReasonTimeout, backends.ReasonReset, backends.ReasonProtocol, backends.ReasonStatus, backends.ReasonBusy}

// client errors answered by tandem itself, by status.
var clientErrorStatuses = []int{400, 404, 405, 408, 413, 431, 502, 504, 505}

// Who answered a client: the closed label set of
// tandem_requests_total{served_by}. ServedByTandem is a request tandem
// answered itself with no backend at fault: it refused the client's body
// (400, 408, 413) or could not forward the request (see buildOutbound).
const (
	ServedByLegacy = "legacy"
	ServedByNew    = "new"
	ServedByTandem = "tandem"
)

type servedBy uint8

const (
	byLegacy servedBy = iota
	byNew
	byTandem
	nServedBy
)

var servedByNames = [nServedBy]string{ServedByLegacy, ServedByNew, ServedByTandem}

// answerCounts count a route's answered requests, one cell per kind of
// answer: who served it, whether its copy went to the shadow side, whether
// it was an error. Each answer adds to exactly one cell, so every figure
// made of cells (requests, served by each side, mirrored, errors) is read
// from the same increments: no snapshot, and no difference of two
// snapshots, can count a request's mirror without the request.
// tandem_requests_total is exported from them.
//
// cut counts the answers, already in a cell as sent, whose body then broke
// off (the serving backend reset, timed out or closed mid-body): errors the
// client got after its status. They are incremented after the answer's cell,
// so a reader that loads cut first never counts more errors than requests.
type answerCounts struct {
	c   [nServedBy][2][2]atomic.Uint64 // [served by][mirrored][error]
	cut [nServedBy]atomic.Uint64
}

func (a *answerCounts) add(by servedBy, mirrored, failed bool) {
	a.c[by][b2i(mirrored)][b2i(failed)].Add(1)
}

func (a *answerCounts) served(by servedBy) uint64 {
	return a.c[by][0][0].Load() + a.c[by][0][1].Load() + a.c[by][1][0].Load() + a.c[by][1][1].Load()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// serverMetrics are one Server's metrics, in the set the caller passed
// (Options.Metrics) or one of the server's own; nothing is registered
// globally, so two servers in one process (tests) never share counters.
type serverMetrics struct {
	set          *metrics.Set
	clientErrors map[int]*metrics.Counter
	abandoned    *metrics.Counter

	answersMu sync.Mutex
	answers   map[string]*answerCounts // by route name; kept across rules versions
}

func newServerMetrics(s *Server, set *metrics.Set) *serverMetrics {
	if set == nil {
		set = metrics.NewSet()
	}
	m := &serverMetrics{set: set, clientErrors: map[int]*metrics.Counter{}, answers: map[string]*answerCounts{}}
	for _, st := range clientErrorStatuses {
		m.clientErrors[st] = set.NewCounter(fmt.Sprintf(`tandem_client_errors_total{status="%d"}`, st))
	}
	m.abandoned = set.NewCounter("tandem_shadow_abandoned_total")
	set.NewGauge("tandem_shadow_in_flight", func() float64 { return float64(s.shadows.inFlight()) })
	set.NewGauge("tandem_spool_disk_bytes", func() float64 { return float64(s.spools.used.Load()) })
	set.NewGauge("tandem_rules_version", func() float64 { return float64(s.RulesVersion()) })
	for name, b := range s.backends {
		b := b
		set.NewGauge(fmt.Sprintf(`tandem_breaker_state{backend=%q}`, name), func() float64 { return float64(b.BreakerState()) })
	}
	return m
}

func (m *serverMetrics) clientError(status int) {
	if c := m.clientErrors[status]; c != nil {
		c.Inc()
	}
}

// routeMetrics holds one route's counters, created when the route is compiled
// so the hot path only increments.
type routeMetrics struct {
	answers  *answerCounts
	fallback *metrics.Counter
	shadow   map[exchange.Outcome]*metrics.Counter
	compare  map[compare.Outcome]*metrics.Counter
	mismatch map[compare.Kind]*metrics.Counter
	// per backend name → role → histogram
	duration map[string]map[backends.Role]*metrics.PrometheusHistogram
	errors   map[string]map[backends.Reason]*metrics.Counter
	cmp      *compareMetrics
	retries  map[string]map[backends.RetryReason]*metrics.Counter
}

// newRouteMetrics returns a compiled route's metrics. A route keeps its
// counters across rules versions: they are found by name.
func newRouteMetrics(sm *serverMetrics, route string, backendNames []string) *routeMetrics {
	set := sm.set
	m := &routeMetrics{
		answers:  sm.routeAnswers(route),
		fallback: set.GetOrCreateCounter(fmt.Sprintf(`tandem_fallback_total{route=%q}`, route)),
		shadow:   map[exchange.Outcome]*metrics.Counter{},
		compare:  map[compare.Outcome]*metrics.Counter{},
		mismatch: map[compare.Kind]*metrics.Counter{},
		duration: map[string]map[backends.Role]*metrics.PrometheusHistogram{},
		errors:   map[string]map[backends.Reason]*metrics.Counter{},
		cmp:      newCompareMetrics(set, route),
		retries:  map[string]map[backends.RetryReason]*metrics.Counter{},
	}
	for _, o := range exchange.Outcomes {
		m.shadow[o] = set.GetOrCreateCounter(fmt.Sprintf(`tandem_shadow_total{route=%q,outcome=%q}`, route, o))
	}
	for _, o := range compareResults {
		m.compare[o] = set.GetOrCreateCounter(fmt.Sprintf(`tandem_compare_total{route=%q,result=%q}`, route, o))
	}
	for _, k := range mismatchKinds {
		m.mismatch[k] = set.GetOrCreateCounter(fmt.Sprintf(`tandem_mismatch_total{route=%q,kind=%q}`, route, k))
	}
	for _, b := range backendNames {
		m.duration[b] = map[backends.Role]*metrics.PrometheusHistogram{}
		for _, role := range []backends.Role{backends.Served, backends.Shadow} {
			m.duration[b][role] = set.GetOrCreatePrometheusHistogram(fmt.Sprintf(
				`tandem_backend_request_duration_seconds{route=%q,backend=%q,role=%q}`, route, b, role))
		}
		m.errors[b] = map[backends.Reason]*metrics.Counter{}
		for _, r := range errorReasons {
			m.errors[b][r] = set.GetOrCreateCounter(fmt.Sprintf(
				`tandem_backend_errors_total{route=%q,backend=%q,reason=%q}`, route, b, r))
		}
		m.retries[b] = map[backends.RetryReason]*metrics.Counter{}
		for _, r := range backends.RetryReasons {
			m.retries[b][r] = set.GetOrCreateCounter(fmt.Sprintf(
				`tandem_backend_retries_total{route=%q,backend=%q,reason=%q}`, route, b, r))
		}
	}
	return m
}

// routeAnswers returns route's answer counts, creating them (and their
// tandem_requests_total series) on first use.
func (sm *serverMetrics) routeAnswers(route string) *answerCounts {
	sm.answersMu.Lock()
	defer sm.answersMu.Unlock()
	a := sm.answers[route]
	if a == nil {
		a = new(answerCounts)
		sm.answers[route] = a
		for by := range nServedBy {
			sm.set.NewGauge(fmt.Sprintf(`tandem_requests_total{route=%q,served_by=%q}`, route, servedByNames[by]),
				func() float64 { return float64(a.served(by)) })
		}
	}
	return a
}

func (m *routeMetrics) backendError(backend string, r backends.Reason) {
	if c := m.errors[backend][r]; c != nil {
		c.Inc()
	}
}

func (m *routeMetrics) retry(backend string, r backends.RetryReason) {
	if c := m.retries[backend][r]; c != nil {
		c.Inc()
	}
}
