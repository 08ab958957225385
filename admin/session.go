package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Browser sessions (see doc.go "Sessions"): the token is entered once on
// the UI's sign-in page; POST /ui/session checks it and sets a session
// cookie, an opaque random id of a session held in memory here. The API
// takes the cookie as it takes Authorization: Bearer, with one more rule for
// the cookie: a request that changes something must come from the UI's own
// origin.

// Session limits.
const (
	// SessionCookie is the name of the session cookie.
	SessionCookie = "tandem_session"
	// SessionIdle ends a session not used for this long.
	SessionIdle = 12 * time.Hour
	// SessionLifetime ends a session this long after sign-in, used or not.
	SessionLifetime = 7 * 24 * time.Hour
	// MaxSessions bounds the sessions held; signing in past it ends the
	// least recently used one.
	MaxSessions = 1024

	// Failed sign-ins: up to signInBurst wrong tokens are answered 401 at once,
	// then one more every signInEvery; the rest get 429 with Retry-After
	// until then. Bearer calls are not counted and never refused for it.
	signInBurst = 10
	signInEvery = 3 * time.Second
	// maxSignInBody bounds a sign-in body (a token of a few dozen bytes).
	maxSignInBody = 4 << 10
)

// authVia says how a request is authorized.
type authVia int

const (
	authNone   authVia = iota
	authBearer         // Authorization: Bearer <token>
	authCookie         // a live session's cookie
)

// authenticate decides how r is authorized. An Authorization header decides
// alone: a wrong one is refused even with a session cookie beside it. No
// token configured means nobody is authorized.
func (s *Server) authenticate(r *http.Request) authVia {
	if s.deps.Token == "" {
		return authNone
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if tokenOK([]byte(h), s.deps.Token) {
			return authBearer
		}
		return authNone
	}
	if c, err := r.Cookie(SessionCookie); err == nil && s.sessions.use(c.Value, s.now()) {
		return authCookie
	}
	return authNone
}

// session is one signed-in browser.
type session struct {
	created, used time.Time
}

// sessionStore holds the live sessions by the SHA-256 of their ids (a
// lookup's timing says nothing about the ids held). Expired sessions are
// dropped when met and when the store is full: no goroutine.
type sessionStore struct {
	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessionStore() *sessionStore {
	return &sessionStore{m: make(map[[32]byte]*session)}
}

func (s *session) live(now time.Time) bool {
	return now.Sub(s.used) < SessionIdle && now.Sub(s.created) < SessionLifetime
}

// start begins a session at now and returns its id: 256 random bits,
// base64url.
func (st *sessionStore) start(now time.Time) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("cannot make a session id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.m) >= MaxSessions {
		st.sweep(now)
	}
	for len(st.m) >= MaxSessions { // all live: end the least recently used
		var oldest [32]byte
		first := true
		for k, ss := range st.m {
			if first || ss.used.Before(st.m[oldest].used) {
				oldest, first = k, false
			}
		}
		delete(st.m, oldest)
	}
	st.m[sha256.Sum256([]byte(id))] = &session{created: now, used: now}
	return id, nil
}

// sweep drops every expired session. The caller holds mu.
func (st *sessionStore) sweep(now time.Time) {
	for k, ss := range st.m {
		if !ss.live(now) {
			delete(st.m, k)
		}
	}
}

// use reports whether id is a live session, and marks it used at now.
func (st *sessionStore) use(id string, now time.Time) bool {
	k := sha256.Sum256([]byte(id))
	st.mu.Lock()
	defer st.mu.Unlock()
	ss, ok := st.m[k]
	if !ok {
		return false
	}
	if !ss.live(now) {
		delete(st.m, k)
		return false
	}
	ss.used = now
	return true
}

// get returns a copy of the session id names, if it is live at now.
func (st *sessionStore) get(id string, now time.Time) (session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ss, ok := st.m[sha256.Sum256([]byte(id))]
	if !ok || !ss.live(now) {
		return session{}, false
	}
	return *ss, true
}

// end ends the session id names (nothing if there is none).
func (st *sessionStore) end(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, sha256.Sum256([]byte(id)))
}

// len is the number of sessions held, expired ones not yet dropped included.
func (st *sessionStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.m)
}

// signInLimiter bounds wrong tokens at sign-in for the whole server (the
// listener is on loopback by default, where every caller has one address):
// a token bucket that only failures take from.
type signInLimiter struct {
	mu  sync.Mutex // check, compare and count as one step
	lim *rate.Limiter
}

func newSignInLimiter() *signInLimiter {
	return &signInLimiter{lim: rate.NewLimiter(rate.Every(signInEvery), signInBurst)}
}

// check compares presented with token unless too many wrong tokens came
// before: ok is the comparison, wait > 0 means it was not made.
func (l *signInLimiter) check(now time.Time, presented, token string) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if tokens := l.lim.TokensAt(now); tokens < 1 {
		return false, time.Duration(math.Ceil((1 - tokens) * float64(signInEvery)))
	}
	if sameToken(presented, token) {
		return true, 0
	}
	l.lim.AllowN(now, 1)
	return false, 0
}

// sameToken compares two tokens in constant time, their lengths included
// (it compares their SHA-256).
func sameToken(presented, token string) bool {
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(token))
	return token != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// sessionCookie is the session cookie for id, or the one that deletes it
// (id ""). Secure when the request came over TLS, or the browser says its
// page is https (Origin) or a proxy in front says so (X-Forwarded-Proto):
// the last two can only add Secure, which a browser on plain http then
// refuses, so trusting them costs an attacker's own sign-in at most.
func sessionCookie(r *http.Request, id string) *http.Cookie {
	c := &http.Cookie{
		Name:     SessionCookie,
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || strings.HasPrefix(r.Header.Get("Origin"), "https://") ||
			strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
		MaxAge: int(SessionLifetime / time.Second),
	}
	if id == "" {
		c.MaxAge = -1 // Max-Age=0: delete now
	}
	return c
}

// sessionInfo is the answer of GET and POST /ui/session.
type sessionInfo struct {
	// Via is "cookie" or "bearer".
	Via string `json:"via"`
	// Expires is when the session ends at the latest, IdleExpires when it
	// ends if not used before (cookie only).
	Expires     *time.Time `json:"expires,omitempty"`
	IdleExpires *time.Time `json:"idle_expires,omitempty"`
}

func infoOf(ss session) sessionInfo {
	exp, idle := ss.created.Add(SessionLifetime), ss.used.Add(SessionIdle)
	return sessionInfo{Via: "cookie", Expires: &exp, IdleExpires: &idle}
}

// signIn serves POST /ui/session: {"token": "..."} as JSON, or token=... as
// a form. A right token starts a session and sets its cookie: 200 with the
// session (JSON) or 303 to /ui/ (form). A wrong one gets 401; too many wrong
// ones 429. A cross-origin attempt gets 403 before the token is looked at
// (net/http's CrossOriginProtection; a script that sends neither
// Sec-Fetch-Site nor Origin may sign in too).
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if err := s.csrf.Check(r); err != nil {
		s.crossOrigin(w, r, err)
		return
	}
	presented, form, status, err := readSignIn(w, r)
	if err != nil {
		fail(w, status, "%v", err)
		return
	}
	now := s.now()
	ok, wait := s.signIns.check(now, presented, s.deps.Token)
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		fail(w, http.StatusTooManyRequests, "too many wrong tokens; try again in %d s", int(math.Ceil(wait.Seconds())))
		return
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tandem"`)
		fail(w, http.StatusUnauthorized, "wrong token")
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.sessions.end(c.Value) // a new sign-in replaces the old session
	}
	id, err := s.sessions.start(now)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	http.SetCookie(w, sessionCookie(r, id))
	w.Header().Set("Cache-Control", "no-store")
	if form {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, infoOf(session{created: now, used: now}))
}

// readSignIn reads the token of a sign-in body; on error, the status to
// answer.
func readSignIn(w http.ResponseWriter, r *http.Request) (token string, form bool, status int, err error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" && mt != "application/x-www-form-urlencoded" {
		return "", false, http.StatusUnsupportedMediaType,
			fmt.Errorf("Content-Type must be application/json or application/x-www-form-urlencoded, not %q", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSignInBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return "", false, http.StatusRequestEntityTooLarge, fmt.Errorf("body is over %d bytes", tooBig.Limit)
	case err != nil:
		return "", false, http.StatusBadRequest, fmt.Errorf("cannot read body: %w", err)
	}
	if mt == "application/x-www-form-urlencoded" {
		q, err := url.ParseQuery(string(body))
		if err != nil || len(q["token"]) != 1 {
			return "", true, http.StatusBadRequest, errors.New(`want one form field "token"`)
		}
		return strings.TrimSpace(q.Get("token")), true, 0, nil
	}
	if err := checkJSON(body); err != nil {
		return "", false, http.StatusBadRequest, fmt.Errorf("invalid JSON body: %w", err)
	}
	var in struct {
		Token *string `json:"token"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || in.Token == nil {
		return "", false, http.StatusBadRequest, errors.New(`want {"token": "..."}`)
	}
	return strings.TrimSpace(*in.Token), false, 0, nil
}

// signOut serves DELETE /ui/session: the session of the cookie ends (a
// replay of the cookie gets 401) and the cookie is deleted. Idempotent: no
// session, or an expired one, gets the same 200. It must come from the UI's
// origin (sameOrigin) unless it carries the bearer token.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	if s.authenticate(r) != authBearer {
		if err := s.sameOrigin(r); err != nil {
			s.crossOrigin(w, r, err)
			return
		}
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.sessions.end(c.Value)
	}
	http.SetCookie(w, sessionCookie(r, ""))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]bool{"signed_out": true})
}

// sessionStatus serves GET /ui/session: how the caller is signed in, 401
// (JSON) when it is not. The sign-in page asks it first.
func (s *Server) sessionStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch s.authenticate(r) {
	case authBearer:
		writeJSON(w, http.StatusOK, sessionInfo{Via: "bearer"})
		return
	case authCookie:
		if err := s.cookieAllowed(r); err != nil {
			s.crossOrigin(w, r, err)
			return
		}
		c, _ := r.Cookie(SessionCookie)
		if ss, ok := s.sessions.get(c.Value, s.now()); ok {
			writeJSON(w, http.StatusOK, infoOf(ss))
			return
		}
	}
	s.clearStaleCookie(w, r)
	w.Header().Set("WWW-Authenticate", `Bearer realm="tandem"`)
	fail(w, http.StatusUnauthorized, "not signed in: no live session and no bearer token")
}

// clearStaleCookie deletes a session cookie that names no live session (a
// live one stays, even beside a wrong bearer token).
func (s *Server) clearStaleCookie(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if _, live := s.sessions.get(c.Value, s.now()); live {
			return
		}
		http.SetCookie(w, sessionCookie(r, ""))
	}
}

// Cross-origin requests. A session cookie goes with every request the
// browser makes to this host, whichever page asks: SameSite=Strict keeps it
// off requests from other sites, but pages on another port of the same
// host are the same site. So a request authorized by the cookie must also
// come from the UI's origin.

// cookieAllowed checks a request authorized by the session cookie: one
// that may change something must be same-origin (sameOrigin); a safe one
// (GET, HEAD) from another origin is refused unless it is a top-level
// navigation (a link followed, which the other page cannot read), so other
// pages cannot embed the API's answers (images, scripts) either.
func (s *Server) cookieAllowed(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		switch site := r.Header.Get("Sec-Fetch-Site"); site {
		case "", "same-origin", "none":
			return nil
		default:
			if r.Header.Get("Sec-Fetch-Mode") == "navigate" {
				return nil
			}
			return fmt.Errorf("Sec-Fetch-Site is %s and the request is not a navigation", site)
		}
	}
	return s.sameOrigin(r)
}

// sameOrigin checks that a request that may change something comes from
// the UI's own origin, with net/http's CrossOriginProtection (Sec-Fetch-Site
// same-origin or none, else an Origin whose host:port is the Host), plus
// two things it lets through: a browser sends Sec-Fetch-Site or Origin
// with every such request, so a request with neither is refused; and when
// only Origin is there, its scheme must be the request's too. Safe methods
// pass.
func (s *Server) sameOrigin(r *http.Request) error {
	if err := s.csrf.Check(r); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if r.Header.Get("Sec-Fetch-Site") != "" {
		return nil // same-origin or none: Check refused the others
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return errors.New("neither Sec-Fetch-Site nor Origin is set")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if u, err := url.Parse(origin); err != nil || u.Scheme != scheme {
		return fmt.Errorf("Origin %q is not %s://%s", origin, scheme, r.Host)
	}
	return nil
}

// crossOrigin answers 403 for a request sameOrigin or cookieAllowed refused.
func (s *Server) crossOrigin(w http.ResponseWriter, r *http.Request, why error) {
	fail(w, http.StatusForbidden, "cross-origin request refused (%v): the session cookie is good only on requests from this UI's own page; scripts send Authorization: Bearer", why)
}
