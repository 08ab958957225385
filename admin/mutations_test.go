package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Mutations take only application/json bodies (415 otherwise), whatever
// the letter case or parameters of the media type.
func TestMutationContentType(t *testing.T) {
	f := newFixture()
	for _, c := range []struct {
		why, ctype string
		status     int
	}{
		{"no Content-Type", "", 415},
		{"text/plain", "text/plain", 415},
		{"form", "application/x-www-form-urlencoded", 415},
		{"a longer type with the prefix", "application/jsonl", 415},
		{"JSON with charset", "application/json; charset=utf-8", 200},
		{"upper case", "Application/JSON", 200},
	} {
		// A different percentage each time, so that every accepted call
		// is a change.
		body := fmt.Sprintf(`{"percent": %d, "reason": "x"}`, len(c.why))
		w := do(f.srv, req("POST", "/api/v1/routes/img/promote", body, "Content-Type", c.ctype))
		want := ""
		if c.status == 415 {
			want = "Content-Type must be application/json"
		}
		expect(t, c.why, w, c.status, want)
	}
	if c := f.rules.changed(); len(c) != 2 {
		t.Fatalf("changes %q, want the two accepted promotes", c)
	}
}

// A body over maxBodySize is refused with 413 before it is parsed.
func TestMutationBodyTooLarge(t *testing.T) {
	f := newFixture()
	body := `{"reason": "` + strings.Repeat("r", maxBodySize) + `"}`
	expect(t, "5 MiB body", do(f.srv, req("POST", "/api/v1/routes/img/rollback", body)),
		http.StatusRequestEntityTooLarge, "body is over 4194304 bytes")
	if c := f.rules.changed(); len(c) != 0 {
		t.Fatalf("changes %q", c)
	}
}

// A route name that is not in the rules gets 404 on every per-route call.
func TestUnknownRouteName(t *testing.T) {
	f := newFixture()
	for _, c := range []struct{ path, body string }{
		{"/api/v1/routes/nope/promote", `{"percent": 5}`},
		{"/api/v1/routes/nope/rollback", `{"reason": "x"}`},
		{"/api/v1/routes/nope/noise", `{"path": "$.id"}`},
	} {
		expect(t, c.path, do(f.srv, req("POST", c.path, c.body)), http.StatusNotFound, `\"nope\"`)
	}
	for _, path := range []string{"/api/v1/report?route=nope", "/api/v1/diffs?route=nope"} {
		expect(t, path, do(f.srv, req("GET", path, "")), http.StatusNotFound, `unknown route \"nope\"`)
	}
	if c := f.rules.changed(); len(c) != 0 || len(f.noise) != 0 || len(f.reports.asked) != 0 {
		t.Fatalf("unknown routes reached the deps: %q %q %q", c, f.noise, f.reports.asked)
	}
}

// PUT /api/v1/rules: If-Match is required and must be the current version
// (409 when stale, nothing changed); an invalid document gets 400 with
// every error, from the parser or from the store's validation.
func TestPutRules(t *testing.T) {
	f := newFixture()
	doc := `{"routes": [{"name": "img", "legacy": "legacy", "new": "new", "serve_new": 10}], "reason": "ten"}`
	put := func(body string, hdr ...string) *httptest.ResponseRecorder {
		return do(f.srv, req("PUT", "/api/v1/rules", body, hdr...))
	}

	expect(t, "no If-Match", put(doc), http.StatusPreconditionRequired, "needs If-Match")
	expect(t, "If-Match not a number", put(doc, "If-Match", "abc"), http.StatusBadRequest, `not \"abc\"`)
	expect(t, "If-Match zero", put(doc, "If-Match", "0"), http.StatusBadRequest, "rules version number")

	w := put(doc, "If-Match", `"1"`) // ETag style quotes
	expect(t, "current version", w, http.StatusOK, `"serve_new": 10`)
	if w.Header().Get("ETag") != "2" {
		t.Errorf("ETag %q after the update, want 2", w.Header().Get("ETag"))
	}
	expect(t, "the same version again: stale", put(doc, "If-Match", "1"), http.StatusConflict, "If-Match is 1, the current version is 2")

	// Every problem the parser finds is listed.
	w = put(`{"routes": [{"name": "x", "legacy": "missing", "serve_new": 500}]}`, "If-Match", "2")
	var e apiError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != 400 || e.Error != "invalid rules document" {
		t.Fatalf("invalid document: %d %s", w.Code, w.Body.String())
	}
	joined := strings.Join(e.Errors, "\n")
	if len(e.Errors) < 2 || !strings.Contains(joined, "unknown backend") || !strings.Contains(joined, "serve_new") {
		t.Errorf("invalid document: errors %q, want the unknown backend and serve_new", e.Errors)
	}
	// Two routes of one name: the error names both.
	w = put(`{"routes": [{"name": "img", "legacy": "legacy"}, {"name": "img", "legacy": "legacy"}]}`, "If-Match", "2")
	expect(t, "duplicate route names", w, http.StatusBadRequest, `routes[1].name: \"img\" is also the name of routes[0]`)
	if c := f.rules.changed(); len(c) != 1 || c[0] != "replace api ten" {
		t.Fatalf("changes %q, want the one accepted replace", c)
	}
	if got := f.rules.Current(); got.Version != 2 || len(got.Routes) != 1 || got.Routes[0].ServeNew != 10 {
		t.Fatalf("rules after: %+v", got)
	}
}

// promote, rollback and noise: what each body must hold, what reaches the
// store, and the actor (X-Tandem-Actor: cli, else api).
func TestPromoteRollbackNoiseBodies(t *testing.T) {
	f := newFixture()
	for _, c := range []struct {
		why, path, body string
		hdr             []string
		status          int
		want            string
	}{
		{"promote without percent", "promote", `{"reason": "x"}`, nil, 400, `\"percent\" is required`},
		{"percent as a string", "promote", `{"percent": "25"}`, nil, 400, "invalid JSON body"},
		{"unknown field (a typo of percent)", "promote", `{"percent": 5, "precent": 50}`, nil, 400, `unknown field \"precent\"`},
		{"a JSON array", "promote", `[25]`, nil, 400, "invalid JSON body"},
		{"percent over 100: named by route and field, not by index", "promote", `{"percent": 101}`, nil, 400, `"errors": [
    "route \"img\": serve_new 101 must be within 0..100"`},
		{"promote", "promote", `{"percent": 25, "reason": "canary"}`, nil, 200, `"serve_new": 25`},
		{"promote from the CLI", "promote", `{"percent": 50}`, []string{"X-Tandem-Actor", "cli"}, 200, `"serve_new": 50`},
		{"an actor other than cli is api", "promote", `{"percent": 60}`, []string{"X-Tandem-Actor", "ramp"}, 200, ""},
		{"rollback with an unknown field", "rollback", `{"reason": "x", "percent": 0}`, nil, 400, `unknown field \"percent\"`},
		{"rollback", "rollback", `{"reason": "bad p99"}`, nil, 200, `"serve_new": 0`},
		{"rollback at 0%: answered, and said to have changed nothing", "rollback", `{}`, nil, 200, `"changed": false`},
		{"promote to the percentage it has: no change", "promote", `{"percent": 0}`, nil, 200, `"changed": false`},
		{"a promote that changes: changed", "promote", `{"percent": 1}`, nil, 200, `"changed": true`},
		{"noise path not a diff path", "noise", `{"path": "processed_at"}`, nil, 400, `\"path\" must be a diff path`},
		{"noise without path", "noise", `{"reason": "x"}`, nil, 400, `\"path\" must be a diff path`},
		{"noise", "noise", `{"path": "$.processed_at", "reason": "timestamps"}`, nil, 200, `"status": "marked as noise"`},
	} {
		w := do(f.srv, req("POST", "/api/v1/routes/img/"+c.path, c.body, c.hdr...))
		expect(t, c.why, w, c.status, c.want)
	}
	want := []string{"promote img 25 api canary", "promote img 50 cli ", "promote img 60 api ", "rollback img api bad p99", "promote img 1 api "}
	if got := f.rules.changed(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("changes\n got %q\nwant %q", got, want)
	}
	if len(f.noise) != 1 || f.noise[0] != "img $.processed_at timestamps" {
		t.Errorf("noise %q", f.noise)
	}

	// MarkNoise's errors: a BadRequestError is the caller's (400), any
	// other is ours (500).
	f.noiseErr = &BadRequestError{Err: errors.New("cannot mark $.id: route img compares no JSON")}
	expect(t, "noise refused as bad", do(f.srv, req("POST", "/api/v1/routes/img/noise", `{"path": "$.id"}`)), 400, "compares no JSON")
	f.noiseErr = &NotAppliedError{Err: errors.New("cannot write noise.json: no space left on device")}
	expect(t, "noise not persisted", do(f.srv, req("POST", "/api/v1/routes/img/noise", `{"path": "$.id"}`)), 503,
		"the noise mark was not applied (nothing changed): cannot write noise.json: no space left on device")
	f.noiseErr = errors.New("something else")
	expect(t, "noise failed otherwise", do(f.srv, req("POST", "/api/v1/routes/img/noise", `{"path": "$.id"}`)), 500, "cannot mark noise: something else")
}

// Deps left nil answer 503 with what is missing, not a panic.
func TestMissingDepsAnswer503(t *testing.T) {
	s := New(Deps{Token: httpTestToken})
	for _, c := range []struct{ method, path, body, want string }{
		{"GET", "/api/v1/routes", "", "routes are not available"},
		{"GET", "/api/v1/rules", "", "rules are not available"},
		{"PUT", "/api/v1/rules", `{"routes": []}`, "rules are not available"},
		{"POST", "/api/v1/routes/img/promote", `{"percent": 1}`, "rules are not available"},
		{"POST", "/api/v1/routes/img/rollback", `{}`, "rules are not available"},
		{"POST", "/api/v1/routes/img/noise", `{"path": "$.x"}`, "noise marking is not available"},
		{"GET", "/api/v1/report", "", "reports are not available"},
		{"GET", "/api/v1/diffs", "", "diffs are not available"},
		{"GET", "/api/v1/diffs/s1", "", "diffs are not available"},
		{"GET", "/api/v1/diffs/s1/heatmap.png", "", "diffs are not available"},
		{"GET", "/api/v1/events", "", "events are not available"},
		{"GET", "/api/v1/comparisons?request_id=r1", "", "comparisons are not available"},
	} {
		expect(t, c.method+" "+c.path, do(s, req(c.method, c.path, c.body, "If-Match", "1")), http.StatusServiceUnavailable, c.want)
	}
}

// A rules store that cannot reach its database (a fleet's PostgreSQL is
// down) refuses every change with rules.ErrUnavailable: PUT, promote and
// rollback answer 503, nothing changes, and the rules are still read.
func TestRulesStoreUnavailable(t *testing.T) {
	f := newFixture()
	f.rules.down = true
	doc := `{"routes": [{"name": "img", "legacy": "legacy", "new": "new", "serve_new": 10}], "reason": "ten"}`
	expect(t, "put", do(f.srv, req("PUT", "/api/v1/rules", doc, "If-Match", "1")), http.StatusServiceUnavailable, "unavailable")
	expect(t, "promote", do(f.srv, req("POST", "/api/v1/routes/img/promote", `{"percent": 5, "reason": "x"}`)), http.StatusServiceUnavailable, "unavailable")
	expect(t, "rollback", do(f.srv, req("POST", "/api/v1/routes/img/rollback", `{"reason": "x"}`)), http.StatusServiceUnavailable, "unavailable")
	if c := f.rules.changed(); len(c) != 0 {
		t.Fatalf("changes %q while the store is down", c)
	}
	expect(t, "rules still read", do(f.srv, req("GET", "/api/v1/rules", "")), http.StatusOK, `"version": 1`)
	f.rules.down = false
	expect(t, "promote once back", do(f.srv, req("POST", "/api/v1/routes/img/promote", `{"percent": 5, "reason": "x"}`)), http.StatusOK)
}
