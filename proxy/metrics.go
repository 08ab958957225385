package proxy

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/compare"
)

// Shadow outcomes: the closed label set of tandem_shadow_total{outcome}.
const (
	OutcomeSent        = "sent"
	OutcomeSampling    = "sampling"
	OutcomeQueueFull   = "queue_full"
	OutcomeBreakerOpen = "breaker_open"
	OutcomeTooLarge    = "too_large"
	OutcomeSpoolFull   = "spool_full"
	OutcomeError       = "error"
)

var shadowOutcomes = []string{OutcomeSent, OutcomeSampling, OutcomeQueueFull, OutcomeBreakerOpen, OutcomeTooLarge, OutcomeSpoolFull, OutcomeError}

var compareResults = []compare.Outcome{compare.OutcomeMatch, compare.OutcomeMismatch, compare.OutcomeNoise, compare.OutcomeError}

var mismatchKinds = []compare.Kind{compare.KindStatus, compare.KindHeader, compare.KindJSON, compare.KindImage, compare.KindBody}

var errorReasons = []backends.Reason{backends.ReasonConnect, backends.ReasonTimeout, backends.ReasonReset, backends.ReasonProtocol, backends.ReasonStatus, backends.ReasonBusy}

// client errors answered by tandem itself, by status.
var clientErrorStatuses = []int{400, 404, 408, 413, 431, 502, 504}

// serverMetrics are one Server's metrics. Each Server has its own
// metrics.Set, registered for /metrics while the server lives, so that two
// servers in one process (tests) never share counters.
type serverMetrics struct {
	set          *metrics.Set
	clientErrors map[int]*metrics.Counter
	abandoned    *metrics.Counter
}

func newServerMetrics(s *Server) *serverMetrics {
	set := metrics.NewSet()
	m := &serverMetrics{set: set, clientErrors: map[int]*metrics.Counter{}}
	for _, st := range clientErrorStatuses {
		m.clientErrors[st] = set.NewCounter(fmt.Sprintf(`tandem_client_errors_total{status="%d"}`, st))
	}
	m.abandoned = set.NewCounter("tandem_shadow_abandoned_total")
	set.NewGauge("tandem_shadow_in_flight", func() float64 { return float64(s.busy.Load()) })
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
	servedLegacy, servedNew, fallback *metrics.Counter
	shadow                            map[string]*metrics.Counter
	compare                           map[compare.Outcome]*metrics.Counter
	mismatch                          map[compare.Kind]*metrics.Counter
	// per backend name → role → histogram
	duration map[string]map[backends.Role]*metrics.PrometheusHistogram
	errors   map[string]map[backends.Reason]*metrics.Counter
	retries  map[string]map[backends.RetryReason]*metrics.Counter
}

func newRouteMetrics(set *metrics.Set, route string, backendNames []string) *routeMetrics {
	m := &routeMetrics{
		servedLegacy: set.GetOrCreateCounter(fmt.Sprintf(`tandem_requests_total{route=%q,served_by="legacy"}`, route)),
		servedNew:    set.GetOrCreateCounter(fmt.Sprintf(`tandem_requests_total{route=%q,served_by="new"}`, route)),
		fallback:     set.GetOrCreateCounter(fmt.Sprintf(`tandem_fallback_total{route=%q}`, route)),
		shadow:       map[string]*metrics.Counter{},
		compare:      map[compare.Outcome]*metrics.Counter{},
		mismatch:     map[compare.Kind]*metrics.Counter{},
		duration:     map[string]map[backends.Role]*metrics.PrometheusHistogram{},
		errors:       map[string]map[backends.Reason]*metrics.Counter{},
		retries:      map[string]map[backends.RetryReason]*metrics.Counter{},
	}
	for _, o := range shadowOutcomes {
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
