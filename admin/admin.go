// Package admin serves tandem's admin listener: health and readiness probes,
// Prometheus metrics, and (behind the bearer token) the API and UI. It reads
// the data plane through small interfaces and never touches requests.
package admin

import (
	"net"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// Server is the admin HTTP server.
type Server struct {
	srv  *fasthttp.Server
	deps Deps
}

// New returns an admin server serving deps.
func New(deps Deps) *Server {
	s := &Server{deps: deps}
	s.srv = &fasthttp.Server{
		Handler:      s.handle,
		Name:         "tandem-admin",
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  60 * time.Second,
	}
	return s
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops the server.
func (s *Server) Shutdown() error { return s.srv.Shutdown() }

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	if strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/ui/") || path == "/ui" ||
		strings.HasPrefix(path, "/debug/pprof/") {
		if s.deps.Token == "" || !tokenOK(ctx.Request.Header.Peek("Authorization"), s.deps.Token) {
			if isUIPath(path) {
				s.uiUnauthorized(ctx) // 401 with the page that asks for the token
				return
			}
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="tandem"`)
			fail(ctx, fasthttp.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		if strings.HasPrefix(path, "/api/v1/") || path == "/api/v1" {
			s.serveAPI(ctx, path)
			return
		}
		if isUIPath(path) {
			s.serveUI(ctx, path)
			return
		}
		if strings.HasPrefix(path, "/debug/pprof/") {
			// Go's profiles (CPU, heap, allocs, goroutines), for operators
			// chasing CPU or memory; behind the token like the API.
			pprofhandler.PprofHandler(ctx)
			return
		}
		fail(ctx, fasthttp.StatusNotFound, "no such endpoint: %s", path)
		return
	}
	switch path {
	case "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case "/readyz":
		ctx.SetContentType("text/plain; charset=utf-8")
		if s.deps.Ready != nil && !s.deps.Ready() {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("not ready\n")
			return
		}
		ctx.SetBodyString("ready\n")
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		if s.deps.Metrics != nil {
			s.deps.Metrics.WritePrometheus(ctx)
		}
		metrics.WriteProcessMetrics(ctx)
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("not found\n")
	}
}
