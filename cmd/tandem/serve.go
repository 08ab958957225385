package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tandem-proxy/tandem/app"
	"github.com/tandem-proxy/tandem/config"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", "serve -config FILE", stderr)
	path := fs.String("config", "tandem.yaml", "configuration file")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	accessLog := fs.Float64("access-log", 0, "share of requests to log, one line each (0 = none, 0.01 = 1%, 1 = all)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if *accessLog < 0 || *accessLog > 1 {
		fmt.Fprintf(stderr, "tandem serve: -access-log must be within 0..1, not %v\n", *accessLog)
		return 2
	}
	log, err := newLogger(*logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tandem serve: %v\n", err)
		return 2
	}
	cfg, errs := config.Load(*path)
	if len(errs) > 0 {
		for _, p := range problems(errs) {
			fmt.Fprintln(stderr, formatProblem(*path, p)) // as validate prints them
		}
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	in, err := app.Open(cfg, app.Options{ConfigPath: *path, Logger: log, AccessLog: *accessLog})
	if err != nil {
		fmt.Fprintf(stderr, "tandem serve: %v\n", err)
		return 1
	}
	// The listeners are bound: say where a person goes (the logs on stderr
	// have the same addresses, for machines).
	fmt.Fprintf(stdout, "tandem: proxy on http://%s, UI at http://%s/ui/ (admin API and /metrics on the same address)\n",
		dialable(in.Addr()), dialable(in.AdminAddr()))
	if err := serveUntil(in, sigs); err != nil {
		fmt.Fprintf(stderr, "tandem serve: %v\n", err)
		return 1
	}
	return 0
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

// serveUntil runs in until SIGTERM or SIGINT arrives on sigs (SIGHUP
// reloads the config file), then closes it.
func serveUntil(in *app.Instance, sigs <-chan os.Signal) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the signal handler
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				if sig == syscall.SIGHUP {
					in.Reload()
					continue
				}
				cancel()
				return
			}
		}
	}()
	err := in.Run(ctx)
	if cerr := in.Close(); err == nil {
		err = cerr
	}
	return err
}
