// Package admin serves tandem's admin listener: health and readiness probes,
// Prometheus metrics, and (behind the bearer token) the JSON API, the web
// UI and Go's profiles.
//
// What it owns: the HTTP surface of DESIGN.md "Admin API" — every endpoint
// is one line of the table in routes.go, a Go ServeMux method+path pattern
// ("POST /api/v1/routes/{name}/promote"), so a path that exists with another
// method gets 405 with Allow from the mux; the token check (token.go), the
// strict JSON bodies of mutations (jsonbody.go), the mapping of the deps'
// errors to statuses (answerUpdate), the UI's embedded files and the body
// and heat-map views of diff samples (ui.go).
//
// What it consumes, declared here and nowhere else: RulesStore (the
// versioned rules), Reports (the diff store's reads) and the function
// fields of Deps. It reads the data plane only through them and never
// touches a proxied request.
//
// The listener is net/http, not fasthttp: it carries a few requests a
// second, and the standard library gives the patterns, 405, pprof and
// httptest; the tests drive Server (an http.Handler) over in-memory fakes.
//
// It must not import config, proxy, backends, ramp or app: the caller
// (app) builds Deps from them.
package admin
