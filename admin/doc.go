// Package admin serves tandem's admin listener: health and readiness probes,
// Prometheus metrics, and (behind the bearer token) the JSON API, the web
// UI and Go's profiles.
//
// What it owns: the HTTP surface of DESIGN.md "Admin API" — every endpoint
// is one line of the table in routes.go, a Go ServeMux method+path pattern
// ("POST /api/v1/routes/{name}/promote"), so a path that exists with another
// method gets 405 with Allow from the mux; the token check (token.go), the
// UI's browser sessions and the same-origin rule for them (session.go), the
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
// Fleet. With Deps.Fleet set (fleet.database), GET /api/v1/routes also
// answers "fleet" ("ok" or "degraded"), "instance" and "instances", and GET
// /api/v1/instances the same three; Deps.Reports are the fleet's reads, and
// ?instance=NAME on report, diffs, comparisons and series answers from
// Deps.ReportsFor(NAME) instead (reportsFor, fleet.go): empty or repeated
// is 400, an error wrapping ErrUnknownInstance 404. Without a fleet every
// ?instance= is 404 "not a fleet": the reads without it are this
// instance's already, and it has no name any store knows. A sample by id
// needs no ?instance=: ids are the fleet's.
//
// Sessions. The UI's sign-in page posts the token to POST /ui/session
// once per browser; a right token (compared in constant time, length
// included; after signInBurst wrong ones, one more every
// signInEvery, 429 meanwhile) starts a session: a random 256-bit id in an
// HttpOnly, SameSite=Strict, Path=/ cookie, Secure when the request came
// over TLS (or the browser's Origin or X-Forwarded-Proto says https: they
// can only add Secure). The API takes that cookie as it takes the bearer
// token, with a same-origin rule (below). A session ends SessionIdle (12 h)
// after its last use, SessionLifetime (7 d) after sign-in, at sign-out
// (DELETE /ui/session: the id is forgotten, so a replayed cookie gets 401)
// or at restart; at most MaxSessions (1024) are held, a sign-in past that
// ends the least recently used. Expired sessions are dropped when met:
// there is no goroutine.
//
// Why ids held in memory and not a cookie signed with a key derived from
// the token (stateless, surviving restarts and shared by instances that
// share the token): sign-out must end the session on the server, and a
// signed cookie cannot be taken back without a list of revoked ones, which
// is again state in one process — with the worse failure that a restart
// forgets the list and brings signed-out cookies back to life, where
// losing the sessions only asks for the token again. Idle expiry, too, is
// exact only when the server sees every use. Restarts: every browser signs
// in again (one paste). Token rotation: the token is read at start, so a
// new token means a restart, which ends every session. Several instances
// behind one host name, later: a session is good on the instance that
// issued it, so the admin host name needs sticky routing, or each instance
// its own admin address (as Prometheus scrapes them anyway), until a
// shared session store is worth adding; sessionStore is the one place to
// change. The cookie carries nothing but the id, so there is nothing to
// forge or to keep secret but the id itself.
//
// Same origin. Cookies are sent by the browser whichever page asks:
// SameSite=Strict keeps them off requests from other sites, but a page on
// another port of the same host is the same site. So with the cookie (and
// no bearer token) every POST, PUT and DELETE must come from the UI's own
// origin: net/http's CrossOriginProtection.Check (Sec-Fetch-Site
// same-origin or none, else an Origin whose host:port is the Host) — used
// as is, not rewritten — plus two refusals it does not make: neither
// Sec-Fetch-Site nor Origin (every browser sends one with such a request),
// and an Origin whose scheme is not the request's. Anything else is 403
// with a JSON error naming the check. GET and HEAD with the cookie are
// refused (403) when Sec-Fetch-Site says cross-site or same-site and the
// request is not a navigation, so another origin's page cannot embed the
// API's answers (a sample's image) either; following a link still works.
// Bearer requests are subject to none of it (scripts send no Origin; a
// page cannot send the header without the token). The mutations' JSON
// Content-Type is a second wall: a form or a no-cors fetch cannot send it.
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
