package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/config"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
	"github.com/tandem-proxy/tandem/proxy"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func loadConfig(t *testing.T, text string) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	text = strings.ReplaceAll(text, "{{data}}", filepath.Join(dir, "data"))
	path := filepath.Join(dir, "tandem.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, errs := config.Load(path)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return cfg, path
}

// Open listens, Run serves until its context ends and shuts down, Close
// releases the store; the counters of the requests served reach the store
// in the final flush, after the drain.
func TestOpenRunClose(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfg, path := loadConfig(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
shutdown_timeout: 10s
backends:
  legacy: {url: %q}
  new: {url: %q}
routes: [{name: up, legacy: legacy, new: new, mirror: 100}]
`, legacy.URL, newb.URL))
	var logs syncBuf
	in, err := Open(cfg, Options{ConfigPath: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	const n = 5
	for i := 0; i < n; i++ {
		resp, err := http.Post("http://"+in.Addr()+"/x", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	resp, err := http.Get("http://" + in.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`tandem_requests_total{route="up",served_by="legacy"} 5`, "tandem_rules_reload_total", "tandem_store_queued", "go_goroutines"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := in.Run(context.Background()); err == nil {
		t.Error("a second Run succeeded, want an error")
	}
	// The final flush queued the counters; the store's writer commits them
	// within its flush interval (100 ms).
	st := in.Store()
	deadline := time.Now().Add(10 * time.Second)
	for {
		reps, err := st.Report("up", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(reps) == 1 && reps[0].Requests == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store reports %+v after Run, want %d requests on up (the final flush)", reps, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !strings.Contains(logs.String(), "tandem stopped") {
		t.Errorf("no \"tandem stopped\" line:\n%s", logs.String())
	}
	if _, err := st.Report("up", time.Time{}); err == nil {
		t.Error("store still open after Close")
	}
}

// Close without Run releases the listeners Open took.
func TestCloseWithoutRun(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	cfg, _ := loadConfig(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
backends: {legacy: {url: %q}}
routes: [{name: r, legacy: legacy}]
`, legacy.URL))
	in, err := Open(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	addr, admin := in.Addr(), in.AdminAddr()
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{addr, admin} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts after Close", a)
		}
	}
	if err := in.Run(context.Background()); err == nil {
		t.Error("Run after Close succeeded, want an error")
	}
}

// takenListenConfig returns a config whose listen address ln is already
// taken (until the test ends), so that Open fails after opening the store.
func takenListenConfig(t *testing.T) (*config.Config, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	cfg, _ := loadConfig(t, fmt.Sprintf(`
listen: %s
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
backends: {legacy: {url: %q}}
routes: [{name: r, legacy: legacy}]
`, ln.Addr(), legacy.URL))
	return cfg, ln
}

// Open fails cleanly, naming the address, when the listener is taken.
func TestOpenListenError(t *testing.T) {
	cfg, ln := takenListenConfig(t)
	_, err := Open(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "cannot listen on "+ln.Addr().String()) {
		t.Fatalf("Open = %v, want cannot listen on %s", err, ln.Addr())
	}
	// The store was released: a second Open of the same data_dir works.
	cfg.Listen = "127.0.0.1:0"
	in, err := Open(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("Open after a failed Open: %v", err)
	}
	in.Close()
}

// Every key of the file's limits and client sections reaches the data
// plane's and the backends' Options.
func TestOptionsFromConfig(t *testing.T) {
	cfg, _ := loadConfig(t, `
data_dir: {{data}}
limits: {max_body: 2MiB, spool_memory: 3KiB, spool_disk: 5MiB, shadow_concurrency: 7, compare_max_body: 11KiB,
  compare_memory: 13MiB, compare_workers: 17, compare_queue: 19, decode_memory: 23MiB}
client: {header_timeout: 1s, body_timeout: 2s, write_timeout: 3s, idle_timeout: 4s, max_header: 8KiB,
  underscores_in_headers: true, raw_syscalls: false}
backends:
  b: {url: "http://127.0.0.1:1", timeout: 5s, max_conns: 29, breaker: {consecutive_failures: 31, open_for: 6s}}
routes: [{name: r, legacy: b}]
`)
	got := proxyOptions(cfg)
	want := proxy.Options{
		SpoolDir: filepath.Join(cfg.DataDir, "spool"), MaxBody: 2 << 20, SpoolMemory: 3 << 10, SpoolDisk: 5 << 20,
		ShadowConcurrency: 7, CompareMaxBody: 11 << 10, CompareMemory: 13 << 20, CompareWorkers: 17, CompareQueue: 19,
		DecodeMemory: 23 << 20, HeaderTimeout: time.Second, BodyTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second,
		IdleTimeout: 4 * time.Second, MaxHeader: 8 << 10, UnderscoresInHeaders: true, DisableRawSyscalls: true,
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("proxyOptions:\n got %+v\nwant %+v", got, want)
	}
	bo := backendOptions(cfg, cfg.Backends["b"])
	if len(bo.URLs) != 1 || bo.URLs[0] != "http://127.0.0.1:1" || bo.Timeout != 5*time.Second || bo.MaxConns != 29 ||
		bo.ShadowConns != 7 || bo.BreakerFailures != 31 || bo.BreakerOpenFor != 6*time.Second || !bo.DisableRawSyscalls {
		t.Errorf("backendOptions: %+v", bo)
	}
}

// A job runs on its ticker until stopped, then its final call runs once,
// and stopAll waits for it.
func TestJobsStop(t *testing.T) {
	var js jobs
	ran := make(chan struct{}, 1)
	var finals int
	js.start(&job{name: "test", interval: time.Millisecond, run: func() {
		select {
		case ran <- struct{}{}:
		default:
		}
	}, final: func() { finals++ }})
	<-ran
	js.stopAll()
	if finals != 1 {
		t.Fatalf("final ran %d times, want 1", finals)
	}
	js.stopAll() // nothing left: returns at once
}
