// Package admin serves tandem's admin listener: health and readiness probes,
// Prometheus metrics, and (behind the bearer token) the JSON API, the web
// UI and Go's profiles.
//
// What it owns: the HTTP surface of DESIGN.md "Admin API" — every endpoint
// is one line of the table in routes.go, a Go ServeMux method+path pattern
// ("POST /api/v1/routes/{name}/promote"), so a path that exists with another
// method gets 405 with Allow from the mux; the token check (token.go), the
// strict JSON bodies of mutations (jsonbody.go), the mapping of the deps'
// errors to statuses (answerUpdate; for a noise mark BadRequestError → 400,
// NotAppliedError → 503: not persisted, so not applied), the UI's embedded
// files and the body and heat-map views of diff samples (ui.go).
//
// GET /api/v1/comparisons?request_id=ID is the per-request lookup: the
// id is required, given once and at most MaxRequestID bytes (else 400 with
// a JSON error; the proxy itself keeps client ids of up to 128 bytes), an
// id with no comparisons gets 200 and an empty list, and the answer is
// what Reports.Comparisons reads now — outcomes and noise flags from the
// noise model as it stands, not as it stood when the comparison was made.
//
// GET /api/v1/series is the trend the UI draws: Reports.Series per bucket
// of ?step= (1m, 5m, 15m, 1h, 1d) from ?since=; its query is strict (an
// unknown or repeated parameter, a bad value or a window of more than
// MaxSeriesPoints buckets is 400 naming it).
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
