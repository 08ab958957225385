package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/store"
	"net/http"
)

// RulesStore is the versioned rules state (rulestore.State).
type RulesStore interface {
	Current() rules.Rules
	Update(ifMatch int64, actor, kind, route, reason string, mutate func(*rules.Rules) error) (rules.Rules, error)
	// Promote and Rollback report whether the rules changed: false when
	// the route's serve_new already was the percentage asked for.
	Promote(route string, percent float64, actor, reason string) (rules.Rules, bool, error)
	Rollback(route, actor, reason string) (rules.Rules, bool, error)
	Events(since time.Time, limit int) ([]rules.Event, error)
}

// Reports reads the diff store (store.Store).
type Reports interface {
	Report(route string, since time.Time) ([]store.RouteReport, error)
	Samples(store.SampleFilter) ([]store.SampleSummary, error)
	Sample(id string) (*store.Sample, error)
	// Comparisons returns every comparison recorded for a request id,
	// oldest first, with outcomes as the noise model reads them now;
	// empty, not an error, when there are none.
	Comparisons(requestID string) ([]store.Comparison, error)
	// Series sums route's stored minutes from since per bucket of step
	// (one of store.SeriesSteps), noise applied when read; route "" gives
	// every route with data.
	Series(route string, since time.Time, step time.Duration) ([]store.RouteSeries, error)
}

// RouteStatus is one route's live state for GET /api/v1/routes. The counts
// are the proxy's since it started, with the meaning of the report's fields
// of the same names (store.RouteReport): Requests is every answer the
// route's clients got, ServedLegacy + ServedNew + ServedTandem, and is never
// below Mirrored. Matched, Mismatched, Noise and DiffRate are outcomes as
// counted when each comparison was made (like tandem_compare_total);
// ReportDiffRate and ReportCompared are the report's, over all stored data
// with noise applied when read (like tandem_report_diff_rate), as of its
// last refresh (at most about 10 s old).
type RouteStatus struct {
	Name         string             `json:"name"`
	Legacy       string             `json:"legacy"`
	New          string             `json:"new,omitempty"`
	ServeNew     float64            `json:"serve_new"`
	Mirror       float64            `json:"mirror"`
	Sticky       string             `json:"sticky"`
	Breakers     map[string]string  `json:"breakers"`
	Requests     int64              `json:"requests"`
	ServedLegacy int64              `json:"served_legacy"`
	ServedNew    int64              `json:"served_new"`
	ServedTandem int64              `json:"served_tandem"`
	ServedErrors store.ServedCounts `json:"served_errors"`
	Fallback     int64              `json:"fallback"`
	Mirrored     int64              `json:"mirrored"`
	Compared     int64              `json:"compared"`
	Matched      int64              `json:"matched"`
	Mismatched   int64              `json:"mismatched"`
	Noise        int64              `json:"noise"`
	DiffRate     float64            `json:"diff_rate"`
	// ReportDiffRate is GET /api/v1/report's diff_rate of the route over
	// all data, and ReportCompared its compared, as last refreshed.
	ReportDiffRate float64 `json:"report_diff_rate"`
	ReportCompared int64   `json:"report_compared"`
	// Ramp is the route's ramp status, nil without a ramp. The caller
	// gives ramp.Status (this package must not import ramp): steps,
	// current, state, last_decision, and gates, a list of {name, value,
	// bound, lower, limit, samples, min_samples, state, reason}.
	Ramp any `json:"ramp,omitempty"`
}

// Deps are what the API serves. Nil fields disable their endpoints (503).
type Deps struct {
	// Token is the bearer token for /api/ and /ui/. Required.
	Token string
	Rules RulesStore
	// ParseRules decodes a PUT /api/v1/rules document; nil → rules.ParseRules.
	ParseRules func([]byte) (rules.Rules, []error)
	Reports    Reports
	// Routes returns the live route table with counters.
	Routes func() []RouteStatus
	// MarkNoise marks a JSON/diff path as noise for a route, persisted
	// before it takes effect. A *BadRequestError is answered 400, a
	// *NotAppliedError 503 (nothing changed: the mark could not be
	// persisted), any other error 500.
	MarkNoise func(route, path, reason string) error
	// Ready reports readiness for /readyz; nil means ready.
	Ready func() bool
	// DecodeBudget is the decoded-image memory the heat map reserves in, the
	// same budget the proxy's comparisons use. Nil: heat maps are bounded
	// per image by compare.DefaultMaxImagePixels only.
	DecodeBudget *compare.DecodeBudget
	// Metrics is the set /metrics exports, with the process's own metrics
	// (go_*, process_*). Nil: the process's metrics only.
	Metrics *metrics.Set
	// Fleet describes the fleet this instance belongs to; nil when
	// fleet.database is empty: then GET /api/v1/routes has no "fleet",
	// "instance" or "instances" keys, GET /api/v1/instances lists none, and
	// any ?instance= is 404 (errNotAFleet).
	Fleet func() FleetStatus
	// ReportsFor returns the reads narrowed to one instance (?instance=NAME);
	// nil when not a fleet. An error wrapping ErrUnknownInstance is answered
	// 404, any other 500.
	ReportsFor func(instance string) (Reports, error)
}

// BadRequestError marks an error caused by the request (answered 400).
type BadRequestError struct{ Err error }

func (e *BadRequestError) Error() string { return e.Err.Error() }
func (e *BadRequestError) Unwrap() error { return e.Err }

// NotAppliedError marks a change that was refused because it could not be
// persisted (a full or read-only data_dir): nothing changed, the caller may
// retry once the cause is fixed (answered 503).
type NotAppliedError struct{ Err error }

func (e *NotAppliedError) Error() string { return e.Err.Error() }
func (e *NotAppliedError) Unwrap() error { return e.Err }

// MaxRequestID bounds ?request_id= of GET /api/v1/comparisons, in bytes:
// request ids are UUIDs or a client's header value, and the lookup is not
// a place to send a document.
const MaxRequestID = 256

// MaxSeriesPoints bounds the buckets of one route GET /api/v1/series
// answers (a week of minutes): a longer window needs a larger step.
const MaxSeriesPoints = 7 * 24 * 60

// seriesSteps are the accepted ?step= values of GET /api/v1/series.
var seriesSteps = map[string]time.Duration{"1m": time.Minute, "5m": 5 * time.Minute, "15m": 15 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}

// apiError is the JSON error body of every refused API call.
type apiError struct {
	Error  string   `json:"error"`
	Errors []string `json:"errors,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"error":"cannot encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

func fail(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, apiError{Error: fmt.Sprintf(format, args...)})
}

// bodyHandler is a mutating endpoint: it gets the body, checked by mutation.
type bodyHandler func(w http.ResponseWriter, r *http.Request, body []byte)

// mutation checks a mutating call's body before h runs: Content-Type
// application/json (415), at most maxBodySize bytes (413), one JSON value
// with no duplicate keys (400, checkJSON). The method is the mux's: GET on
// a mutating path never gets here (405).
func (s *Server) mutation(h bodyHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
			fail(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json, not %q", ct)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodySize))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			fail(w, http.StatusRequestEntityTooLarge, "body is over %d bytes", tooBig.Limit)
			return
		case err != nil:
			fail(w, http.StatusBadRequest, "cannot read body: %v", err)
			return
		}
		if err := checkJSON(body); err != nil {
			fail(w, http.StatusBadRequest, "invalid JSON body: %v", err)
			return
		}
		h(w, r, body)
	}
}

func actor(r *http.Request) string {
	if r.Header.Get("X-Tandem-Actor") == "cli" {
		return "cli"
	}
	return "api"
}

func (s *Server) getRoutes(w http.ResponseWriter, r *http.Request) {
	if s.deps.Routes == nil {
		fail(w, http.StatusServiceUnavailable, "routes are not available")
		return
	}
	ans := map[string]any{"routes": s.deps.Routes()}
	if s.deps.Fleet != nil {
		fs := s.fleetStatus()
		ans["fleet"], ans["instance"], ans["instances"] = fs.Database, fs.Instance, fs.Instances
	}
	writeJSON(w, http.StatusOK, ans)
}

func (s *Server) getRules(w http.ResponseWriter, r *http.Request) {
	if s.deps.Rules == nil {
		fail(w, http.StatusServiceUnavailable, "rules are not available")
		return
	}
	cur := s.deps.Rules.Current()
	w.Header().Set("ETag", strconv.FormatInt(cur.Version, 10))
	writeJSON(w, http.StatusOK, cur)
}

// ifMatch parses If-Match; 0 when absent. Quotes (ETag style) are accepted.
func ifMatch(r *http.Request) (int64, error) {
	v := strings.Trim(strings.TrimSpace(r.Header.Get("If-Match")), `"`)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("If-Match must be a rules version number, not %q", v)
	}
	return n, nil
}

// answerUpdate maps a rules update's error to a status, or answers the new
// rules.
func answerUpdate(w http.ResponseWriter, r rules.Rules, err error) {
	var ve *rules.ValidationError
	switch {
	case err == nil:
		w.Header().Set("ETag", strconv.FormatInt(r.Version, 10))
		writeJSON(w, http.StatusOK, r)
	case errors.Is(err, rules.ErrStale):
		fail(w, http.StatusConflict, "%v", err)
	case errors.Is(err, rules.ErrUnavailable):
		fail(w, http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, rules.ErrUnknownRoute):
		fail(w, http.StatusNotFound, "%v", err)
	case errors.As(err, &ve):
		writeJSON(w, http.StatusBadRequest, apiError{Error: "invalid rules", Errors: errStrings(ve.Errs)})
	default:
		fail(w, http.StatusInternalServerError, "cannot change rules: %v", err)
	}
}

func errStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

func (s *Server) putRules(w http.ResponseWriter, r *http.Request, body []byte) {
	if s.deps.Rules == nil {
		fail(w, http.StatusServiceUnavailable, "rules are not available")
		return
	}
	version, err := ifMatch(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if version == 0 {
		fail(w, http.StatusPreconditionRequired, "PUT /api/v1/rules needs If-Match: <version> (GET /api/v1/rules gives it)")
		return
	}
	parse := s.deps.ParseRules
	if parse == nil {
		parse = rules.ParseRules
	}
	doc, errs := parse(body)
	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "invalid rules document", Errors: errStrings(errs)})
		return
	}
	var b struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		fail(w, http.StatusBadRequest, "invalid JSON body: %v", err)
		return
	}
	if !reasonOK(w, b.Reason) {
		return
	}
	cur, err := s.deps.Rules.Update(version, actor(r), "replace", "", b.Reason, func(cur *rules.Rules) error {
		cur.Routes = doc.Routes
		return nil
	})
	answerUpdate(w, cur, err)
}

// decodeBody decodes a small JSON body strictly: no unknown fields (and,
// checked by mutation before, one value with no duplicate keys).
func decodeBody(w http.ResponseWriter, body []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "invalid JSON body: %v", err)
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		fail(w, http.StatusBadRequest, "invalid JSON body: trailing data after the JSON value")
		return false
	}
	return true
}

// reasonOK refuses a "reason" longer than MaxReason bytes (400).
func reasonOK(w http.ResponseWriter, reason string) bool {
	if len(reason) > MaxReason {
		fail(w, http.StatusBadRequest, `"reason" is %d bytes; at most %d are accepted`, len(reason), MaxReason)
		return false
	}
	return true
}

func (s *Server) promote(w http.ResponseWriter, r *http.Request, body []byte) {
	if s.deps.Rules == nil {
		fail(w, http.StatusServiceUnavailable, "rules are not available")
		return
	}
	var b struct {
		Percent *float64 `json:"percent"`
		Reason  string   `json:"reason"`
	}
	if !decodeBody(w, body, &b) || !reasonOK(w, b.Reason) {
		return
	}
	if b.Percent == nil {
		fail(w, http.StatusBadRequest, `"percent" is required (0..100)`)
		return
	}
	cur, changed, err := s.deps.Rules.Promote(r.PathValue("name"), *b.Percent, actor(r), b.Reason)
	answerChange(w, cur, changed, err)
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request, body []byte) {
	if s.deps.Rules == nil {
		fail(w, http.StatusServiceUnavailable, "rules are not available")
		return
	}
	var b struct {
		Reason string `json:"reason"`
	}
	if !decodeBody(w, body, &b) || !reasonOK(w, b.Reason) {
		return
	}
	cur, changed, err := s.deps.Rules.Rollback(r.PathValue("name"), actor(r), b.Reason)
	answerChange(w, cur, changed, err)
}

// changeAnswer is the answer to promote and rollback: the rules as they
// now stand, and whether this call changed them (false: the route already
// was at that percentage; no version was made and no event written).
type changeAnswer struct {
	rules.Rules
	Changed bool `json:"changed"`
}

// answerChange is answerUpdate for promote and rollback.
func answerChange(w http.ResponseWriter, r rules.Rules, changed bool, err error) {
	if err != nil {
		answerUpdate(w, r, err)
		return
	}
	w.Header().Set("ETag", strconv.FormatInt(r.Version, 10))
	writeJSON(w, http.StatusOK, changeAnswer{Rules: r, Changed: changed})
}

func (s *Server) noise(w http.ResponseWriter, r *http.Request, body []byte) {
	if s.deps.MarkNoise == nil || s.deps.Rules == nil {
		fail(w, http.StatusServiceUnavailable, "noise marking is not available")
		return
	}
	var b struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	}
	if !decodeBody(w, body, &b) || !reasonOK(w, b.Reason) {
		return
	}
	if !strings.HasPrefix(b.Path, "$") {
		fail(w, http.StatusBadRequest, `"path" must be a diff path such as "$.processed_at"`)
		return
	}
	route := r.PathValue("name")
	if !s.routeExists(route) {
		fail(w, http.StatusNotFound, "unknown route %q", route)
		return
	}
	if err := s.deps.MarkNoise(route, b.Path, b.Reason); err != nil {
		var bad *BadRequestError
		var notApplied *NotAppliedError
		switch {
		case errors.As(err, &bad):
			fail(w, http.StatusBadRequest, "%v", bad.Err)
		case errors.As(err, &notApplied):
			fail(w, http.StatusServiceUnavailable, "the noise mark was not applied (nothing changed): %v", notApplied.Err)
		default:
			fail(w, http.StatusInternalServerError, "cannot mark noise: %v", err)
		}
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"route": route, "path": b.Path, "status": "marked as noise"})
}

// knownRoute answers 404 for a route the rules do not have; "" (every
// route) and a server without rules pass.
func (s *Server) knownRoute(w http.ResponseWriter, route string) bool {
	if route != "" && s.deps.Rules != nil && !s.routeExists(route) {
		fail(w, http.StatusNotFound, "unknown route %q", route)
		return false
	}
	return true
}

func (s *Server) routeExists(name string) bool {
	for _, r := range s.deps.Rules.Current().Routes {
		if r.Name == name {
			return true
		}
	}
	return false
}

// query parses r's query string; a malformed one is answered 400 (Go's
// URL.Query would drop the bad pairs silently, so "?limit=%zz" would list
// the default number).
func query(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		fail(w, http.StatusBadRequest, "cannot parse the query string: %v", err)
		return nil, false
	}
	return q, true
}

// since parses ?since=; the zero time when absent.
func since(w http.ResponseWriter, q url.Values) (time.Time, bool) {
	v := q.Get("since")
	if v == "" {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		fail(w, http.StatusBadRequest, "since must be RFC 3339 (e.g. 2026-01-02T15:04:05Z), not %q", v)
		return time.Time{}, false
	}
	return t, true
}

// limit parses ?limit= in 1..most; def when absent.
func limit(w http.ResponseWriter, q url.Values, def, most int) (int, bool) {
	v := q.Get("limit")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > most {
		fail(w, http.StatusBadRequest, "limit must be 1..%d, not %q", most, v)
		return 0, false
	}
	return n, true
}

func (s *Server) getReport(w http.ResponseWriter, r *http.Request) {
	if s.deps.Reports == nil {
		fail(w, http.StatusServiceUnavailable, "reports are not available")
		return
	}
	q, ok := query(w, r)
	if !ok {
		return
	}
	t, ok := since(w, q)
	if !ok {
		return
	}
	route := q.Get("route")
	if !s.knownRoute(w, route) {
		return
	}
	from, inst, ok := s.reportsFor(w, q)
	if !ok {
		return
	}
	reps, err := from.Report(route, t)
	if err != nil {
		fail(w, http.StatusInternalServerError, "cannot build report: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, narrowed(map[string]any{"generated_at": time.Now().UTC(), "routes": reps}, inst))
}

func (s *Server) getDiffs(w http.ResponseWriter, r *http.Request) {
	if s.deps.Reports == nil {
		fail(w, http.StatusServiceUnavailable, "diffs are not available")
		return
	}
	q, ok := query(w, r)
	if !ok {
		return
	}
	f := store.SampleFilter{Route: q.Get("route"), Path: q.Get("path")}
	if f.Since, ok = since(w, q); !ok {
		return
	}
	// 0 (absent) leaves the store's default.
	if f.Limit, ok = limit(w, q, 0, 1000); !ok {
		return
	}
	if !s.knownRoute(w, f.Route) {
		return
	}
	from, inst, ok := s.reportsFor(w, q)
	if !ok {
		return
	}
	ss, err := from.Samples(f)
	if err != nil {
		fail(w, http.StatusInternalServerError, "cannot list diffs: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, narrowed(map[string]any{"diffs": ss}, inst))
}

func (s *Server) getDiff(w http.ResponseWriter, r *http.Request) {
	if d := s.sample(w, r.PathValue("id")); d != nil {
		writeJSON(w, http.StatusOK, d)
	}
}

// sample reads one diff sample, answering the error itself; nil when it
// did.
func (s *Server) sample(w http.ResponseWriter, id string) *store.Sample {
	if s.deps.Reports == nil {
		fail(w, http.StatusServiceUnavailable, "diffs are not available")
		return nil
	}
	d, err := s.deps.Reports.Sample(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		fail(w, http.StatusNotFound, "no diff sample %q", id)
		return nil
	case err != nil:
		fail(w, http.StatusInternalServerError, "cannot read diff: %v", err)
		return nil
	}
	return d
}

func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	if s.deps.Rules == nil {
		fail(w, http.StatusServiceUnavailable, "events are not available")
		return
	}
	q, ok := query(w, r)
	if !ok {
		return
	}
	t, ok := since(w, q)
	if !ok {
		return
	}
	n, ok := limit(w, q, 500, 10000)
	if !ok {
		return
	}
	evs, err := s.deps.Rules.Events(t, n)
	if err != nil {
		fail(w, http.StatusInternalServerError, "cannot read events: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
}

// getComparisons answers GET /api/v1/comparisons?request_id=ID: every
// comparison made for that request, as the store reads it now. The id is
// required, given once, and at most MaxRequestID bytes (400 otherwise); an
// id nobody knows gets 200 with an empty list (the request may not have
// been mirrored, or its records have expired).
func (s *Server) getComparisons(w http.ResponseWriter, r *http.Request) {
	if s.deps.Reports == nil {
		fail(w, http.StatusServiceUnavailable, "comparisons are not available")
		return
	}
	q, ok := query(w, r)
	if !ok {
		return
	}
	ids := q["request_id"]
	switch {
	case len(ids) == 0:
		fail(w, http.StatusBadRequest, "request_id is required: GET /api/v1/comparisons?request_id=ID")
		return
	case len(ids) > 1:
		fail(w, http.StatusBadRequest, "request_id is given %d times; give it once", len(ids))
		return
	case ids[0] == "":
		fail(w, http.StatusBadRequest, "request_id is empty: give the X-Request-Id of the request to look up")
		return
	case len(ids[0]) > MaxRequestID:
		fail(w, http.StatusBadRequest, "request_id is %d bytes; at most %d are accepted", len(ids[0]), MaxRequestID)
		return
	}
	id := ids[0]
	from, inst, ok := s.reportsFor(w, q)
	if !ok {
		return
	}
	cs, err := from.Comparisons(id)
	if err != nil {
		fail(w, http.StatusInternalServerError, "cannot read the comparisons of request %q: %v", id, err)
		return
	}
	if cs == nil {
		cs = []store.Comparison{}
	}
	writeJSON(w, http.StatusOK, narrowed(map[string]any{"request_id": id, "comparisons": cs}, inst))
}

// getSeries answers GET /api/v1/series?route=R&since=T&step=S: per bucket
// of S (1m, 5m, 15m, 1h, 1d; default 1m) from the minute containing T
// (RFC 3339; absent: all data), each route's requests, comparisons, diff
// rate as read now, errors and p99 per side. Every parameter is checked: an
// unknown or repeated one, a bad value, or a window of more than
// MaxSeriesPoints buckets is 400 naming it.
func (s *Server) getSeries(w http.ResponseWriter, r *http.Request) {
	if s.deps.Reports == nil {
		fail(w, http.StatusServiceUnavailable, "series are not available")
		return
	}
	q, ok := query(w, r)
	if !ok {
		return
	}
	for k, v := range q {
		switch {
		case k != "route" && k != "since" && k != "step" && k != "instance":
			fail(w, http.StatusBadRequest, "unknown parameter %q: GET /api/v1/series takes route, since, step and instance", k)
			return
		case len(v) > 1:
			fail(w, http.StatusBadRequest, "%s is given %d times; give it once", k, len(v))
			return
		}
	}
	t, ok := since(w, q)
	if !ok {
		return
	}
	stepText := q.Get("step")
	if stepText == "" {
		stepText = "1m"
	}
	step, known := seriesSteps[stepText]
	if !known {
		fail(w, http.StatusBadRequest, "step must be one of 1m, 5m, 15m, 1h, 1d, not %q", stepText)
		return
	}
	now := time.Now()
	if !t.IsZero() {
		if t.After(now) {
			fail(w, http.StatusBadRequest, "since %s is in the future", t.Format(time.RFC3339))
			return
		}
		if n := now.Sub(t)/step + 1; n > MaxSeriesPoints {
			fail(w, http.StatusBadRequest, "since %s with step %s is %d buckets; at most %d are answered: use a larger step", t.Format(time.RFC3339), stepText, n, MaxSeriesPoints)
			return
		}
	}
	route := q.Get("route")
	if !s.knownRoute(w, route) {
		return
	}
	from, inst, ok := s.reportsFor(w, q)
	if !ok {
		return
	}
	ss, err := from.Series(route, t, step)
	if err != nil {
		fail(w, http.StatusInternalServerError, "cannot build the series: %v", err)
		return
	}
	for _, rs := range ss {
		if len(rs.Points) > MaxSeriesPoints {
			fail(w, http.StatusBadRequest, "route %s has %d buckets of %s since its first data; at most %d are answered: give since or a larger step", rs.Route, len(rs.Points), stepText, MaxSeriesPoints)
			return
		}
	}
	writeJSON(w, http.StatusOK, narrowed(map[string]any{"generated_at": now.UTC(), "since": t.UTC(), "step": stepText, "routes": ss}, inst))
}
