package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/store"
	"github.com/valyala/fasthttp"
)

// RulesStore is the versioned rules state (rulestore.State).
type RulesStore interface {
	Current() rules.Rules
	Update(ifMatch int64, actor, kind, route, reason string, mutate func(*rules.Rules) error) (rules.Rules, error)
	Promote(route string, percent float64, actor, reason string) (rules.Rules, error)
	Rollback(route, actor, reason string) (rules.Rules, error)
	Events(since time.Time, limit int) ([]rules.Event, error)
}

// Reports reads the diff store (store.Store).
type Reports interface {
	Report(route string, since time.Time) ([]store.RouteReport, error)
	Samples(store.SampleFilter) ([]store.SampleSummary, error)
	Sample(id string) (*store.Sample, error)
}

// RouteStatus is one route's live state for GET /api/v1/routes. The counts
// are the proxy's since it started, with the meaning of the report's fields
// of the same names (store.RouteReport): Requests is every answer the
// route's clients got, ServedLegacy + ServedNew + ServedTandem, and is never
// below Mirrored.
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
	Ramp         any                `json:"ramp,omitempty"`
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
	// MarkNoise marks a JSON/diff path as noise for a route (persisted).
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
}

// BadRequestError marks an error caused by the request (answered 400).
type BadRequestError struct{ Err error }

func (e *BadRequestError) Error() string { return e.Err.Error() }
func (e *BadRequestError) Unwrap() error { return e.Err }

// apiError is the JSON error body of every refused API call.
type apiError struct {
	Error  string   `json:"error"`
	Errors []string `json:"errors,omitempty"`
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	enc := json.NewEncoder(ctx)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		ctx.ResetBody()
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		fmt.Fprintf(ctx, `{"error":"cannot encode response"}`)
	}
}

func fail(ctx *fasthttp.RequestCtx, status int, format string, args ...any) {
	writeJSON(ctx, status, apiError{Error: fmt.Sprintf(format, args...)})
}

// serveAPI dispatches /api/v1/... after authentication.
func (s *Server) serveAPI(ctx *fasthttp.RequestCtx, path string) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(path, "/api/v1"), "/"), "/")
	method := string(ctx.Method())
	get := func(h func(*fasthttp.RequestCtx)) {
		if method != "GET" && method != "HEAD" {
			ctx.Response.Header.Set("Allow", "GET")
			fail(ctx, fasthttp.StatusMethodNotAllowed, "%s is not allowed here; use GET", method)
			return
		}
		h(ctx)
	}
	mutate := func(allowed string, h func(*fasthttp.RequestCtx)) {
		if !strings.Contains(allowed, method) {
			ctx.Response.Header.Set("Allow", allowed)
			fail(ctx, fasthttp.StatusMethodNotAllowed, "%s is not allowed here; use %s", method, allowed)
			return
		}
		ct := string(ctx.Request.Header.ContentType())
		if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
			fail(ctx, fasthttp.StatusUnsupportedMediaType, "Content-Type must be application/json, not %q", ct)
			return
		}
		// Bodies over fasthttp's DefaultMaxRequestBodySize (4 MiB; the admin
		// server sets no other) were refused with 413 before this handler.
		if err := checkJSON(ctx.PostBody()); err != nil {
			fail(ctx, fasthttp.StatusBadRequest, "invalid JSON body: %v", err)
			return
		}
		h(ctx)
	}
	switch {
	case len(parts) == 1 && parts[0] == "routes":
		get(s.getRoutes)
	case len(parts) == 1 && parts[0] == "rules":
		if method == "PUT" || method == "POST" {
			mutate("PUT", s.putRules)
		} else {
			get(s.getRules)
		}
	case len(parts) == 3 && parts[0] == "routes" && parts[2] == "promote":
		mutate("POST", func(ctx *fasthttp.RequestCtx) { s.promote(ctx, parts[1]) })
	case len(parts) == 3 && parts[0] == "routes" && parts[2] == "rollback":
		mutate("POST", func(ctx *fasthttp.RequestCtx) { s.rollback(ctx, parts[1]) })
	case len(parts) == 3 && parts[0] == "routes" && parts[2] == "noise":
		mutate("POST", func(ctx *fasthttp.RequestCtx) { s.noise(ctx, parts[1]) })
	case len(parts) == 1 && parts[0] == "report":
		get(s.getReport)
	case len(parts) == 1 && parts[0] == "diffs":
		get(s.getDiffs)
	case len(parts) == 2 && parts[0] == "diffs":
		get(func(ctx *fasthttp.RequestCtx) { s.getDiff(ctx, parts[1]) })
	case len(parts) == 4 && parts[0] == "diffs" && parts[2] == "body":
		get(func(ctx *fasthttp.RequestCtx) { s.getDiffBody(ctx, parts[1], parts[3]) })
	case len(parts) == 3 && parts[0] == "diffs" && parts[2] == "heatmap.png":
		get(func(ctx *fasthttp.RequestCtx) { s.getHeatMap(ctx, parts[1]) })
	case len(parts) == 1 && parts[0] == "events":
		get(s.getEvents)
	default:
		fail(ctx, fasthttp.StatusNotFound, "no such endpoint: %s", path)
	}
}

func (s *Server) actor(ctx *fasthttp.RequestCtx) string {
	if string(ctx.Request.Header.Peek("X-Tandem-Actor")) == "cli" {
		return "cli"
	}
	return "api"
}

func (s *Server) getRoutes(ctx *fasthttp.RequestCtx) {
	if s.deps.Routes == nil {
		fail(ctx, fasthttp.StatusServiceUnavailable, "routes are not available")
		return
	}
	writeJSON(ctx, 200, map[string]any{"routes": s.deps.Routes()})
}

func (s *Server) getRules(ctx *fasthttp.RequestCtx) {
	if s.deps.Rules == nil {
		fail(ctx, fasthttp.StatusServiceUnavailable, "rules are not available")
		return
	}
	r := s.deps.Rules.Current()
	ctx.Response.Header.Set("ETag", strconv.FormatInt(r.Version, 10))
	writeJSON(ctx, 200, r)
}

// ifMatch parses If-Match; 0 when absent. Quotes (ETag style) are accepted.
func ifMatch(ctx *fasthttp.RequestCtx) (int64, error) {
	v := strings.Trim(strings.TrimSpace(string(ctx.Request.Header.Peek("If-Match"))), `"`)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("If-Match must be a rules version number, not %q", v)
	}
	return n, nil
}

// answerUpdate maps a rules update's error to a status, or returns the new rules.
func answerUpdate(ctx *fasthttp.RequestCtx, r rules.Rules, err error) {
	var ve *rules.ValidationError
	switch {
	case err == nil:
		ctx.Response.Header.Set("ETag", strconv.FormatInt(r.Version, 10))
		writeJSON(ctx, 200, r)
	case errors.Is(err, rules.ErrStale):
		fail(ctx, fasthttp.StatusConflict, "%v", err)
	case errors.Is(err, rules.ErrUnknownRoute):
		fail(ctx, fasthttp.StatusNotFound, "%v", err)
	case errors.As(err, &ve):
		writeJSON(ctx, fasthttp.StatusBadRequest, apiError{Error: "invalid rules", Errors: errStrings(ve.Errs)})
	default:
		fail(ctx, fasthttp.StatusInternalServerError, "cannot change rules: %v", err)
	}
}

func errStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

func (s *Server) putRules(ctx *fasthttp.RequestCtx) {
	if s.deps.Rules == nil {
		fail(ctx, fasthttp.StatusServiceUnavailable, "rules are not available")
		return
	}
	version, err := ifMatch(ctx)
	if err != nil {
		fail(ctx, fasthttp.StatusBadRequest, "%v", err)
		return
	}
	if version == 0 {
		fail(ctx, fasthttp.StatusPreconditionRequired, "PUT /api/v1/rules needs If-Match: <version> (GET /api/v1/rules gives it)")
		return
	}
	parse := s.deps.ParseRules
	if parse == nil {
		parse = rules.ParseRules
	}
	doc, errs := parse(ctx.PostBody())
	if len(errs) > 0 {
		writeJSON(ctx, fasthttp.StatusBadRequest, apiError{Error: "invalid rules document", Errors: errStrings(errs)})
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(ctx.PostBody(), &body); err != nil {
		fail(ctx, fasthttp.StatusBadRequest, "invalid JSON body: %v", err)
		return
	}
	if !reasonOK(ctx, body.Reason) {
		return
	}
	r, err := s.deps.Rules.Update(version, s.actor(ctx), "replace", "", body.Reason, func(cur *rules.Rules) error {
		cur.Routes = doc.Routes
		return nil
	})
	answerUpdate(ctx, r, err)
}

// decodeBody decodes a small JSON body strictly: no unknown fields (and,
// checked by mutate before, one value with no duplicate keys).
func decodeBody(ctx *fasthttp.RequestCtx, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(ctx, fasthttp.StatusBadRequest, "invalid JSON body: %v", err)
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		fail(ctx, fasthttp.StatusBadRequest, "invalid JSON body: trailing data after the JSON value")
		return false
	}
	return true
}

// reasonOK refuses a "reason" longer than MaxReason bytes (400).
func reasonOK(ctx *fasthttp.RequestCtx, reason string) bool {
	if len(reason) > MaxReason {
		fail(ctx, fasthttp.StatusBadRequest, `"reason" is %d bytes; at most %d are accepted`, len(reason), MaxReason)
		return false
	}
	return true
}

func (s *Server) promote(ctx *fasthttp.RequestCtx, route string) {
	if s.deps.Rules == nil {
		fail(ctx, fasthttp.StatusServiceUnavailable, "rules are not available")
		return
	}
	var body struct {
		Percent *float64 `json:"percent"`
		Reason  string   `json:"reason"`
	}
	if !decodeBody(ctx, &body) || !reasonOK(ctx, body.Reason) {
		return
	}
	if body.Percent == nil {
		fail(ctx, fasthttp.StatusBadRequest, `"percent" is required (0..100)`)
		return
	}
	r, err := s.deps.Rules.Promote(route, *body.Percent, s.actor(ctx), body.Reason)
	answerUpdate(ctx, r, err)
}

func (s *Server) rollback(ctx *fasthttp.RequestCtx, route string) {
	if s.deps.Rules == nil {
		fail(ctx, fasthttp.StatusServiceUnavailable, "rules are not available")
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if !decodeBody(ctx, &body) || !reasonOK(ctx, body.Reason) {
		return
	}
	r, err := s.deps.Rules.Rollback(route, s.actor(ctx), body.Reason)
	answerUpdate(ctx, r, err)
}

func (s *Server) noise(ctx *fasthttp.RequestCtx, route string) {
	if s.deps.MarkNoise == nil || s.deps.Rules == nil {
		fail(ctx, fasthttp.StatusServiceUnavailable, "noise marking is not available")
		return
	}
	var body struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	}
	if !decodeBody(ctx, &body) || !reasonOK(ctx, body.Reason) {
		return
	}
	if !strings.HasPrefix(body.Path, "$") {
		fail(ctx, fasthttp.StatusBadRequest, `"path" must be a diff path such as "$.processed_at"`)
		return
	}
	if !s.routeExists(route) {
		fail(ctx, fasthttp.StatusNotFound, "unknown route %q", route)
		return
	}
	if err := s.deps.MarkNoise(route, body.Path, body.Reason); err != nil {
		var bad *BadRequestError
		if errors.As(err, &bad) {
			fail(ctx, fasthttp.StatusBadRequest, "%v", bad.Err)
			return
		}
		fail(ctx, fasthttp.StatusInternalServerError, "cannot mark noise: %v", err)
		return
	}
	writeJSON(ctx, 200, map[string]string{"route": route, "path": body.Path, "status": "marked as noise"})
}

func (s *Server) routeExists(name string) bool {
	for _, r := range s.deps.Rules.Current().Routes {
		if r.Name == name {
			return true
		}
	}
	return false
}

func (s *Server) since(ctx *fasthttp.RequestCtx) (time.Time, bool) {
	v := string(ctx.QueryArgs().Peek("since"))
	if v == "" {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		fail(ctx, fasthttp.StatusBadRequest, "since must be RFC 3339 (e.g. 2026-01-02T15:04:05Z), not %q", v)
		return time.Time{}, false
	}
	return t, true
}

func (s *Server) getReport(ctx *fasthttp.RequestCtx) {
	if s.deps.Reports == nil {
		fail(ctx, fasthttp.StatusServiceUnavailable, "reports are not available")
		return
	}
	since, ok := s.since(ctx)
	if !ok {
		return
	}
	route := string(ctx.QueryArgs().Peek("route"))
	if route != "" && s.deps.Rules != nil && !s.routeExists(route) {
		fail(ctx, fasthttp.StatusNotFound, "unknown route %q", route)
		return
	}
	reps, err := s.deps.Reports.Report(route, since)
	if err != nil {
		fail(ctx, fasthttp.StatusInternalServerError, "cannot build report: %v", err)
		return
	}
	writeJSON(ctx, 200, map[string]any{"generated_at": time.Now().UTC(), "routes": reps})
}

func (s *Server) getDiffs(ctx *fasthttp.RequestCtx) {
	if s.deps.Reports == nil {
		fail(ctx, fasthttp.StatusServiceUnavailable, "diffs are not available")
		return
	}
	f := store.SampleFilter{
		Route: string(ctx.QueryArgs().Peek("route")),
		Path:  string(ctx.QueryArgs().Peek("path")),
	}
	if v := ctx.QueryArgs().Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n <= 0 || n > 1000 {
			fail(ctx, fasthttp.StatusBadRequest, "limit must be 1..1000, not %q", v)
			return
		}
		f.Limit = n
	}
	if f.Route != "" && s.deps.Rules != nil && !s.routeExists(f.Route) {
		fail(ctx, fasthttp.StatusNotFound, "unknown route %q", f.Route)
		return
	}
	ss, err := s.deps.Reports.Samples(f)
	if err != nil {
		fail(ctx, fasthttp.StatusInternalServerError, "cannot list diffs: %v", err)
		return
	}
	writeJSON(ctx, 200, map[string]any{"diffs": ss})
}

func (s *Server) getDiff(ctx *fasthttp.RequestCtx, id string) {
	if s.deps.Reports == nil {
		fail(ctx, fasthttp.StatusServiceUnavailable, "diffs are not available")
		return
	}
	d, err := s.deps.Reports.Sample(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		fail(ctx, fasthttp.StatusNotFound, "no diff sample %q", id)
	case err != nil:
		fail(ctx, fasthttp.StatusInternalServerError, "cannot read diff: %v", err)
	default:
		writeJSON(ctx, 200, d)
	}
}

func (s *Server) getEvents(ctx *fasthttp.RequestCtx) {
	if s.deps.Rules == nil {
		fail(ctx, fasthttp.StatusServiceUnavailable, "events are not available")
		return
	}
	since, ok := s.since(ctx)
	if !ok {
		return
	}
	limit := 500
	if v := ctx.QueryArgs().Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n <= 0 || n > 10000 {
			fail(ctx, fasthttp.StatusBadRequest, "limit must be 1..10000, not %q", v)
			return
		}
		limit = n
	}
	evs, err := s.deps.Rules.Events(since, limit)
	if err != nil {
		fail(ctx, fasthttp.StatusInternalServerError, "cannot read events: %v", err)
		return
	}
	writeJSON(ctx, 200, map[string]any{"events": evs})
}
