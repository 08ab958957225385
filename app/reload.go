package app

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fsnotify/fsnotify"
	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/rules"
)

// reloadMetrics count config reloads by result.
type reloadMetrics struct{ ok, failed *metrics.Counter }

// Reload re-reads the config file (Options.ConfigPath) and replaces the
// routes if they changed; cmd/tandem calls it on SIGHUP, the watcher on a
// change of the file. An invalid file changes nothing: the errors are
// logged, counted (tandem_rules_reload_total{result="error"}) and audited.
// Without a ConfigPath it does nothing. Safe for concurrent use; reloads
// run one at a time.
func (in *Instance) Reload() {
	if in.path == "" {
		return
	}
	in.reloadMu.Lock()
	defer in.reloadMu.Unlock()
	path, state, log, m := in.path, in.state, in.log, in.reloads
	cfg, errs := config.Load(path)
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
			log.Error("config reload refused", "file", path, "err", e)
		}
		m.failed.Inc()
		state.Record(rules.Event{Actor: "file", Kind: "reload_error", Reason: "invalid config file; the previous rules stay in force",
			Details: map[string]any{"errors": msgs}})
		return
	}
	if !state.FileChanged(cfg.Routes) {
		m.ok.Inc()
		return
	}
	r, changed, err := state.ReplaceFromFile(cfg.Routes)
	if err != nil {
		m.failed.Inc()
		log.Error("config reload refused", "file", path, "err", err)
		var ve *rules.ValidationError
		details := map[string]any{"error": err.Error()}
		if errors.As(err, &ve) {
			details["errors"] = fmt.Sprint(ve.Errs)
		}
		state.Record(rules.Event{Actor: "file", Kind: "reload_error", Reason: "the previous rules stay in force", Details: details})
		return
	}
	m.ok.Inc()
	if changed {
		log.Info("config reloaded", "file", path, "version", r.Version)
	}
}

// watchConfig calls onChange when the config file changes on disk (editors
// replace files by rename, so the directory is watched), from a goroutine of
// its own. It returns that goroutine's stop, which waits for it to end.
// Without fsnotify support, Reload (SIGHUP) still reloads.
func watchConfig(path string, log *slog.Logger, onChange func()) (stop func()) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("config file watching unavailable; use SIGHUP to reload", "err", err)
		return func() {}
	}
	abs, _ := filepath.Abs(path)
	if err := w.Add(filepath.Dir(abs)); err != nil {
		log.Warn("config file watching unavailable; use SIGHUP to reload", "err", err)
		w.Close()
		return func() {}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() { // the config watcher
		defer close(done)
		var debounce <-chan time.Time
		for {
			select {
			case <-quit:
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == abs && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					debounce = time.After(200 * time.Millisecond)
				}
			case <-debounce:
				onChange()
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config watch error", "err", err)
			}
		}
	}()
	return func() { close(quit); w.Close(); <-done }
}
