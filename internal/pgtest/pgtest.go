// Package pgtest starts throw-away PostgreSQL clusters for tests: initdb in a
// temporary directory, pg_ctl on a free 127.0.0.1 port, trust
// authentication for the postgres user on loopback only. As root (CI), the
// cluster runs as the postgres user (runuser), since PostgreSQL refuses to
// run as root. Without the PostgreSQL server binaries a test skips with the
// install command, and fails when CI=true.
package pgtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tandem-proxy/tandem/internal/realservers"
)

const install = "apt-get install -y postgresql"

// binDir finds the directory holding initdb, pg_ctl and createdb: PATH
// first, then Debian's /usr/lib/postgresql/<version>/bin (newest first).
func binDir() (string, bool) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				return filepath.Dir(real), true
			}
			return filepath.Dir(p), true
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, true
		}
	}
	return "", false
}

// Need skips t (fails it with CI=true) when PostgreSQL is not installed.
func Need(t testing.TB) string {
	t.Helper()
	d, ok := binDir()
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI (CI=true): %s", install)
		}
		t.Skipf("PostgreSQL is not installed; skipping (%s)", install)
	}
	return d
}

// Cluster is one running (or stopped) PostgreSQL cluster.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string // parent of data/ and the socket directory
	data    string
	Port    int
	asUser  string // "postgres" when running as root, else ""
	mu      sync.Mutex
	running bool
}

var dbSeq atomic.Int64

// Start initialises and starts a cluster that the test's cleanup stops and
// removes.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := Need(t)
	c := &Cluster{t: t, bin: bin}
	if os.Geteuid() == 0 {
		c.asUser = "postgres"
		if _, err := user.Lookup("postgres"); err != nil {
			t.Fatalf("running as root, PostgreSQL needs the postgres user: %v (%s creates it)", err, install)
		}
	}
	dir, err := os.MkdirTemp("", "tandem-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { c.Stop(); os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the postgres user must reach data/
		t.Fatal(err)
	}
	c.data = filepath.Join(dir, "data")
	if err := os.Mkdir(c.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if c.asUser != "" {
		if out, err := exec.Command("chown", c.asUser, c.data).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v: %s", c.data, err, out)
		}
	}
	c.run("initdb", "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
	c.Port = realservers.FreePort(t)
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = on\nmax_connections = 200\nlog_min_messages = warning\n",
		c.Port, c.data)
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(conf)
	f.Close()
	c.Restart()
	return c
}

// run runs a PostgreSQL program as the cluster's user and fails the test
// with its output on error.
func (c *Cluster) run(prog string, args ...string) {
	c.t.Helper()
	if out, err := c.cmd(prog, args...).CombinedOutput(); err != nil {
		c.t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
}

func (c *Cluster) cmd(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, prog)
	if c.asUser != "" {
		return exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// Stop stops the cluster at once (pg_ctl -m immediate: as a crash or an
// outage looks to clients). Stopping a stopped cluster does nothing.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return
	}
	c.cmd("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop").Run()
	c.running = false
}

// Restart starts a stopped cluster on the same port and data.
func (c *Cluster) Restart() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return
	}
	var out bytes.Buffer
	cmd := c.cmd("pg_ctl", "-D", c.data, "-l", filepath.Join(c.data, "server.log"), "-w", "-t", "60", "start")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.data, "server.log"))
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out.String(), log)
	}
	c.running = true
}

// Addr is the cluster's host:port.
func (c *Cluster) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)) }

// URL is a connection URL for database db as the postgres user.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", c.Addr(), db)
}

// NewDatabase creates an empty database with a unique name and returns its
// URL.
func (c *Cluster) NewDatabase() string {
	c.t.Helper()
	name := fmt.Sprintf("tandem_%d_%d", os.Getpid(), dbSeq.Add(1))
	c.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "postgres", name)
	return c.URL(name)
}
