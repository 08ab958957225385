package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/testbackend"
	"github.com/tandem-proxy/tandem/rules"
)

// fixture is a running proxy in front of real backends on 127.0.0.1.
type fixture struct {
	t      *testing.T
	srv    *Server
	addr   string
	url    string
	client *http.Client
}

// startProxy parses the YAML config (with backend URLs substituted for
// {{name}}), starts the proxy on 127.0.0.1:0 and stops it at cleanup.
func startProxy(t *testing.T, yaml string, urls map[string]string) *fixture {
	t.Helper()
	for name, u := range urls {
		yaml = strings.ReplaceAll(yaml, "{{"+name+"}}", u)
	}
	yaml = strings.ReplaceAll(yaml, "{{data}}", t.TempDir())
	srv, addr := mustServe(t, yaml)
	f := &fixture{
		t:      t,
		srv:    srv,
		addr:   addr,
		url:    "http://" + addr,
		client: newClient(),
	}
	t.Cleanup(f.client.CloseIdleConnections)
	return f
}

// mustServe parses a config and serves it on 127.0.0.1:0.
func mustServe(t testing.TB, yaml string) (*Server, string) {
	t.Helper()
	return mustServeWith(t, yaml, nil)
}

// mustServeWith is mustServe with an observer of comparisons.
func mustServeWith(t testing.TB, yaml string, obs Observer) (*Server, string) {
	t.Helper()
	o := optionsFromYAML(t, yaml)
	o.Observer = obs
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, ln.Addr().String()
}

// optionsFromYAML builds the Options (and backends) a config document
// describes, as package app does: the YAML is these tests' fixture language
// only; the data plane itself takes Options.
func optionsFromYAML(t testing.TB, yaml string) Options {
	t.Helper()
	cfg, errs := config.Parse([]byte(yaml))
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	l, c := cfg.Limits, cfg.Client
	bs := map[string]*backends.Backend{}
	for name, bc := range cfg.Backends {
		b, err := backends.New(name, backends.Options{
			URLs:               bc.AllURLs(),
			Timeout:            bc.Timeout.D(),
			MaxConns:           bc.MaxConns,
			ShadowConns:        l.ShadowConcurrency,
			BreakerFailures:    bc.Breaker.ConsecutiveFailures,
			BreakerOpenFor:     bc.Breaker.OpenFor.D(),
			DisableRawSyscalls: !c.RawSyscalls,
		})
		if err != nil {
			t.Fatal(err)
		}
		bs[name] = b
	}
	return Options{
		Backends:             bs,
		Rules:                &rules.Rules{Version: 1, Routes: cfg.Routes},
		SpoolDir:             filepath.Join(cfg.DataDir, "spool"),
		MaxBody:              int64(l.MaxBody),
		SpoolMemory:          int64(l.SpoolMemory),
		SpoolDisk:            int64(l.SpoolDisk),
		ShadowConcurrency:    l.ShadowConcurrency,
		CompareMaxBody:       int64(l.CompareMaxBody),
		CompareMemory:        int64(l.CompareMemory),
		CompareWorkers:       l.CompareWorkers,
		CompareQueue:         l.CompareQueue,
		DecodeMemory:         int64(l.DecodeMemory),
		HeaderTimeout:        c.HeaderTimeout.D(),
		BodyTimeout:          c.BodyTimeout.D(),
		WriteTimeout:         c.WriteTimeout.D(),
		IdleTimeout:          c.IdleTimeout.D(),
		MaxHeader:            int(c.MaxHeader),
		UnderscoresInHeaders: c.UnderscoresInHeaders,
		DisableRawSyscalls:   !c.RawSyscalls,
	}
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}, Timeout: 60 * time.Second}
}

// basicConfig is a route "up" on /upload with legacy and new.
const basicConfig = `
listen: 127.0.0.1:0
data_dir: {{data}}
backends:
  legacy: {url: "{{legacy}}", timeout: 5s}
  new:    {url: "{{new}}", timeout: 5s}
routes:
  - name: up
    match: {path_prefix: /upload}
    legacy: legacy
    new: new
    mirror: 100
`

// metric returns the value of one sample of the server's metrics.
func (f *fixture) metric(name string) float64 {
	f.t.Helper()
	var buf bytes.Buffer
	f.srv.Metrics().WritePrometheus(&buf)
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(name):]), 64)
			if err != nil {
				f.t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// waitMetric waits until metric name is at least want (shadow work is async).
// It cannot wait for a value to fall (use waitIdle for shadows in flight).
func (f *fixture) waitMetric(name string, want float64) {
	f.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for f.metric(name) < want {
		if time.Now().After(deadline) {
			f.t.Fatalf("metric %s = %v, want %v", name, f.metric(name), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func shadowMetric(route string, outcome exchange.Outcome) string {
	return fmt.Sprintf(`tandem_shadow_total{route=%q,outcome=%q}`, route, outcome)
}

// post sends body (streamed from r, size n or -1) and returns status, response sha256 and size.
func (f *fixture) post(path string, r io.Reader, n int64, hdr map[string]string) (int, string, int64, http.Header) {
	f.t.Helper()
	req, err := http.NewRequest("POST", f.url+path, r)
	if err != nil {
		f.t.Fatal(err)
	}
	req.ContentLength = n
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	if err != nil {
		f.t.Fatalf("reading response: %v", err)
	}
	return resp.StatusCode, hex.EncodeToString(h.Sum(nil)), got, resp.Header
}

// rawExchange writes raw bytes on a new connection and returns what comes back
// until the server closes the connection or 5 s pass.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

var _ = testbackend.PatternReader

// serveTCP accepts connections on a fresh 127.0.0.1 listener until the test
// ends, handing each to handle on a goroutine of its own, and returns the
// listener's address: the accept loop of the raw-TCP backends below.
func serveTCP(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}
