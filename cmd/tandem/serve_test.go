package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/app"
	"github.com/tandem-proxy/tandem/config"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// serveUntil's signal loop: SIGHUP reloads the config file (counted as an
// ok reload even when nothing changed) and the instance keeps serving;
// SIGTERM stops it, and serveUntil returns nil once the listeners are
// closed. The end-to-end tests in e2e/ drive app directly, so this is the
// test of what `tandem serve` does with signals.
func TestServeUntilSignals(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	dir := t.TempDir()
	path := filepath.Join(dir, "tandem.yaml")
	cfgText := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: %s
backends:
  legacy: {url: %q}
  new: {url: %q}
routes:
  - name: up
    match: {path_prefix: /}
    legacy: legacy
    new: new
`, filepath.Join(dir, "data"), legacy.URL, newb.URL)
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, errs := config.Load(path)
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	log, _ := newLogger("text", io.Discard)
	in, err := app.Open(cfg, app.Options{ConfigPath: path, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 4)
	done := make(chan error, 1)
	go func() { done <- serveUntil(in, sigs) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			sigs <- syscall.SIGTERM
			<-done
		}
	})
	hc := &http.Client{Timeout: 10 * time.Second}
	reloadsOK := func() int {
		t.Helper()
		resp, err := hc.Get("http://" + in.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), `tandem_rules_reload_total{result="ok"} `); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("reload counter %q: %v", v, err)
				}
				return n
			}
		}
		t.Fatal(`no tandem_rules_reload_total{result="ok"} on /metrics`)
		return 0
	}
	before := reloadsOK()
	sigs <- syscall.SIGHUP
	deadline := time.Now().Add(15 * time.Second)
	for reloadsOK() != before+1 {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP: ok reloads %d, want %d", reloadsOK(), before+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := hc.Get("http://" + in.Addr() + "/after-reload")
	if err != nil {
		t.Fatalf("not serving after SIGHUP: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after SIGHUP: status %d", resp.StatusCode)
	}
	addr := in.Addr()
	sigs <- syscall.SIGTERM
	stopped = true
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serveUntil after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serveUntil did not return 30 s after SIGTERM")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after SIGTERM", addr)
	}
}
