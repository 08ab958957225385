package admin

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// routes is every endpoint of the admin listener (DESIGN.md "Admin API").
// A GET pattern also takes HEAD. A path that exists with another method
// gets 405 with Allow from the mux; one that does not, 404 (noEndpoint).
// private endpoints need the bearer token; mutation ones also need a JSON
// body (415, 413, 400 before the handler runs).
func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	pub := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, h) }
	priv := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, s.private(h)) }
	mut := func(pattern string, h bodyHandler) { m.Handle(pattern, s.private(s.mutation(h))) }

	pub("GET /healthz", s.healthz)
	pub("GET /readyz", s.readyz)
	pub("GET /metrics", s.metrics)

	priv("GET /api/v1/routes", s.getRoutes)
	priv("GET /api/v1/rules", s.getRules)
	mut("PUT /api/v1/rules", s.putRules)
	mut("POST /api/v1/routes/{name}/promote", s.promote)
	mut("POST /api/v1/routes/{name}/rollback", s.rollback)
	mut("POST /api/v1/routes/{name}/noise", s.noise)
	priv("GET /api/v1/report", s.getReport)
	priv("GET /api/v1/diffs", s.getDiffs)
	priv("GET /api/v1/diffs/{id}", s.getDiff)
	priv("GET /api/v1/diffs/{id}/body/{side}", s.getDiffBody)
	priv("GET /api/v1/diffs/{id}/heatmap.png", s.getHeatMap)
	priv("GET /api/v1/events", s.getEvents)
	priv("GET /api/v1/comparisons", s.getComparisons)
	priv("GET /api/v1/series", s.getSeries)
	priv("GET /api/v1/instances", s.getInstances)

	// Sign-in, session and sign-out check their callers themselves.
	pub("POST /ui/session", s.signIn)
	pub("GET /ui/session", s.sessionStatus)
	pub("DELETE /ui/session", s.signOut)
	priv("GET /ui", s.uiPage)
	priv("GET /ui/{$}", s.uiPage)
	priv("GET /ui/index.html", s.uiPage)
	for path := range uiAssets {
		priv("GET "+path, s.uiAsset)
	}

	// Go's profiles (CPU, heap, allocs, goroutines), for operators chasing
	// CPU or memory; behind the token like the API. Index serves the named
	// profiles (/debug/pprof/heap, ...) too.
	priv("GET /debug/pprof/", pprof.Index)
	priv("GET /debug/pprof/cmdline", pprof.Cmdline)
	priv("GET /debug/pprof/profile", pprof.Profile)
	priv("GET /debug/pprof/symbol", pprof.Symbol)
	priv("POST /debug/pprof/symbol", pprof.Symbol)
	priv("GET /debug/pprof/trace", pprof.Trace)
	return m
}

// isPrivatePath reports whether path is under a prefix that needs the
// token: /api/, the UI, /debug/pprof/.
func isPrivatePath(path string) bool {
	return strings.HasPrefix(path, "/api/") || isUIPath(path) || strings.HasPrefix(path, "/debug/pprof/")
}

// authorized reports whether r carries the bearer token or the cookie of a
// live session (session.go). No token configured means no one is.
func (s *Server) authorized(r *http.Request) bool {
	return s.authenticate(r) != authNone
}

// private wraps an endpoint that needs the token or a session. A request
// authorized by the session cookie must also pass cookieAllowed (403).
func (s *Server) private(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch s.authenticate(r) {
		case authNone:
			s.unauthorized(w, r)
			return
		case authCookie:
			if err := s.cookieAllowed(r); err != nil {
				s.crossOrigin(w, r, err)
				return
			}
		}
		h(w, r)
	})
}

// unauthorized answers 401: the UI's bootstrap page (which asks for the
// token) under /ui, a JSON error elsewhere. A session cookie that names no
// live session is deleted.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	s.clearStaleCookie(w, r)
	if isUIPath(r.URL.Path) {
		uiUnauthorized(w)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="tandem"`)
	if _, err := r.Cookie(SessionCookie); err == nil && r.Header.Get("Authorization") == "" {
		fail(w, http.StatusUnauthorized, "the UI session has ended (signed out, expired or tandem restarted), and no bearer token was sent")
		return
	}
	fail(w, http.StatusUnauthorized, "missing or wrong bearer token")
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	plain(w, http.StatusOK, "ok\n")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.deps.Ready != nil && !s.deps.Ready() {
		plain(w, http.StatusServiceUnavailable, "not ready\n")
		return
	}
	plain(w, http.StatusOK, "ready\n")
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if s.deps.Metrics != nil {
		s.deps.Metrics.WritePrometheus(w)
	}
	metrics.WriteProcessMetrics(w)
}
