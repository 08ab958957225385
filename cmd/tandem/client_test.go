package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/config"
)

// adminURL takes a URL or a bare host:port and explains a malformed value
// in one line that names where it came from and what is wrong.
func TestAdminURL(t *testing.T) {
	for _, c := range []struct {
		in, want, bad string // want "" = refused with bad in the message
	}{
		{"127.0.0.1:9901", "http://127.0.0.1:9901", ""},         // the case
		{"http://127.0.0.1:9901/", "http://127.0.0.1:9901", ""}, // trailing slash dropped
		{"https://tandem.internal:8443", "https://tandem.internal:8443", ""},
		{"localhost:9901", "http://localhost:9901", ""},                     // a name, not a scheme
		{"[::1]:9901", "http://[::1]:9901", ""},                             // IPv6
		{"http://proxy.example/tandem/", "http://proxy.example/tandem", ""}, // behind a path prefix
		{" 127.0.0.1:9901 ", "http://127.0.0.1:9901", ""},                   // pasted with spaces
		{"", "", "it is empty"},
		{"ftp://h:1", "", "the scheme must be http or https, not ftp"},
		{"127.0.0.1:99999", "", "the port must be 1..65535"},
		{"127.0.0.1:", "", "the port is empty"},
		{"http://[::1", "", "does not parse as a URL"},
		{"http://", "", "it has no host"},
		{"http://u:p@h:1", "", "must not carry a user name"},
		{"h:1/?x=1", "", "query"},
	} {
		got, err := adminURL("-admin", c.in)
		if c.bad == "" {
			if err != nil || got != c.want {
				t.Errorf("adminURL(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
			continue
		}
		var u *usageError
		if err == nil || !strings.Contains(err.Error(), c.bad) || !strings.HasPrefix(err.Error(), `-admin "`) ||
			strings.Contains(err.Error(), "\n") || !errors.As(err, &u) {
			t.Errorf("adminURL(%q) = %q, %v; want a one-line usage error about %q", c.in, got, err, c.bad)
		}
	}
}

// The admin address: -admin, else TANDEM_ADMIN, else admin.listen of the
// config (a wildcard listener dialled on loopback), else the default.
func TestAdminPrecedence(t *testing.T) {
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:7001"
	wild := config.Default()
	wild.Admin.Listen = "0.0.0.0:7002"
	for _, c := range []struct {
		why, flag, env string
		cfg            *config.Config
		want           string
	}{
		{"flag over everything", "127.0.0.1:7000", "127.0.0.1:7005", cfg, "http://127.0.0.1:7000"},
		{"env over config", "", "127.0.0.1:7005", cfg, "http://127.0.0.1:7005"},
		{"config's admin.listen", "", "", cfg, "http://127.0.0.1:7001"},
		{"wildcard listen dialled on loopback", "", "", wild, "http://127.0.0.1:7002"},
		{"nothing: the default", "", "", nil, defaultAdmin},
	} {
		t.Setenv(AdminEnv, c.env)
		got, err := (&clientFlags{admin: c.flag}).adminBase(c.cfg, "tandem.yaml")
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.why, got, err, c.want)
		}
	}
}

// -config gives the address (admin.listen) and the token (its data_dir's
// admin.token); a -config that does not exist is a usage error, while the
// default ./tandem.yaml is read only when present.
func TestClientFromConfig(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o700)
	os.WriteFile(filepath.Join(data, "admin.token"), []byte("0123456789abcdef0123\n"), 0o600)
	path := filepath.Join(dir, "prod.yaml")
	os.WriteFile(path, []byte(`listen: 127.0.0.1:7080
admin: {listen: 127.0.0.1:7081}
data_dir: `+data+`
backends: {legacy: {url: "http://127.0.0.1:1"}}
routes: [{name: r, match: {path_prefix: /}, legacy: legacy}]
`), 0o600)
	t.Setenv(AdminEnv, "")
	t.Setenv("TANDEM_ADMIN_TOKEN", "")
	c, err := (&clientFlags{config: path}).client()
	if err != nil || c.base != "http://127.0.0.1:7081" || c.token != "0123456789abcdef0123" {
		t.Fatalf("client from -config: %+v, %v", c, err)
	}
	_, err = (&clientFlags{config: filepath.Join(dir, "missing.yaml")}).client()
	var u *usageError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "missing.yaml: no such file") {
		t.Errorf("missing -config: %v", err)
	}
	// Without -config, in a directory with no tandem.yaml: the default
	// address and the token from the environment.
	t.Chdir(t.TempDir())
	t.Setenv("TANDEM_ADMIN_TOKEN", "fedcba9876543210fedc")
	c, err = (&clientFlags{}).client()
	if err != nil || c.base != defaultAdmin || c.token != "fedcba9876543210fedc" {
		t.Fatalf("client without config: %+v, %v", c, err)
	}
}

// Help that was asked for goes to stdout with exit 0, for tandem itself
// and for every verb; a usage error goes to stderr with exit 2.
func TestHelpGoesToStdout(t *testing.T) {
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	runIt := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		if code, out, errs := runIt(args...); code != 0 || !strings.Contains(out, "Commands:") || errs != "" {
			t.Errorf("tandem %v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	for _, n := range names {
		for _, args := range [][]string{{n, "-h"}, {n, "--help"}, {"help", n}} {
			code, out, errs := runIt(args...)
			if code != 0 || !strings.HasPrefix(out, "Usage: tandem "+n) || !strings.Contains(out, "\nFlags:\n") || errs != "" {
				t.Errorf("tandem %v: exit %d, stdout %q, stderr %q", args, code, out, errs)
			}
		}
		code, out, errs := runIt(n, "-no-such-flag")
		if code != 2 || out != "" || !strings.HasPrefix(errs, "flag provided but not defined: -no-such-flag\nUsage: tandem "+n) {
			t.Errorf("tandem %s -no-such-flag: exit %d, stdout %q, stderr %q", n, code, out, errs)
		}
	}
	if code, out, errs := runIt(); code != 2 || out != "" || !strings.Contains(errs, "Commands:") {
		t.Errorf("tandem alone: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, _, errs := runIt("help", "nope"); code != 2 || !strings.Contains(errs, `unknown command "nope"`) {
		t.Errorf("tandem help nope: exit %d, stderr %q", code, errs)
	}
}

// promote refuses a percentage the API would refuse before asking it (the
// address is unreachable: any request would fail differently).
func TestPromotePercentRefusedLocally(t *testing.T) {
	t.Setenv("TANDEM_ADMIN_TOKEN", "0123456789abcdef0123")
	for _, c := range []struct{ pct, want string }{
		{"150", "tandem promote: percent must be between 0 and 100, not 150\n"},
		{"-1", "tandem promote: percent must be between 0 and 100, not -1\n"},
		{"12.345", "tandem promote: percent 12.345 has more than two decimals\n"},
		{"ten", "tandem promote: PERCENT must be a number from 0 to 100, not \"ten\"\n"},
		{"NaN", "tandem promote: PERCENT must be a number from 0 to 100, not \"NaN\"\n"},
	} {
		var out, errb bytes.Buffer
		code := run([]string{"promote", "upload", c.pct, "-admin", "127.0.0.1:1"}, &out, &errb)
		if code != 2 || errb.String() != c.want || out.Len() != 0 {
			t.Errorf("promote upload %s: exit %d, stderr %q; want 2 and %q", c.pct, code, errb.String(), c.want)
		}
	}
}

// tandem version names the module version and the Go version, from the
// build information.
func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	v := buildVersion()
	if !strings.HasPrefix(out.String(), "tandem "+v.Version+"\n") || !strings.Contains(out.String(), "built with "+v.GoVersion) ||
		!strings.HasPrefix(v.GoVersion, "go1.") {
		t.Errorf("version output %q (build info %+v)", out.String(), v)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// While watching, a look that fails (nothing listens: the instance is
// restarting) is reported on stderr and tried again at the next interval,
// and a stop (Ctrl-C) ends the watch with exit 0.
func TestWatchKeepsTryingAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a port nothing listens on
	c := &apiClient{base: "http://" + addr, token: "0123456789abcdef0123", hc: newHTTPClient()}
	var out, errb syncBuffer
	stop := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() { done <- watchStatus(c, "", 100*time.Millisecond, false, false, &out, &errb, stop) }()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(errb.String(), "\n") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no three failed looks in 10s: %q", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop <- os.Interrupt
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after stop", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not stop")
	}
	for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if !strings.HasPrefix(l, "tandem status: admin API unreachable at http://"+addr) || !strings.HasSuffix(l, "(trying again in 100ms)") {
			t.Errorf("failed look reported as %q", l)
		}
	}
	if out.String() != "" {
		t.Errorf("stdout %q with no snapshot", out.String())
	}
}
