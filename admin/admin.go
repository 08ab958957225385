package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Limits of the admin listener.
const (
	// maxBodySize bounds a mutating call's body (413 above it): the 4 MiB
	// fasthttp allowed before the API moved to net/http.
	maxBodySize = 4 << 20
	// maxHeaderBytes bounds a request's header block.
	maxHeaderBytes = 64 << 10
	// shutdownGrace is how long Shutdown waits for calls in flight before
	// closing their connections.
	shutdownGrace = 10 * time.Second
)

// Server is the admin HTTP server. It is an http.Handler: tests drive it
// with httptest, Serve puts it on a listener.
type Server struct {
	deps Deps
	mux  *http.ServeMux
	srv  *http.Server

	sessions *sessionStore               // the UI's signed-in browsers
	signIns  *signInLimiter              // wrong tokens at sign-in
	csrf     *http.CrossOriginProtection // no trusted origins, no bypass
	now      func() time.Time            // the clock of sessions and sign-ins; tests move it
}

// New returns an admin server serving deps.
func New(deps Deps) *Server {
	s := &Server{deps: deps, sessions: newSessionStore(), signIns: newSignInLimiter(),
		csrf: http.NewCrossOriginProtection(), now: time.Now}
	s.mux = s.routes()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		// WriteTimeout counts from the end of the request to the end of
		// the answer, handler included: a CPU profile's default 30 s fits
		// (net/http/pprof refuses a ?seconds= that does not).
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: maxHeaderBytes,
	}
	return s
}

// Serve serves on ln until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server: it stops accepting, waits up to shutdownGrace
// for calls in flight, then closes what is left.
func (s *Server) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return errors.Join(err, s.srv.Close())
	}
	return nil
}

// ServeHTTP answers one admin request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "tandem-admin")
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r) // an endpoint (or the mux's redirect to a clean path)
		return
	}
	s.noEndpoint(w, r)
}

// noEndpoint answers a request that no pattern takes: the mux decides
// between 404 and 405 (and its Allow), this says it in the API's words.
// Under the token's prefixes the answer needs the token first, so without
// it nobody learns which paths and methods exist.
func (s *Server) noEndpoint(w http.ResponseWriter, r *http.Request) {
	private := isPrivatePath(r.URL.Path)
	if private && !s.authorized(r) {
		s.unauthorized(w, r)
		return
	}
	probe := &muxAnswer{header: http.Header{}}
	s.mux.ServeHTTP(probe, r)
	switch {
	case probe.status == http.StatusMethodNotAllowed:
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		if private {
			fail(w, http.StatusMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, allow)
			return
		}
		plain(w, http.StatusMethodNotAllowed, "method not allowed; use "+allow+"\n")
	case probe.status == http.StatusNotFound:
		if private {
			fail(w, http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
			return
		}
		plain(w, http.StatusNotFound, "not found\n")
	default: // the mux's redirect to the clean path (307): passed on as is
		for k, v := range probe.header {
			w.Header()[k] = v
		}
		w.WriteHeader(probe.status)
		w.Write(probe.body)
	}
}

// muxAnswer records what the mux answers when no pattern matches.
type muxAnswer struct {
	header http.Header
	status int
	body   []byte
}

func (m *muxAnswer) Header() http.Header { return m.header }
func (m *muxAnswer) WriteHeader(status int) {
	if m.status == 0 {
		m.status = status
	}
}
func (m *muxAnswer) Write(b []byte) (int, error) {
	m.WriteHeader(http.StatusOK)
	m.body = append(m.body, b...)
	return len(b), nil
}

func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(body))
}
