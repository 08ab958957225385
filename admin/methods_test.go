package admin

import (
	"net/http"
	"testing"
)

// A path that exists answers another method with 405 and the methods it
// takes in Allow (the mux's; GET brings HEAD), and the handler never runs.
func TestMethodNotAllowedWithAllow(t *testing.T) {
	f := newFixture()
	for _, c := range []struct {
		why, method, path, allow string
	}{
		{"GET on promote (DESIGN: GET on a mutating path gets 405)", "GET", "/api/v1/routes/img/promote", "POST"},
		{"GET on rollback", "GET", "/api/v1/routes/img/rollback", "POST"},
		{"GET on noise", "GET", "/api/v1/routes/img/noise", "POST"},
		{"PUT on promote", "PUT", "/api/v1/routes/img/promote", "POST"},
		{"POST on rules: the replacement is PUT", "POST", "/api/v1/rules", "GET, HEAD, PUT"},
		{"DELETE on rules", "DELETE", "/api/v1/rules", "GET, HEAD, PUT"},
		{"POST on a read", "POST", "/api/v1/routes", "GET, HEAD"},
		{"PATCH on diffs", "PATCH", "/api/v1/diffs/s1", "GET, HEAD"},
		{"POST on a diff body", "POST", "/api/v1/diffs/s1/body/legacy", "GET, HEAD"},
		{"POST on a UI file", "POST", "/ui/app.js", "GET, HEAD"},
		{"DELETE on events", "DELETE", "/api/v1/events", "GET, HEAD"},
		{"POST on the comparisons lookup", "POST", "/api/v1/comparisons", "GET, HEAD"},
	} {
		w := do(f.srv, req(c.method, c.path, `{"percent": 50, "reason": "x"}`, "If-Match", "1"))
		expect(t, c.why, w, http.StatusMethodNotAllowed, c.method+" is not allowed on "+c.path+"; use "+c.allow)
		if got := w.Header().Get("Allow"); got != c.allow {
			t.Errorf("%s: Allow %q, want %q", c.why, got, c.allow)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want the API's JSON error", c.why, ct)
		}
	}
	// The probes take GET and HEAD only.
	w := do(f.srv, req("POST", "/healthz", "", "Authorization", ""))
	expect(t, "POST /healthz", w, http.StatusMethodNotAllowed, "use GET, HEAD")
	if w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /healthz: Allow %q", w.Header().Get("Allow"))
	}
	if c := f.rules.changed(); len(c) != 0 || len(f.reports.asked) != 0 {
		t.Fatalf("405s reached the deps: %q %q", c, f.reports.asked)
	}
}

// HEAD is served by every GET endpoint, with the GET's headers.
func TestHeadIsGet(t *testing.T) {
	f := newFixture()
	w := do(f.srv, req("HEAD", "/api/v1/rules", ""))
	if w.Code != http.StatusOK || w.Header().Get("ETag") != "1" {
		t.Fatalf("HEAD rules: %d ETag %q", w.Code, w.Header().Get("ETag"))
	}
}

// A path that is not clean is redirected (307, the method kept) to the
// clean one; the redirect serves no data, and the target needs the token.
func TestUncleanPathRedirects(t *testing.T) {
	f := newFixture()
	for _, path := range []string{"/api/v1//rules", "/api/v1/./rules", "/api/v1/x/../rules"} {
		w := do(f.srv, req("GET", path, "", "Authorization", ""))
		if w.Code != http.StatusTemporaryRedirect || w.Header().Get("Location") != "/api/v1/rules" {
			t.Errorf("%s: %d Location %q, want 307 to /api/v1/rules", path, w.Code, w.Header().Get("Location"))
		}
	}
	if len(f.rules.changed()) != 0 {
		t.Fatal("a redirect changed rules")
	}
}
