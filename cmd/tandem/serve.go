package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/proxy"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", "serve -config FILE", stderr)
	path := fs.String("config", "tandem.yaml", "configuration file")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	log, err := newLogger(*logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tandem serve: %v\n", err)
		return 2
	}
	cfg, errs := config.Load(*path)
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		}
		return 1
	}
	if err := serve(cfg, log, stop()); err != nil {
		fmt.Fprintf(stderr, "tandem serve: %v\n", err)
		return 1
	}
	return 0
}

// stop returns a channel closed on SIGTERM or SIGINT.
func stop() <-chan struct{} {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() { <-ch; close(done) }()
	return done
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("invalid -log-format %q: want text or json", format)
}

// serve runs the proxy and the admin listener until stopCh is closed, then
// shuts down gracefully within cfg.ShutdownTimeout.
func serve(cfg *config.Config, log *slog.Logger, stopCh <-chan struct{}) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("cannot create data_dir: %w", err)
	}
	bs := map[string]*backends.Backend{}
	for name, bc := range cfg.Backends {
		b, err := backends.New(name, bc, backends.Options{
			ShadowConns: cfg.Limits.ShadowConcurrency,
			OnBreakerChange: func(backend string, from, to backends.State) {
				log.Warn("breaker state change", "backend", backend, "from", from.String(), "to", to.String())
			},
		})
		if err != nil {
			return err
		}
		bs[name] = b
	}
	px, err := proxy.New(proxy.Options{Config: cfg, Backends: bs, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", cfg.Listen, err)
	}
	aln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("cannot listen on admin %s: %w", cfg.Admin.Listen, err)
	}
	if host, _, _ := net.SplitHostPort(cfg.Admin.Listen); !isLoopback(host) {
		log.Warn("admin listener is not on loopback: anyone who can reach it and holds the token can change routing", "listen", cfg.Admin.Listen)
	}
	ad := admin.New(func() bool { return true })
	errCh := make(chan error, 2)
	go func() { errCh <- px.Serve(ln) }()
	go func() { errCh <- ad.Serve(aln) }()
	log.Info("tandem started", "listen", ln.Addr().String(), "admin", aln.Addr().String(),
		"routes", len(cfg.Routes), "rules_version", px.RulesVersion())

	select {
	case <-stopCh:
	case err := <-errCh:
		return fmt.Errorf("listener failed: %w", err)
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	err = px.Shutdown(ctx)
	ad.Shutdown()
	if err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	log.Info("tandem stopped")
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
