package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// privateEndpoints is every endpoint behind the token (DESIGN.md "Admin
// API"), with a body that would be accepted.
var privateEndpoints = []struct{ method, path, body string }{
	{"GET", "/api/v1/routes", ""},
	{"GET", "/api/v1/rules", ""},
	{"PUT", "/api/v1/rules", `{"routes": [{"name": "img", "legacy": "legacy"}]}`},
	{"POST", "/api/v1/routes/img/promote", `{"percent": 5}`},
	{"POST", "/api/v1/routes/img/rollback", `{"reason": "x"}`},
	{"POST", "/api/v1/routes/img/noise", `{"path": "$.id"}`},
	{"GET", "/api/v1/report", ""},
	{"GET", "/api/v1/diffs", ""},
	{"GET", "/api/v1/diffs/s1", ""},
	{"GET", "/api/v1/diffs/s1/body/legacy", ""},
	{"GET", "/api/v1/diffs/s1/heatmap.png", ""},
	{"GET", "/api/v1/events", ""},
	{"GET", "/api/v1/comparisons?request_id=r1", ""},
	{"GET", "/ui", ""},
	{"GET", "/ui/", ""},
	{"GET", "/ui/app.js", ""},
	{"GET", "/debug/pprof/goroutine?debug=1", ""},
	{"GET", "/debug/pprof/cmdline", ""},
}

// Every private endpoint refuses a missing, wrong, empty or non-Bearer
// token with 401 and changes nothing; the API says so in JSON with
// WWW-Authenticate, the UI with its bootstrap page.
func TestPrivateEndpointsNeedToken(t *testing.T) {
	f := newFixture()
	for _, e := range privateEndpoints {
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Bearer ", "Basic " + httpTestToken, httpTestToken} {
			w := do(f.srv, req(e.method, e.path, e.body, "Authorization", auth, "If-Match", "1"))
			why := e.method + " " + e.path + " with Authorization " + auth
			if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != `Bearer realm="tandem"` {
				t.Errorf("%s: %d %q, want 401 with WWW-Authenticate", why, w.Code, w.Header().Get("WWW-Authenticate"))
				continue
			}
			if isUIPath(strings.SplitN(e.path, "?", 2)[0]) {
				if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || !strings.Contains(w.Body.String(), "<html") {
					t.Errorf("%s: want the bootstrap page, got %q %.100s", why, w.Header().Get("Content-Type"), w.Body.String())
				}
				continue
			}
			var e apiError
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, "bearer token") {
				t.Errorf("%s: body %.200s, want a JSON error about the token", why, w.Body.String())
			}
		}
	}
	if c := f.rules.changed(); len(c) != 0 || len(f.noise) != 0 || len(f.reports.asked) != 0 {
		t.Fatalf("refused calls reached the deps: rules %q, noise %q, reports %q", c, f.noise, f.reports.asked)
	}
	// With the token (the scheme is case-insensitive) each one answers.
	for _, e := range privateEndpoints {
		w := do(f.srv, req(e.method, e.path, e.body, "Authorization", "bearer "+httpTestToken, "If-Match", "1"))
		if w.Code == http.StatusUnauthorized || w.Code == http.StatusNotFound && !strings.Contains(e.path, "heatmap") {
			t.Errorf("%s %s with the token: %d %.200s", e.method, e.path, w.Code, w.Body.String())
		}
	}
}

// With no token configured, nobody gets in (not even with "Bearer ").
func TestNoConfiguredTokenLocksEverything(t *testing.T) {
	s := New(Deps{Rules: newMemRules()})
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		if w := do(s, req("GET", "/api/v1/rules", "", "Authorization", auth)); w.Code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", auth, w.Code)
		}
	}
}

// Unknown paths under the token's prefixes, and known paths with the wrong
// method, get 401 without the token: the API's shape is not shown to
// callers without it. With it they get 404 or 405.
func TestUnknownPrivatePathsNeedToken(t *testing.T) {
	f := newFixture()
	for _, c := range []struct {
		why, method, path string
		withToken         int
		want              string
	}{
		{"unknown API path", "GET", "/api/v1/nope", 404, "no such endpoint: /api/v1/nope"},
		{"unknown API version", "GET", "/api/v2/routes", 404, "no such endpoint"},
		{"too deep", "GET", "/api/v1/routes/img/promote/extra", 404, "no such endpoint"},
		{"unknown UI file", "GET", "/ui/nope.js", 404, "no such endpoint"},
		{"unknown profile (pprof.Index answers)", "GET", "/debug/pprof/nope", 404, "Unknown profile"},
		{"wrong method", "DELETE", "/api/v1/rules", 405, "DELETE is not allowed"},
		{"GET on a mutation", "GET", "/api/v1/routes/img/promote", 405, "use POST"},
	} {
		w := do(f.srv, req(c.method, c.path, "", "Authorization", ""))
		if w.Code != http.StatusUnauthorized || w.Header().Get("Allow") != "" {
			t.Errorf("%s without token: %d Allow %q, want 401 and no Allow", c.why, w.Code, w.Header().Get("Allow"))
		}
		w = do(f.srv, req(c.method, c.path, ""))
		expect(t, c.why+" with token", w, c.withToken, c.want)
	}
}

// The probes and metrics need no token; unknown public paths get a plain
// 404.
func TestPublicEndpoints(t *testing.T) {
	ready := true
	s := New(Deps{Token: httpTestToken, Ready: func() bool { return ready }})
	for _, c := range []struct {
		path, want string
	}{
		{"/healthz", "ok\n"},
		{"/readyz", "ready\n"},
		{"/metrics", ""},
	} {
		w := do(s, req("GET", c.path, "", "Authorization", ""))
		expect(t, c.path, w, http.StatusOK, c.want)
		if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
			t.Errorf("%s: Content-Type %q", c.path, w.Header().Get("Content-Type"))
		}
	}
	ready = false
	expect(t, "readyz when not ready", do(s, req("GET", "/readyz", "")), http.StatusServiceUnavailable, "not ready\n")
	w := do(s, req("GET", "/nope", "", "Authorization", ""))
	expect(t, "unknown public path", w, http.StatusNotFound, "not found\n")
	if w.Header().Get("Server") != "tandem-admin" {
		t.Errorf("Server header %q", w.Header().Get("Server"))
	}
}
