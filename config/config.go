// Package config loads and validates tandem's YAML configuration file. It owns
// the file's shape and defaults; the routes inside it belong to package rules.
// It must not import network code beyond address parsing.
//
// Parse decodes the yaml.v3 node tree itself, field by field (decode.go), so
// that it reports every problem in one pass — unknown keys with a "did you
// mean", duplicate keys, wrong types, bad values, then the semantic checks —
// each a *Problem at the line and column of its node. yaml.v3 places syntax
// errors at the enclosing block; syntax.go finds the mistake itself.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/dustin/go-humanize"
	"github.com/tandem-proxy/tandem/internal/strictyaml"
	"github.com/tandem-proxy/tandem/rules"
	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file. Every field documents its default.
type Config struct {
	// Listen is the client-facing listener. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	Admin  Admin  `yaml:"admin"`
	// DataDir holds the diff store, spool, rules state and audit log. Default ./tandem-data.
	DataDir string `yaml:"data_dir"`
	Limits  Limits `yaml:"limits"`
	Client  Client `yaml:"client"`
	// Retention bounds how long stored records are kept.
	Retention Retention `yaml:"retention"`
	// Fleet makes this instance one of several sharing their state in
	// PostgreSQL. Empty database: this instance alone (the default).
	Fleet Fleet `yaml:"fleet"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight requests. Default 30s.
	ShutdownTimeout rules.Duration      `yaml:"shutdown_timeout"`
	Backends        map[string]*Backend `yaml:"backends"`
	// Routes are matched in order; the first match wins; no match gets 404.
	Routes []rules.Route `yaml:"routes"`
}

// Admin configures the admin listener (API, UI, /metrics).
type Admin struct {
	// Listen is the admin listener. Default 127.0.0.1:9901 (loopback).
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token. Empty: env TANDEM_ADMIN_TOKEN, else a
	// generated token written to <data_dir>/admin.token (mode 0600).
	TokenFile string `yaml:"token_file"`
}

// Limits bound what one request and all shadow work may use.
type Limits struct {
	// MaxBody is the largest request body accepted; larger gets 413. Default 1GiB.
	MaxBody Size `yaml:"max_body"`
	// SpoolMemory is the per-request body bytes kept in memory before spooling
	// to disk. Default 1MiB.
	SpoolMemory Size `yaml:"spool_memory"`
	// SpoolDisk is the total disk for spooled shadow bodies; past it the shadow
	// is skipped (spool_full). Default 4GiB.
	SpoolDisk Size `yaml:"spool_disk"`
	// ShadowConcurrency is the number of in-flight shadow requests; past it the
	// shadow is skipped (queue_full). Default 64.
	ShadowConcurrency int `yaml:"shadow_concurrency"`
	// CompareMaxBody is the response bytes kept for comparison; beyond, the
	// bodies are compared by hash and size. Default 32MiB.
	CompareMaxBody Size `yaml:"compare_max_body"`
	// CompareMemory bounds the response bytes held for comparison by all
	// shadow jobs together; past it, further bodies are compared by hash and
	// size only, so a flood of large or endless shadow responses cannot grow
	// the heap. Default 64MiB.
	CompareMemory Size `yaml:"compare_memory"`
	// CompareWorkers is the number of goroutines comparing finished pairs
	// (decoding images, diffing JSON), apart from the shadow workers that
	// send the copies. Fewer than the CPUs, so that serving keeps the rest.
	// Default 0: max(1, GOMAXPROCS/2).
	CompareWorkers int `yaml:"compare_workers"`
	// CompareQueue is the number of finished pairs waiting for a compare
	// worker; past it a pair is dropped, not compared, and counted in
	// tandem_compare_dropped_total{reason="queue_full"}. Default 64.
	CompareQueue int `yaml:"compare_queue"`
	// DecodeMemory bounds the memory of image decoding by all comparisons
	// and heat maps together, reserved from each image's header before it
	// is decoded; a pair that does not fit (after a wait of up to 1 s) is
	// compared by hash and size and counted in
	// tandem_compare_limited_total{reason="decode_budget"}. Default 256MiB.
	DecodeMemory Size `yaml:"decode_memory"`
}

// Retention bounds how long the diff store keeps its records.
type Retention struct {
	// Comparisons is how long the per-request comparison records (the
	// comparisons lookup) are kept; they are also bounded, with the
	// samples, by the store's total size. Default 24h; must be > 0.
	Comparisons rules.Duration `yaml:"comparisons"`
}

// Fleet configures the shared state of several instances (DESIGN.md,
// "Fleet").
type Fleet struct {
	// Database is the PostgreSQL URL (postgres://user@host:5432/db, or a
	// key=value connection string) every instance of the fleet names: the
	// rules history, audit log, noise model, report data, comparisons and
	// samples live there. Empty: this instance alone, with the embedded
	// SQLite store and the files in data_dir.
	Database string `yaml:"database"`
	// Instance is this instance's name in reports, events and the
	// registry; unique in the fleet. Default: the host of listen (the
	// machine's host name when listen is a wildcard or empty host) and the
	// port it is bound to, e.g. "edge-3:8080".
	Instance string `yaml:"instance"`
}

// MaxInstanceName bounds fleet.instance, in bytes.
const MaxInstanceName = 128

// Client configures the client-facing connections.
type Client struct {
	// HeaderTimeout is the time allowed to receive a request's headers. Default 10s.
	HeaderTimeout rules.Duration `yaml:"header_timeout"`
	// BodyTimeout is the time allowed to receive a whole request body. Default 10m.
	BodyTimeout rules.Duration `yaml:"body_timeout"`
	// WriteTimeout is the time allowed to write a whole response. Default 10m.
	WriteTimeout rules.Duration `yaml:"write_timeout"`
	// IdleTimeout is how long an idle keep-alive connection stays open. Default 60s.
	IdleTimeout rules.Duration `yaml:"idle_timeout"`
	// MaxHeader is the largest request header block; larger gets 431. Default 64KiB.
	MaxHeader Size `yaml:"max_header"`
	// UnderscoresInHeaders keeps request headers whose names contain an
	// underscore. Default false: they are dropped before any backend sees
	// them, as nginx does (underscores_in_headers off), because CGI, WSGI,
	// Rack and PHP map both X_Tandem_Shadow and X-Tandem-Shadow to
	// HTTP_X_TANDEM_SHADOW, so a client could forge a header tandem sets.
	// Even when true, a name that equals one of tandem's own headers or a
	// hop-by-hop header once '_' is read as '-' is dropped.
	UnderscoresInHeaders bool `yaml:"underscores_in_headers"`
	// RawSyscalls makes the reads and writes of client and backend
	// connections raw system calls that keep the goroutine's P
	// (internal/rawconn), which saves the thread hand-offs of long copies.
	// Default true; only Linux makes raw calls, elsewhere it changes
	// nothing. False: Go's net package does the reads and writes (kept-alive
	// backend connections are still checked before reuse).
	RawSyscalls bool `yaml:"raw_syscalls"`
}

// Backend is one upstream service.
type Backend struct {
	// URL is the backend's base URL (http://host:port). One of URL or URLs is required.
	URL string `yaml:"url"`
	// URLs lists several instances, balanced by least load.
	URLs []string `yaml:"urls"`
	// Timeout bounds one whole exchange with the backend. Default 30s.
	Timeout rules.Duration `yaml:"timeout"`
	// MaxConns bounds the connections to each instance for served traffic.
	// Shadow traffic has its own pool of limits.shadow_concurrency. Default 1024.
	MaxConns int     `yaml:"max_conns"`
	Breaker  Breaker `yaml:"breaker"`
}

// Breaker configures a backend's circuit breaker. It guards optional traffic
// only: shadow requests to the backend, and serving by a route's new backend
// (which falls back to legacy while it is open). Served legacy traffic is
// never refused by a breaker.
type Breaker struct {
	// ConsecutiveFailures opens the breaker. Default 5. A value of 0 is not
	// allowed; use a large number to make the breaker lenient.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// OpenFor is how long the breaker stays open before letting one probe
	// through (half-open). Default 10s.
	OpenFor rules.Duration `yaml:"open_for"`
}

// Default returns a Config with every documented default and no backends or routes.
func Default() *Config {
	return &Config{
		Listen:  "127.0.0.1:8080",
		Admin:   Admin{Listen: "127.0.0.1:9901"},
		DataDir: "./tandem-data",
		Limits: Limits{
			MaxBody:           1 << 30,
			SpoolMemory:       1 << 20,
			SpoolDisk:         4 << 30,
			ShadowConcurrency: 64,
			CompareMaxBody:    32 << 20,
			CompareMemory:     64 << 20,
			CompareQueue:      64,
			DecodeMemory:      256 << 20,
		},
		Client: Client{
			HeaderTimeout: rules.Duration(10 * time.Second),
			BodyTimeout:   rules.Duration(10 * time.Minute),
			WriteTimeout:  rules.Duration(10 * time.Minute),
			IdleTimeout:   rules.Duration(60 * time.Second),
			MaxHeader:     64 << 10,
			RawSyscalls:   true,
		},
		ShutdownTimeout: rules.Duration(30 * time.Second),
		Retention:       Retention{Comparisons: rules.Duration(24 * time.Hour)},
	}
}

// DefaultBackend returns a Backend with every documented default set.
func DefaultBackend() Backend {
	return Backend{
		Timeout:  rules.Duration(30 * time.Second),
		MaxConns: 1024,
		Breaker:  Breaker{ConsecutiveFailures: 5, OpenFor: rules.Duration(10 * time.Second)},
	}
}

// UnmarshalYAML fills defaults for keys the document leaves out.
func (b *Backend) UnmarshalYAML(n *yaml.Node) error {
	*b = DefaultBackend()
	type plain Backend
	return n.Decode((*plain)(b))
}

// Load reads and parses a configuration file. Every error it returns is a
// *Problem (see Parse).
func Load(path string) (*Config, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{&Problem{Msg: fmt.Sprintf("cannot read config: %v", err)}}
	}
	return Parse(data)
}

// Parse parses and validates a configuration document. It returns every
// problem in one pass — syntax, unknown and duplicate keys (with a
// suggestion for a near miss), wrong types, bad values, and the semantic
// checks of Validate, rules.Validate and compare.Settings.Validate — each
// a *Problem placed at the line and column of the node it is about, sorted
// by position. A syntax error stops the rest: it is the only problem then.
// The Config is meaningful only when there are none.
func Parse(data []byte) (*Config, []error) {
	c, probs := parse(data)
	if len(probs) > 0 {
		errs := make([]error, len(probs))
		for i, p := range probs {
			errs[i] = p
		}
		return nil, errs
	}
	return c, nil
}

// parse decodes and checks data, returning every problem sorted by position.
func parse(data []byte) (*Config, []*Problem) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, []*Problem{syntaxProblem(data, err)}
	}
	if len(root.Content) == 0 {
		return nil, []*Problem{{Line: 1, Column: 1, Msg: "empty document: at least backends and routes are required"}}
	}
	c := Default()
	d := newDecoder()
	d.decode(root.Content[0], reflect.ValueOf(c).Elem(), "", nil)
	if d.visits > maxVisits {
		sortProblems(d.probs) // the rest is not decoded: checking it would only add noise
		return nil, d.probs
	}
	known := func(name string) bool { return c.Backends[name] != nil }
	if d.failedAt("backends") {
		known = func(string) bool { return true } // its problem is reported already
	}
	var backends []string
	for name := range c.Backends {
		backends = append(backends, name)
	}
	sort.Strings(backends)
	for _, err := range c.validate(known) {
		p, ok := err.(*Problem)
		if !ok {
			var se *strictyaml.Error
			if !errors.As(err, &se) {
				p = &Problem{Msg: err.Error()}
			} else {
				p = &Problem{Path: se.Path, Msg: se.Msg}
			}
		}
		p.Path, p.Msg = d.refine(p.Path, p.Msg)
		if d.failedAt(p.Path) {
			continue // a value that could not be read was left at its default
		}
		if m := unknownBackend.FindStringSubmatch(p.Msg); m != nil {
			p.Suggestion = suggest(m[1], backends)
		}
		p.Line, p.Column = d.locate(p.Path)
		d.probs = append(d.probs, p)
	}
	sortProblems(d.probs)
	return c, d.probs
}

// sortProblems sorts by position, keeping the order of problems at one node.
func sortProblems(ps []*Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

var unknownBackend = regexp.MustCompile(`^unknown backend "(.*)"$`)

// Validate checks the whole configuration and returns every problem, each
// a *Problem or a *strictyaml.Error (from rules.Validate) that names its
// path but not its position.
func (c *Config) Validate() []error {
	return c.validate(func(n string) bool { return c.Backends[n] != nil })
}

func (c *Config) validate(backendExists func(string) bool) []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	checkAddr := func(path, addr string) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			bad(path, "%q is not host:port", addr)
			return
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad(path, "%q has an invalid port", addr)
		}
		_ = host
	}
	checkAddr("listen", c.Listen)
	checkAddr("admin.listen", c.Admin.Listen)
	if c.DataDir == "" {
		bad("data_dir", "required")
	}
	l := c.Limits
	positive := func(path string, v int64) {
		if v <= 0 {
			bad(path, "must be greater than 0")
		}
	}
	positive("limits.max_body", int64(l.MaxBody))
	positive("limits.spool_memory", int64(l.SpoolMemory))
	positive("limits.spool_disk", int64(l.SpoolDisk))
	positive("limits.shadow_concurrency", int64(l.ShadowConcurrency))
	positive("limits.compare_max_body", int64(l.CompareMaxBody))
	positive("limits.compare_memory", int64(l.CompareMemory))
	if l.CompareWorkers < 0 {
		bad("limits.compare_workers", "must not be negative (0 means max(1, GOMAXPROCS/2))")
	}
	positive("limits.compare_queue", int64(l.CompareQueue))
	positive("limits.decode_memory", int64(l.DecodeMemory))
	if l.MaxBody > 1<<40 {
		bad("limits.max_body", "%s is more than 1TiB", l.MaxBody)
	}
	positive("client.header_timeout", int64(c.Client.HeaderTimeout))
	positive("client.body_timeout", int64(c.Client.BodyTimeout))
	positive("client.write_timeout", int64(c.Client.WriteTimeout))
	positive("client.idle_timeout", int64(c.Client.IdleTimeout))
	if c.Client.MaxHeader < 4096 || c.Client.MaxHeader > 16<<20 {
		bad("client.max_header", "%s must be within 4KiB..16MiB", c.Client.MaxHeader)
	}
	positive("shutdown_timeout", int64(c.ShutdownTimeout))
	if c.Retention.Comparisons <= 0 {
		bad("retention.comparisons", "must be greater than 0 (how long per-request comparisons are kept; default 24h)")
	}
	if db := c.Fleet.Database; db != "" {
		if msg := checkDatabaseURL(db); msg != "" {
			bad("fleet.database", "%s", msg)
		}
	}
	if n := c.Fleet.Instance; n != "" {
		if len(n) > MaxInstanceName {
			bad("fleet.instance", "is %d bytes; at most %d", len(n), MaxInstanceName)
		} else if strings.IndexFunc(n, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0 {
			bad("fleet.instance", "%q has spaces or control characters; use a name like edge-3:8080", n)
		}
	}
	if len(c.Backends) == 0 {
		bad("backends", "at least one backend is required")
	}
	names := make([]string, 0, len(c.Backends))
	for name := range c.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := c.Backends[name]
		p := "backends." + name
		if b == nil {
			bad(p, "is empty: url is required")
			continue
		}
		switch {
		case b.URL == "" && len(b.URLs) == 0:
			bad(p+".url", "required (or urls)")
		case b.URL != "" && len(b.URLs) > 0:
			bad(p+".urls", "set url or urls, not both")
		}
		for i, u := range b.AllURLs() {
			up := p + ".url"
			if len(b.URLs) > 0 {
				up = fmt.Sprintf("%s.urls[%d]", p, i)
			}
			if err := checkURL(u); err != nil {
				bad(up, "%v", err)
			}
		}
		positive(p+".timeout", int64(b.Timeout))
		positive(p+".max_conns", int64(b.MaxConns))
		positive(p+".breaker.consecutive_failures", int64(b.Breaker.ConsecutiveFailures))
		positive(p+".breaker.open_for", int64(b.Breaker.OpenFor))
	}
	if len(c.Routes) == 0 {
		bad("routes", "at least one route is required")
	}
	errs = append(errs, rules.Validate(c.Routes, backendExists)...)
	return errs
}

// AllURLs returns the backend's instance URLs.
func (b *Backend) AllURLs() []string {
	if b.URL != "" {
		return []string{b.URL}
	}
	return b.URLs
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q has no host", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return fmt.Errorf("URL %q: a path or query is not supported; requests keep their own path", s)
	}
	return nil
}

// Size is a byte count written as an integer or with a unit ("1MiB", "4GiB", "512KB").
type Size int64

// UnmarshalYAML parses a size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	if i, err := strconv.ParseInt(v, 10, 64); err == nil {
		*s = Size(i)
		return nil
	}
	u, err := humanize.ParseBytes(v)
	if err != nil || u > 1<<50 {
		return fmt.Errorf("line %d: invalid size %q (want e.g. 1048576, 1MiB, 4GiB)", n.Line, n.Value)
	}
	*s = Size(u)
	return nil
}

func (s Size) String() string { return humanize.IBytes(uint64(s)) }

// checkDatabaseURL checks the form of fleet.database without connecting
// (and without reading pgpass or service files, as pgx's parser would): a
// postgres:// or postgresql:// URL with a host, or a key=value connection
// string. The message never repeats the value (it may hold a password).
func checkDatabaseURL(db string) string {
	const want = "want postgres://user@host:5432/dbname or key=value pairs such as \"host=db dbname=tandem\""
	lower := strings.ToLower(db)
	if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
		u, err := url.Parse(db)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error quotes the whole URL, password included
			}
			return fmt.Sprintf("is not a valid URL (%v); %s", err, want)
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return "names no host; " + want
		}
		return ""
	}
	if strings.Contains(db, "://") {
		return "is not a PostgreSQL URL (the scheme must be postgres:// or postgresql://); " + want
	}
	if !strings.Contains(db, "=") {
		return "is neither a URL nor key=value pairs; " + want
	}
	return ""
}
