package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// clock is a moveable now for a Server's sessions and sign-ins.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func withClock(s *Server) *clock {
	c := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	s.now = c.now
	return c
}
func sessionCookieOf(w *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == SessionCookie {
			return c
		}
	}
	return nil
}

// signInReq is a browser's sign-in: no Authorization, same-origin fetch.
func signInReq(target, body string, hdr ...string) *http.Request {
	return req("POST", target, body, append([]string{"Authorization", "", "Sec-Fetch-Site", "same-origin"}, hdr...)...)
}

// signIn signs in and returns the session cookie's value.
func signIn(t *testing.T, s *Server) string {
	t.Helper()
	w := do(s, signInReq("/ui/session", `{"token": "`+httpTestToken+`"}`))
	c := sessionCookieOf(w)
	if w.Code != http.StatusOK || c == nil || c.Value == "" {
		t.Fatalf("sign-in: %d %s, cookie %v", w.Code, w.Body.String(), c)
	}
	return c.Value
}

// cookieReq is a request authorized by the session cookie only; hdr as req.
func cookieReq(method, target, body, cookie string, hdr ...string) *http.Request {
	r := req(method, target, body, append([]string{"Authorization", ""}, hdr...)...)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
	return r
}

// The right token sets the session cookie: HttpOnly, SameSite=Strict,
// Path=/, Max-Age of the whole lifetime, Secure when the request came over
// TLS or the browser's page (Origin) or a proxy says https; from then on the
// cookie alone opens the UI and the API.
func TestSessionSignInSetsCookie(t *testing.T) {
	for _, c := range []struct {
		why    string
		r      *http.Request
		status int
		secure bool
	}{
		{"JSON over http", signInReq("/ui/session", `{"token": "`+httpTestToken+`"}`), 200, false},
		{"JSON over TLS", signInReq("https://example.com/ui/session", `{"token": "`+httpTestToken+`"}`), 200, true},
		{"page on https (Origin)", signInReq("/ui/session", `{"token": "`+httpTestToken+`"}`, "Sec-Fetch-Site", "", "Origin", "https://example.com"), 200, true},
		{"TLS proxy in front", signInReq("/ui/session", `{"token": "`+httpTestToken+`"}`, "X-Forwarded-Proto", "https"), 200, true},
		{"form", signInReq("/ui/session", "token="+httpTestToken, "Content-Type", "application/x-www-form-urlencoded"), 303, false},
		{"curl (no Sec-Fetch-Site, no Origin)", signInReq("/ui/session", `{"token": " `+httpTestToken+` "}`, "Sec-Fetch-Site", ""), 200, false},
	} {
		s := New(Deps{Token: httpTestToken, Routes: func() []RouteStatus { return nil }})
		w := do(s, c.r)
		ck := sessionCookieOf(w)
		if w.Code != c.status || ck == nil {
			t.Errorf("%s: %d %s, cookie %v", c.why, w.Code, w.Body.String(), ck)
			continue
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" ||
			ck.MaxAge != int(SessionLifetime/time.Second) || ck.Secure != c.secure || len(ck.Value) != 43 {
			t.Errorf("%s: cookie %q, want HttpOnly SameSite=Strict Path=/ Max-Age=%d Secure=%v and a 256-bit id",
				c.why, w.Header().Get("Set-Cookie"), int(SessionLifetime/time.Second), c.secure)
		}
		if c.status == 303 && w.Header().Get("Location") != "/ui/" {
			t.Errorf("%s: Location %q, want /ui/", c.why, w.Header().Get("Location"))
		}
		if c.status == 200 {
			var info sessionInfo
			if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil || info.Via != "cookie" || info.Expires == nil || info.IdleExpires == nil ||
				info.Expires.Sub(*info.IdleExpires) != SessionLifetime-SessionIdle {
				t.Errorf("%s: answer %s", c.why, w.Body.String())
			}
		}
		for _, path := range []string{"/api/v1/routes", "/ui/", "/ui/app.js", "/ui/session"} {
			if w := do(s, cookieReq("GET", path, "", ck.Value)); w.Code != http.StatusOK {
				t.Errorf("%s: GET %s with the cookie: %d %.200s", c.why, path, w.Code, w.Body.String())
			}
		}
	}
}

// A wrong token, a missing one, or a body that is not a sign-in sets no
// cookie; the wrong token gets 401 with a JSON error.
func TestSessionSignInRefused(t *testing.T) {
	s := New(Deps{Token: httpTestToken})
	long := `{"token": "` + strings.Repeat("x", 5000) + `"}`
	for _, c := range []struct {
		why    string
		r      *http.Request
		status int
		want   string
	}{
		{"wrong token", signInReq("/ui/session", `{"token": "wrong-token-0123456789"}`), 401, "wrong token"},
		{"the token with a character more", signInReq("/ui/session", `{"token": "`+httpTestToken+`x"}`), 401, "wrong token"},
		{"empty token", signInReq("/ui/session", `{"token": ""}`), 401, "wrong token"},
		{"no token field", signInReq("/ui/session", `{"tokn": "x"}`), 400, `want {\"token\"`},
		{"two tokens in a form", signInReq("/ui/session", "token=a&token=b", "Content-Type", "application/x-www-form-urlencoded"), 400, `one form field \"token\"`},
		{"duplicate key", signInReq("/ui/session", `{"token": "x", "token": "`+httpTestToken+`"}`), 400, "invalid JSON"},
		{"text/plain", signInReq("/ui/session", httpTestToken, "Content-Type", "text/plain"), 415, "Content-Type must be"},
		{"too big", signInReq("/ui/session", long), 413, "over 4096 bytes"},
		{"bearer instead of a body", req("POST", "/ui/session", ""), 400, "invalid JSON"},
	} {
		w := do(s, c.r)
		expect(t, c.why, w, c.status, c.want)
		if ck := sessionCookieOf(w); ck != nil {
			t.Errorf("%s: cookie set: %v", c.why, ck)
		}
	}
	if n := s.sessions.len(); n != 0 {
		t.Errorf("%d sessions after refused sign-ins", n)
	}
}

// Wrong tokens are limited: signInBurst of them get 401, then every attempt
// (the right token too) gets 429 with Retry-After until the bucket refills;
// the bearer API is not affected.
func TestSessionSignInRateLimited(t *testing.T) {
	s := New(Deps{Token: httpTestToken, Routes: func() []RouteStatus { return nil }})
	clk := withClock(s)
	wrong := `{"token": "wrong-token-0123456789"}`
	for i := 0; i < signInBurst; i++ {
		expect(t, fmt.Sprint("wrong token ", i+1), do(s, signInReq("/ui/session", wrong)), 401, "wrong token")
	}
	w := do(s, signInReq("/ui/session", wrong))
	expect(t, "one wrong token too many", w, 429, "too many wrong tokens; try again in 3 s")
	if got := w.Header().Get("Retry-After"); got != "3" {
		t.Errorf("Retry-After %q, want 3", got)
	}
	expect(t, "the right token while limited", do(s, signInReq("/ui/session", `{"token": "`+httpTestToken+`"}`)), 429, "too many")
	expect(t, "bearer API while sign-in is limited", do(s, req("GET", "/api/v1/routes", "")), 200)
	clk.advance(signInEvery)
	signIn(t, s) // one attempt refilled: the right token does not use it up
	expect(t, "a wrong token after the refill", do(s, signInReq("/ui/session", wrong)), 401, "wrong token")
	expect(t, "and the next one", do(s, signInReq("/ui/session", wrong)), 429, "too many")
}

// Sign-out ends the session on the server: the old cookie, replayed, gets
// 401 on the API and the UI, and is deleted; another browser's session
// goes on.
func TestSessionSignOutEndsSession(t *testing.T) {
	s := New(Deps{Token: httpTestToken, Routes: func() []RouteStatus { return nil }})
	mine, other := signIn(t, s), signIn(t, s)
	w := do(s, cookieReq("DELETE", "/ui/session", "", mine, "Sec-Fetch-Site", "same-origin"))
	expect(t, "sign out", w, 200, `"signed_out": true`)
	if ck := sessionCookieOf(w); ck == nil || ck.MaxAge != -1 || ck.Value != "" || !ck.HttpOnly || ck.Path != "/" {
		t.Errorf("sign-out Set-Cookie %q, want the cookie deleted (Max-Age=0)", w.Header().Get("Set-Cookie"))
	}
	w = do(s, cookieReq("GET", "/api/v1/routes", "", mine))
	expect(t, "API with the old cookie", w, 401, "the UI session has ended")
	if ck := sessionCookieOf(w); ck == nil || ck.MaxAge != -1 {
		t.Errorf("the stale cookie is not deleted: %q", w.Header().Get("Set-Cookie"))
	}
	if w := do(s, cookieReq("GET", "/ui/", "", mine)); w.Code != 401 || !strings.Contains(w.Body.String(), `id="token"`) {
		t.Errorf("UI with the old cookie: %d, want 401 and the sign-in page", w.Code)
	}
	expect(t, "session status with the old cookie", do(s, cookieReq("GET", "/ui/session", "", mine)), 401, "not signed in")
	expect(t, "the other browser", do(s, cookieReq("GET", "/api/v1/routes", "", other)), 200)
	expect(t, "sign out again", do(s, cookieReq("DELETE", "/ui/session", "", mine, "Sec-Fetch-Site", "same-origin")), 200)
	// Another page cannot sign a browser out.
	expect(t, "sign out from another origin", do(s, cookieReq("DELETE", "/ui/session", "", other, "Sec-Fetch-Site", "cross-site")), 403, "cross-origin")
	expect(t, "still signed in", do(s, cookieReq("GET", "/api/v1/routes", "", other)), 200)
	// A script with the token may end a session whose cookie it has.
	expect(t, "sign out with the bearer token", do(s, cookieReq("DELETE", "/ui/session", "", other, "Authorization", "Bearer "+httpTestToken)), 200)
	expect(t, "ended", do(s, cookieReq("GET", "/api/v1/routes", "", other)), 401)
}

// A session ends SessionIdle after its last use, and SessionLifetime after
// sign-in however often it is used.
func TestSessionExpires(t *testing.T) {
	s := New(Deps{Token: httpTestToken, Routes: func() []RouteStatus { return nil }})
	clk := withClock(s)
	idle := signIn(t, s)
	clk.advance(SessionIdle - time.Second)
	expect(t, "used just before the idle timeout", do(s, cookieReq("GET", "/api/v1/routes", "", idle)), 200)
	clk.advance(SessionIdle - time.Second)
	expect(t, "the idle timeout counts from the last use", do(s, cookieReq("GET", "/api/v1/routes", "", idle)), 200)
	clk.advance(SessionIdle)
	expect(t, "idle for SessionIdle", do(s, cookieReq("GET", "/api/v1/routes", "", idle)), 401)
	expect(t, "idle for SessionIdle, the UI", do(s, cookieReq("GET", "/ui/session", "", idle)), 401)

	busy := signIn(t, s)
	start := clk.t
	for clk.t.Sub(start) < SessionLifetime-time.Hour {
		clk.advance(time.Hour)
		expect(t, "used every hour", do(s, cookieReq("GET", "/api/v1/routes", "", busy)), 200)
	}
	clk.advance(time.Hour)
	expect(t, "SessionLifetime after sign-in", do(s, cookieReq("GET", "/api/v1/routes", "", busy)), 401)
	if n := s.sessions.len(); n != 0 {
		t.Errorf("%d sessions held after both expired, want 0", n)
	}
}

// At most MaxSessions are held: one more sign-in ends the least recently
// used, and the others go on.
func TestSessionCountBounded(t *testing.T) {
	s := New(Deps{Token: httpTestToken, Routes: func() []RouteStatus { return nil }})
	clk := withClock(s)
	ids := make([]string, MaxSessions)
	for i := range ids {
		ids[i] = signIn(t, s)
		clk.advance(time.Second)
	}
	expect(t, "the first session used again", do(s, cookieReq("GET", "/api/v1/routes", "", ids[0])), 200)
	newest := signIn(t, s)
	if n := s.sessions.len(); n != MaxSessions {
		t.Fatalf("%d sessions held, want %d", n, MaxSessions)
	}
	expect(t, "the least recently used (second) session", do(s, cookieReq("GET", "/api/v1/routes", "", ids[1])), 401)
	for _, id := range []string{ids[0], ids[2], ids[MaxSessions-1], newest} {
		expect(t, "a more recent session", do(s, cookieReq("GET", "/api/v1/routes", "", id)), 200)
	}
	// Expired sessions make room first.
	clk.advance(SessionIdle)
	signIn(t, s)
	if n := s.sessions.len(); n != 1 {
		t.Errorf("%d sessions after all others expired, want 1", n)
	}
}

// With the session cookie, a request that changes something must come from
// the UI's own origin (Sec-Fetch-Site same-origin, else an Origin equal to
// the request's scheme, host and port): anything else gets 403 with a JSON
// error and reaches nothing. The bearer token is not subject to it.
func TestSessionMutationsNeedSameOrigin(t *testing.T) {
	f := newFixture()
	cookie := signIn(t, f.srv)
	for _, c := range []struct {
		why  string
		hdr  []string
		want int
	}{
		{"foreign Origin", []string{"Origin", "http://evil.example"}, 403},
		{"another port of the same host", []string{"Origin", "http://example.com:8080"}, 403},
		{"same host, https page", []string{"Origin", "https://example.com"}, 403},
		{"Origin null (sandboxed frame)", []string{"Origin", "null"}, 403},
		{"Sec-Fetch-Site cross-site", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"Sec-Fetch-Site same-site", []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"Sec-Fetch-Site cross-site with a matching Origin", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://example.com"}, 403},
		{"neither Sec-Fetch-Site nor Origin", nil, 403},
		{"Sec-Fetch-Site same-origin", []string{"Sec-Fetch-Site", "same-origin"}, 200},
		{"Origin of the UI, no Sec-Fetch-Site (older browser)", []string{"Origin", "http://example.com"}, 200},
	} {
		before := len(f.rules.changed())
		// Each accepted promotion goes to another percentage, so that it
		// changes the rules (a promotion to the current one changes nothing).
		pct := 5 + before
		promote := fmt.Sprintf(`{"percent": %d, "reason": "r"}`, pct)
		w := do(f.srv, cookieReq("POST", "/api/v1/routes/img/promote", promote, cookie, c.hdr...))
		if c.want == 403 {
			expect(t, c.why, w, 403, "cross-origin request refused", "Authorization: Bearer")
			if !strings.Contains(w.Header().Get("Content-Type"), "json") {
				t.Errorf("%s: Content-Type %q, want JSON", c.why, w.Header().Get("Content-Type"))
			}
			if len(f.rules.changed()) != before {
				t.Errorf("%s: the promotion was applied", c.why)
			}
			continue
		}
		expect(t, c.why, w, c.want, fmt.Sprintf(`"serve_new": %d`, pct))
		if len(f.rules.changed()) != before+1 {
			t.Errorf("%s: the promotion was not applied", c.why)
		}
	}
	// Every other mutation is held to the same rule.
	for _, e := range privateEndpoints {
		if e.method == "GET" {
			continue
		}
		w := do(f.srv, cookieReq(e.method, e.path, e.body, cookie, "Origin", "http://evil.example", "If-Match", "1"))
		expect(t, e.method+" "+e.path+" from a foreign origin", w, 403, "cross-origin")
	}
	expect(t, "pprof symbol POST from another origin", do(f.srv, cookieReq("POST", "/debug/pprof/symbol", "", cookie, "Sec-Fetch-Site", "cross-site")), 403)
	if len(f.noise) != 0 {
		t.Errorf("noise marked from a foreign origin: %q", f.noise)
	}
	// Bearer calls: scripts send no Origin, and an Origin changes nothing.
	promote := `{"percent": 5, "reason": "r"}`
	for _, hdr := range [][]string{nil, {"Origin", "http://evil.example"}, {"Sec-Fetch-Site", "cross-site"}} {
		expect(t, fmt.Sprintf("bearer with %q", hdr), do(f.srv, req("POST", "/api/v1/routes/img/promote", promote, hdr...)), 200, `"serve_new": 5`)
	}
	// A wrong bearer token is refused even with a live cookie beside it.
	r := cookieReq("POST", "/api/v1/routes/img/promote", promote, cookie, "Sec-Fetch-Site", "same-origin", "Authorization", "Bearer wrong-token-0123456789")
	w := do(f.srv, r)
	expect(t, "wrong bearer with the cookie", w, 401)
	if sessionCookieOf(w) != nil {
		t.Errorf("a live session's cookie was deleted for a wrong bearer token beside it: %q", w.Header().Get("Set-Cookie"))
	}
	expect(t, "the cookie alone still works", do(f.srv, cookieReq("GET", "/api/v1/routes", "", cookie)), 200)
}

// With the cookie, another origin's page cannot embed or fetch the API's
// answers either (only navigate to them): a GET whose Sec-Fetch-Site is
// cross-site or same-site is refused unless it is a navigation.
func TestSessionReadsFromOtherOrigins(t *testing.T) {
	f := newFixture()
	cookie := signIn(t, f.srv)
	for _, c := range []struct {
		why  string
		hdr  []string
		want int
	}{
		{"no fetch metadata", nil, 200},
		{"same-origin fetch", []string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors"}, 200},
		{"typed URL", []string{"Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate"}, 200},
		{"link from another port", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "navigate"}, 200},
		{"<img> on another port's page", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "no-cors"}, 403},
		{"fetch from another site", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors"}, 403},
	} {
		expect(t, c.why, do(f.srv, cookieReq("GET", "/api/v1/diffs/s1/body/legacy", "", cookie, c.hdr...)), c.want)
	}
	expect(t, "bearer from another site", do(f.srv, req("GET", "/api/v1/routes", "", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors")), 200)
}

// Signing in again replaces the browser's old session; a cross-origin
// sign-in is refused before the token is looked at.
func TestSessionSignInAgainAndCrossOrigin(t *testing.T) {
	s := New(Deps{Token: httpTestToken, Routes: func() []RouteStatus { return nil }})
	old := signIn(t, s)
	r := signInReq("/ui/session", `{"token": "`+httpTestToken+`"}`)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: old})
	if w := do(s, r); w.Code != 200 || sessionCookieOf(w) == nil || sessionCookieOf(w).Value == old {
		t.Fatalf("sign in again: %d %v", w.Code, sessionCookieOf(w))
	}
	expect(t, "the replaced session", do(s, cookieReq("GET", "/api/v1/routes", "", old)), 401)
	if n := s.sessions.len(); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
	for _, hdr := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "", "Origin", "http://evil.example"}} {
		w := do(s, signInReq("/ui/session", `{"token": "`+httpTestToken+`"}`, hdr...))
		expect(t, fmt.Sprintf("sign-in with %q", hdr), w, 403, "cross-origin")
		if sessionCookieOf(w) != nil {
			t.Errorf("cross-origin sign-in set a cookie")
		}
	}
	// A cookie the server never issued opens nothing.
	expect(t, "a made-up cookie", do(s, cookieReq("GET", "/api/v1/routes", "", strings.Repeat("A", 43))), 401)
}
