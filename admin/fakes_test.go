package admin

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/store"
)

// The fakes here stand for what admin consumes (RulesStore, Reports, the
// function fields of Deps) with the semantics their callers rely on:
// versioned compare-and-set, ErrUnknownRoute, validation with every error.

const httpTestToken = "httptest-token-0123456789"

// backendKnown is the backend set of the fakes' routes.
func backendKnown(name string) bool { return name == "legacy" || name == "new" }

// memRules is a RulesStore in memory: If-Match is compared with the
// version, every change is validated with rules.Validate and recorded.
type memRules struct {
	mu      sync.Mutex
	r       rules.Rules
	changes []string // "promote img 25 api reason", ...
	events  []rules.Event
	// eventsAsked records the arguments of Events.
	eventsAsked []string
	// down makes every change fail with rules.ErrUnavailable, as a fleet's
	// store does while its database is unreachable.
	down bool
}

var _ RulesStore = (*memRules)(nil)

func newMemRules() *memRules {
	return &memRules{r: rules.Rules{Version: 1, Routes: []rules.Route{
		{Name: "img", Legacy: "legacy", New: "new", Mirror: 100},
		{Name: "api", Legacy: "legacy", New: "new", Mirror: 100},
	}}}
}

func (m *memRules) Current() rules.Rules {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.r.Clone()
}

func (m *memRules) apply(ifMatch int64, change string, mutate func(*rules.Rules) error) (rules.Rules, error) {
	r, _, err := m.applyChanged(ifMatch, change, mutate)
	return r, err
}

// applyChanged is apply reporting whether the routes changed; an unchanged
// set makes no version and records nothing, as rulestore.State does.
func (m *memRules) applyChanged(ifMatch int64, change string, mutate func(*rules.Rules) error) (rules.Rules, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return rules.Rules{}, false, fmt.Errorf("%w: cannot reach the database", rules.ErrUnavailable)
	}
	if ifMatch != 0 && ifMatch != m.r.Version {
		return rules.Rules{}, false, fmt.Errorf("%w: If-Match is %d, the current version is %d", rules.ErrStale, ifMatch, m.r.Version)
	}
	next := m.r.Clone()
	if err := mutate(&next); err != nil {
		return rules.Rules{}, false, err
	}
	if errs := rules.Validate(next.Routes, backendKnown); len(errs) > 0 {
		return rules.Rules{}, false, &rules.ValidationError{Errs: errs}
	}
	if reflect.DeepEqual(next.Routes, m.r.Routes) {
		return m.r.Clone(), false, nil
	}
	next.Version++
	m.r = next
	m.changes = append(m.changes, change)
	return m.r.Clone(), true, nil
}

func (m *memRules) route(next *rules.Rules, name string) (*rules.Route, error) {
	for i := range next.Routes {
		if next.Routes[i].Name == name {
			return &next.Routes[i], nil
		}
	}
	return nil, fmt.Errorf("%w %q", rules.ErrUnknownRoute, name)
}

func (m *memRules) Update(ifMatch int64, actor, kind, route, reason string, mutate func(*rules.Rules) error) (rules.Rules, error) {
	return m.apply(ifMatch, strings.Join([]string{kind, actor, reason}, " "), mutate)
}

func (m *memRules) Promote(route string, percent float64, actor, reason string) (rules.Rules, bool, error) {
	return m.applyChanged(0, fmt.Sprintf("promote %s %v %s %s", route, percent, actor, reason), rules.SetServeNew(route, percent, nil))
}

func (m *memRules) Rollback(route, actor, reason string) (rules.Rules, bool, error) {
	return m.applyChanged(0, fmt.Sprintf("rollback %s %s %s", route, actor, reason), rules.SetServeNew(route, 0, nil))
}

func (m *memRules) Events(since time.Time, limit int) ([]rules.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.eventsAsked = append(m.eventsAsked, fmt.Sprintf("%s %d", since.Format(time.RFC3339), limit))
	return append([]rules.Event{}, m.events...), nil
}

func (m *memRules) changed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.changes...)
}

// memReports is a Reports that records what it was asked.
type memReports struct {
	mu      sync.Mutex
	asked   []string // "report img 2026-01-02T15:04:05Z", "samples {img $.x 7}"
	samples map[string]*store.Sample
	// comparisons by request id, as Comparisons returns them.
	comparisons map[string][]store.Comparison
	// comparisonsErr is what Comparisons returns as its error.
	comparisonsErr error
	// report is what Report returns (nil: an empty list).
	report []store.RouteReport
}

var _ Reports = (*memReports)(nil)

func (m *memReports) note(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asked = append(m.asked, s)
}

func (m *memReports) Report(route string, since time.Time) ([]store.RouteReport, error) {
	m.note("report " + route + " " + since.Format(time.RFC3339))
	if m.report != nil {
		return m.report, nil
	}
	return []store.RouteReport{}, nil
}

func (m *memReports) Samples(f store.SampleFilter) ([]store.SampleSummary, error) {
	m.note(fmt.Sprintf("samples {%s %s %d}", f.Route, f.Path, f.Limit))
	if !f.Since.IsZero() {
		m.note(fmt.Sprintf("samples {%s %s %d} since %s", f.Route, f.Path, f.Limit, f.Since.Format(time.RFC3339)))
	}
	return []store.SampleSummary{}, nil
}

func (m *memReports) Sample(id string) (*store.Sample, error) {
	m.note("sample " + id)
	if s, ok := m.samples[id]; ok {
		return s, nil
	}
	return nil, store.ErrNotFound
}

func (m *memReports) Comparisons(requestID string) ([]store.Comparison, error) {
	m.note("comparisons " + requestID)
	if m.comparisonsErr != nil {
		return nil, m.comparisonsErr
	}
	return m.comparisons[requestID], nil
}

func (m *memReports) Series(route string, since time.Time, step time.Duration) ([]store.RouteSeries, error) {
	m.note("series " + route + " " + since.Format(time.RFC3339) + " " + step.String())
	return []store.RouteSeries{}, nil
}

func (m *memReports) lastAsked() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.asked) == 0 {
		return ""
	}
	return m.asked[len(m.asked)-1]
}

// fixture is an admin Server over the fakes.
type fixture struct {
	srv     *Server
	rules   *memRules
	reports *memReports
	noise   []string // "route path reason" of every MarkNoise
	// noiseErr is what MarkNoise returns.
	noiseErr error
}

func newFixture() *fixture {
	f := &fixture{rules: newMemRules(), reports: &memReports{samples: map[string]*store.Sample{
		"s1": {ID: "s1", Route: "img"},
	}}}
	f.srv = New(Deps{
		Token: httpTestToken,
		Rules: f.rules,
		ParseRules: func(b []byte) (rules.Rules, []error) {
			return rules.ParseRulesFor(b, backendKnown)
		},
		Reports: f.reports,
		Routes: func() []RouteStatus {
			return []RouteStatus{{Name: "img", Legacy: "legacy", New: "new"}}
		},
		MarkNoise: func(route, path, reason string) error {
			if f.noiseErr != nil {
				return f.noiseErr
			}
			f.noise = append(f.noise, route+" "+path+" "+reason)
			return nil
		},
	})
	return f
}

// req builds a request with the token and a JSON Content-Type; hdr are
// name, value pairs that override them ("" value deletes).
func req(method, target, body string, hdr ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.Header.Set("Authorization", "Bearer "+httpTestToken)
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			r.Header.Del(hdr[i])
		} else {
			r.Header.Set(hdr[i], hdr[i+1])
		}
	}
	return r
}

// do serves r and returns the answer.
func do(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// expect checks status and that the body holds every want.
func expect(t *testing.T, why string, w *httptest.ResponseRecorder, status int, want ...string) {
	t.Helper()
	if w.Code != status {
		t.Errorf("%s: status %d, want %d; body %.300s", why, w.Code, status, w.Body.String())
		return
	}
	for _, s := range want {
		if !strings.Contains(w.Body.String(), s) {
			t.Errorf("%s: body %.300s lacks %q", why, w.Body.String(), s)
		}
	}
}
