package realservers

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// missing skips the test, or fails it when CI=true, because a program the
// test needs is not there; how says how to get it.
func missing(t testing.TB, what, how string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI (CI=true): %s", what, how)
	}
	t.Skipf("%s is not installed; skipping (%s)", what, how)
}

// CacheDir is where build.sh puts the Go-based servers:
// $TANDEM_REALSERVERS_CACHE, or $HOME/.cache/tandem-realservers.
func CacheDir() string {
	if d := os.Getenv("TANDEM_REALSERVERS_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "tandem-realservers")
}

// FreePort returns a port on 127.0.0.1 that was free a moment ago. The
// servers started here take a port number on their command line or in their
// config, so the port is closed again before they bind it; a clash shows as
// a start-up failure with the server's own message.
func FreePort(t testing.TB) int {
	t.Helper()
	// A port the kernel hands out for 127.0.0.1:0 is from the ephemeral
	// range, which outgoing connections draw from too: on a loaded machine
	// one of them may take it between this check and the child's bind. So
	// the port is picked at random below that range (10000–32767; Linux's
	// ephemeral range starts at 32768), where only listeners live.
	for i := 0; i < 200; i++ {
		port := 10000 + rand.IntN(32768-10000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatal("cannot find a free port in 10000–32767 after 200 tries")
	return 0
}

// lockedBuffer collects a child's output for the failure message.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 1<<20 {
		return len(p), nil
	}
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Process is a server started by this package.
type Process struct {
	Name string
	Addr string // 127.0.0.1:PORT
	Dir  string // its own directory: config, logs, temp files
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// URL is http://Addr.
func (p *Process) URL() string { return "http://" + p.Addr }

// Output is what the process wrote to stdout and stderr so far (the first
// MiB).
func (p *Process) Output() string { return p.out.String() }

// start runs cmd as a child in its own process group, waits until addr
// accepts a TCP connection (or the process exits, or 20 s pass), and stops
// it when the test ends: stop is the signal for a graceful stop (nginx's
// master waits for its workers before it exits), then after 10 s the
// process group it leads is killed. logs are extra files whose contents go in
// the failure message.
func start(t testing.TB, name, addr, dir string, cmd *exec.Cmd, stop syscall.Signal, logs ...string) *Process {
	t.Helper()
	p := &Process{Name: name, Addr: addr, Dir: dir, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t, stop) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before listening on %s: %v\n%s%s", name, addr, p.err, p.Output(), tails(logs))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s within 20 s: %v\n%s%s", name, addr, err, p.Output(), tails(logs))
		}
	}
}

func (p *Process) stop(t testing.TB, sig syscall.Signal) {
	select {
	case <-p.done:
		if t.Failed() {
			t.Logf("%s had exited: %v\n%s", p.Name, p.err, p.Output())
		}
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Errorf("%s did not stop within 10 s of %v; killed its process group", p.Name, sig)
	}
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

func tails(files []string) string {
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(&b, "\n(cannot read %s: %v)", f, err)
			continue
		}
		if len(data) > 8<<10 {
			data = data[len(data)-8<<10:]
		}
		fmt.Fprintf(&b, "\n--- %s ---\n%s", f, data)
	}
	return b.String()
}
