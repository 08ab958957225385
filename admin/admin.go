// Package admin serves tandem's admin listener: health and readiness probes,
// Prometheus metrics, and (behind the bearer token) the API and UI. It reads
// the data plane through small interfaces and never touches requests.
package admin

import (
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// Server is the admin HTTP server.
type Server struct {
	srv   *fasthttp.Server
	ready func() bool
}

// New returns an admin server. ready reports readiness for /readyz; nil means always ready.
func New(ready func() bool) *Server {
	s := &Server{ready: ready}
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
	switch string(ctx.Path()) {
	case "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case "/readyz":
		ctx.SetContentType("text/plain; charset=utf-8")
		if s.ready != nil && !s.ready() {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("not ready\n")
			return
		}
		ctx.SetBodyString("ready\n")
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		metrics.WritePrometheus(ctx, true)
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("not found\n")
	}
}
