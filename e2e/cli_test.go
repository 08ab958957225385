package e2e

// The client verbs as a person uses them: the line the demo prints, pasted
// into another shell; `status -watch` following a promotion; `serve`
// saying where the UI is; help, version and the refusals of promote and
// rollback.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// userEnv is the test's environment without the variables that point a
// client verb somewhere (so only what a test sets counts), plus extra.
func userEnv(extra ...string) []string {
	env := withoutEnv(withoutEnv(os.Environ(), "TANDEM_ADMIN"), "TANDEM_ADMIN_TOKEN")
	return append(env, extra...)
}

// runUser runs the tandem binary in dir with env and returns its exit code,
// stdout and stderr.
func runUser(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	return runIn(t, dir, env, tandemBin, args...)
}

func runIn(t *testing.T, dir string, env []string, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("cannot run %s %v: %v", bin, args, err)
	return -1, "", ""
}

// lineProc is a running tandem whose stdout is read line by line.
type lineProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	done  chan error
	errb  *lockedWriter
}

func startLines(t *testing.T, dir string, env []string, args ...string) *lineProc {
	t.Helper()
	p := &lineProc{t: t, cmd: exec.Command(tandemBin, args...), lines: make(chan string, 4096), done: make(chan error, 1),
		errb: &lockedWriter{b: &strings.Builder{}}}
	p.cmd.Dir, p.cmd.Env, p.cmd.Stderr = dir, env, p.errb
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
		}
	})
	return p
}

// until reads lines until one satisfies ok and returns it, failing after d
// or when the output ends; every line read is appended to seen.
func (p *lineProc) until(d time.Duration, seen *[]string, ok func(string) bool) string {
	p.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l, open := <-p.lines:
			if !open {
				p.t.Fatalf("%v ended before the line expected:\n%s\nstderr:\n%s", p.cmd.Args, strings.Join(*seen, "\n"), p.errb.String())
			}
			*seen = append(*seen, l)
			if ok(l) {
				return l
			}
		case <-deadline:
			p.t.Fatalf("%v: no line expected in %v:\n%s\nstderr:\n%s", p.cmd.Args, d, strings.Join(*seen, "\n"), p.errb.String())
		}
	}
}

// interrupt sends SIGINT (Ctrl-C) and requires exit 0 within 20 s.
func (p *lineProc) interrupt() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		p.t.Fatal(err)
	}
	go func() {
		for range p.lines { // drain, so the reader can finish
		}
	}()
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("%v after Ctrl-C: %v\nstderr:\n%s", p.cmd.Args, err, p.errb.String())
		}
	case <-time.After(20 * time.Second):
		p.t.Fatalf("%v did not stop within 20s of Ctrl-C", p.cmd.Args)
	}
}

// envOfLine reads `export A=x B=y` into ["A=x", "B=y"], as a shell would
// (the demo's values need no quoting; a quote would be a bug here).
func envOfLine(t *testing.T, line string) []string {
	t.Helper()
	f := strings.Fields(strings.TrimSpace(line))
	if len(f) < 2 || f[0] != "export" {
		t.Fatalf("not an export line: %q", line)
	}
	for _, kv := range f[1:] {
		if !strings.Contains(kv, "=") || strings.ContainsAny(kv, `'"$;`) {
			t.Fatalf("export line %q: %q is not a plain NAME=VALUE", line, kv)
		}
	}
	return f[1:]
}

// The demo, run as a newcomer runs it, prints one line to paste into a
// second terminal; with exactly that environment, in a directory with no
// config file, report and promote reach the demo's instance (its admin
// port is random), from the built binary and from `go run` in the source
// tree. The line printed at the end is the same line. Ctrl-C stops the
// demo with exit 0.
func TestDemoPastedLineWorks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo's story (about 15 s)")
	}
	data := filepath.Join(t.TempDir(), "not", "yet", "there")
	demo := startLines(t, t.TempDir(), userEnv(), "demo", "-load", "3s", "-rate", "10", "-data", data)
	var seen []string
	demo.until(30*time.Second, &seen, func(l string) bool { return strings.Contains(l, "paste this line") })
	first := demo.until(5*time.Second, &seen, func(string) bool { return true })
	env := envOfLine(t, first)
	if !strings.HasPrefix(env[0], "TANDEM_ADMIN=http://127.0.0.1:") || !strings.HasPrefix(env[1], "TANDEM_ADMIN_TOKEN=") {
		t.Fatalf("the paste line sets %q", env)
	}
	// -data DIR was created, owner-only, and the log file is named.
	logLine := ""
	for _, l := range seen {
		if strings.HasPrefix(strings.TrimSpace(l), "log ") {
			logLine = l
		}
	}
	if want := filepath.Join(data, "tandem.log"); !strings.Contains(logLine, want) {
		t.Errorf("the demo does not say where its log is (%q): %q", want, strings.Join(seen, "\n"))
	}
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("-data %s: %v %v, want a directory with mode 0700", data, fi, err)
	}
	// Wait for the story to end (the demo then keeps running), so that the
	// report has traffic and promote is not undone by the demo's rollback.
	demo.until(90*time.Second, &seen, func(l string) bool {
		return strings.Contains(l, "paste this line") || strings.Contains(l, "Or the CLI")
	})
	last := demo.until(5*time.Second, &seen, func(string) bool { return true })
	if strings.TrimSpace(last) != strings.TrimSpace(first) {
		t.Errorf("the line at the end %q differs from the one at the start %q", last, first)
	}
	demo.until(5*time.Second, &seen, func(l string) bool { return strings.Contains(l, "keeps running") })

	shell := userEnv(env...)
	elsewhere := t.TempDir()
	code, out, errs := runUser(t, elsewhere, shell, "report")
	if code != 0 || !strings.Contains(out, "upload") || !strings.Contains(out, "thumbnail") || errs != "" {
		t.Fatalf("report with the pasted line: exit %d\n%s\nstderr: %s", code, out, errs)
	}
	code, out, errs = runUser(t, elsewhere, shell, "promote", "upload", "10")
	if code != 0 || !strings.Contains(out, "upload: new serves 10%") {
		t.Fatalf("promote upload 10 with the pasted line: exit %d %q %q", code, out, errs)
	}
	code, out, errs = runUser(t, elsewhere, shell, "status", "upload")
	if code != 0 || !strings.Contains(out, "serve_new 10%") || !strings.Contains(out, `cli   promote`) {
		t.Fatalf("status after promote: exit %d\n%s\nstderr: %s", code, out, errs)
	}
	// The same from a source checkout, as the line suggests.
	if goBin, err := exec.LookPath("go"); err == nil {
		code, out, errs = runIn(t, "..", shell, goBin, "run", "./cmd/tandem", "report", "-route", "upload")
		if code != 0 || !strings.Contains(out, "upload") {
			t.Fatalf("go run ./cmd/tandem report with the pasted line: exit %d\n%s\nstderr: %s", code, out, errs)
		}
	}
	demo.interrupt()
}

// tandem status -watch against a running `tandem serve`, found through
// -config alone (admin.listen and the token in data_dir): a promotion made
// meanwhile shows in a later snapshot; snapshots are separated by a blank
// line when stdout is not a terminal; -json gives one document per line;
// Ctrl-C ends the watch with exit 0.
func TestCLIStatusWatch(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	c := startServe(t, legacy.URL, newb.URL, "    sticky: header:X-User-Id")
	cfg := c.s.cfgPath
	dir := t.TempDir()
	env := userEnv()

	w := startLines(t, dir, env, "status", "-watch", "-interval", "200ms", "-config", cfg)
	var seen []string
	w.until(15*time.Second, &seen, func(l string) bool { return strings.Contains(l, "serve_new 0%") })
	if code, out, errs := runUser(t, dir, env, "promote", "up", "25", "-config", cfg); code != 0 {
		t.Fatalf("promote: exit %d %q %q", code, out, errs)
	}
	n := len(seen)
	w.until(15*time.Second, &seen, func(l string) bool { return strings.Contains(l, "serve_new 25%") })
	// The promotion's event, with the CLI's default reason, is among the
	// last events of that snapshot.
	w.until(5*time.Second, &seen, func(l string) bool { return strings.Contains(l, `cli: promote to 25% (by `) })
	w.interrupt()
	after := strings.Join(seen[n:], "\n")
	if !strings.Contains(after, "\n\n") || !strings.Contains(after, "every 200ms") {
		t.Errorf("snapshots not separated by a blank line with a heading:\n%s", after)
	}
	all := strings.Join(seen, "\n")
	for _, want := range []string{"route up", "breakers: legacy closed, new closed", "last events:", "ramp: none"} {
		if !strings.Contains(all, want) {
			t.Errorf("status -watch lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "instances") {
		t.Errorf("status shows instances, which the API does not give:\n%s", all)
	}

	// -json: one document per line, each a whole snapshot.
	j := startLines(t, dir, env, "status", "-watch", "-json", "-interval", "200ms", "-config", cfg)
	var docs []string
	var ats []time.Time
	for len(ats) < 3 {
		line := j.until(15*time.Second, &docs, func(string) bool { return true })
		var snap struct {
			At     time.Time `json:"at"`
			Routes []struct {
				Name     string            `json:"name"`
				ServeNew float64           `json:"serve_new"`
				Breakers map[string]string `json:"breakers"`
			} `json:"routes"`
			Events []struct {
				Kind string `json:"kind"`
			} `json:"events"`
		}
		if err := json.Unmarshal([]byte(line), &snap); err != nil {
			t.Fatalf("-watch -json line is not one JSON document: %v\n%s", err, line)
		}
		if len(snap.Routes) != 1 || snap.Routes[0].ServeNew != 25 || snap.Routes[0].Breakers["new"] != "closed" || len(snap.Events) == 0 {
			t.Fatalf("snapshot %s", line)
		}
		ats = append(ats, snap.At)
	}
	j.interrupt()
	if !ats[1].After(ats[0]) || !ats[2].After(ats[1]) {
		t.Errorf("snapshot times do not advance: %v", ats)
	}

	// On a terminal (script(1) gives it one), each snapshot clears the
	// screen and draws from the top instead of scrolling.
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("script(1) is missing: apt-get install -y -q bsdutils")
		}
		t.Skip("script(1) is missing (apt-get install -y -q bsdutils): the terminal redraw is not checked")
	}
	tty := exec.Command(scriptBin, "-qfec", tandemBin+" status -watch -interval 200ms -config "+cfg, "/dev/null")
	tty.Dir, tty.Env = dir, env
	var ttyOut lockedWriter
	ttyOut.b = &strings.Builder{}
	tty.Stdout, tty.Stderr = &ttyOut, &ttyOut
	if err := tty.Start(); err != nil {
		t.Fatal(err)
	}
	defer tty.Process.Kill()
	const clear = "\033[H\033[2J"
	if !pollUntil(15*time.Second, func() bool { return strings.Count(ttyOut.String(), clear) >= 2 }) {
		t.Fatalf("on a terminal, no two snapshots each clearing the screen:\n%q", ttyOut.String())
	}
	tty.Process.Kill()
	tty.Wait()
	for _, snap := range strings.Split(ttyOut.String(), clear)[1:] {
		if strings.HasPrefix(snap, "\n") {
			t.Errorf("a redrawn snapshot starts with a blank line: %q", snap)
		}
	}
}

// promote and rollback as a user types them: a percentage out of range is
// refused before anything is sent (exit 2); a rollback at 0% says there is
// nothing to roll back (exit 0, no event); the default reason names the CLI
// and the user; a bare host:port is an address; a malformed one is one
// line saying what is wrong (exit 2).
func TestCLIPromoteRollbackAnswers(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	c := startServe(t, legacy.URL, newb.URL, "")
	dir := t.TempDir()
	env := userEnv("TANDEM_ADMIN_TOKEN=" + c.token)
	v0 := c.rules().Version

	code, out, errs := runUser(t, dir, env, "promote", "up", "150", "-admin", c.s.admin)
	if code != 2 || out != "" || errs != "tandem promote: percent must be between 0 and 100, not 150\n" {
		t.Errorf("promote up 150: exit %d %q %q", code, out, errs)
	}
	// The server's own answer to 150 names the route and the field.
	status, body := c.api("POST", "/api/v1/routes/up/promote", `{"percent": 150, "reason": "x"}`)
	if status != 400 || !strings.Contains(string(body), `route \"up\": serve_new 150 must be within 0..100`) || strings.Contains(string(body), "routes[") {
		t.Errorf("API promote 150: %d %s", status, body)
	}
	code, out, errs = runUser(t, dir, env, "rollback", "up", "-admin", c.s.admin)
	if code != 0 || out != "up is already at 0%: nothing to roll back (rules version 1)\n" || errs != "" {
		t.Errorf("rollback at 0%%: exit %d %q %q", code, out, errs)
	}
	if v := c.rules().Version; v != v0 {
		t.Errorf("refused or empty changes made version %d (was %d)", v, v0)
	}
	code, out, errs = runUser(t, dir, env, "promote", "up", "5", "-admin", c.s.admin) // bare host:port
	if code != 0 || !strings.HasPrefix(out, "up: new serves 5%") {
		t.Fatalf("promote up 5 -admin host:port: exit %d %q %q", code, out, errs)
	}
	code, out, errs = runUser(t, dir, env, "rollback", "up", "-reason", "p99 doubled", "-admin", "http://"+c.s.admin+"/")
	if code != 0 || !strings.HasPrefix(out, "up: rolled back, new serves 0%") {
		t.Fatalf("rollback: exit %d %q %q", code, out, errs)
	}
	evs := c.events()
	if len(evs) < 2 {
		t.Fatalf("events %+v", evs)
	}
	p, r := evs[len(evs)-2], evs[len(evs)-1]
	if p.Kind != "promote" || p.Actor != "cli" || !strings.HasPrefix(p.Reason, "cli: promote to 5%") {
		t.Errorf("promote event %+v: want the CLI's default reason", p)
	}
	if r.Kind != "rollback" || r.Reason != "p99 doubled" {
		t.Errorf("rollback event %+v", r)
	}
	for _, bad := range []struct{ flag, env, want string }{
		{"http://" + c.s.admin + ":x", "", `-admin "http://` + c.s.admin + `:x" is not an admin address`},
		{"", "TANDEM_ADMIN=ftp://" + c.s.admin, `TANDEM_ADMIN "ftp://` + c.s.admin + `" is not an admin address: the scheme must be http or https`},
	} {
		args := []string{"report"}
		if bad.flag != "" {
			args = append(args, "-admin", bad.flag)
		}
		e := env
		if bad.env != "" {
			e = append(append([]string{}, env...), bad.env)
		}
		code, out, errs := runUser(t, dir, e, args...)
		if code != 2 || out != "" || !strings.HasPrefix(errs, "tandem report: "+bad.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v %s: exit %d %q", args, bad.env, code, errs)
		}
	}
}

// tandem serve says where the UI is, and that URL serves it with the token;
// -h and help go to stdout with exit 0 and a usage error to stderr with
// exit 2; version names the Go version.
func TestCLIServeHelpVersion(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	s := newChildSetup(t, "", legacy.URL, newb.URL, "", "")
	srv := startLines(t, t.TempDir(), userEnv(), "serve", "-config", s.cfgPath)
	var seen []string
	line := srv.until(15*time.Second, &seen, func(l string) bool { return strings.Contains(l, "/ui/") })
	ui := "http://" + s.admin + "/ui/"
	if !strings.Contains(line, "UI at "+ui) {
		t.Fatalf("serve's start-up line %q does not give %s", line, ui)
	}
	token, err := os.ReadFile(filepath.Join(s.dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", ui, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(bytes.ToLower(b), []byte("<html")) {
		t.Errorf("GET %s: %d %.200s", ui, resp.StatusCode, b)
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	<-srv.done

	dir, env := t.TempDir(), userEnv()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"help", "status"}, {"status", "-h"}, {"promote", "--help"}, {"demo", "-h"}} {
		code, out, errs := runUser(t, dir, env, args...)
		if code != 0 || out == "" || errs != "" {
			t.Errorf("tandem %v: exit %d, stdout %d bytes, stderr %q", args, code, len(out), errs)
		}
	}
	if code, out, errs := runUser(t, dir, env, "status", "-wacth"); code != 2 || out != "" || !strings.Contains(errs, "-wacth") {
		t.Errorf("status -wacth: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, _ := runUser(t, dir, env, "version")
	if code != 0 || !strings.HasPrefix(out, "tandem ") || !strings.Contains(out, "built with go1.") {
		t.Errorf("version: exit %d %q", code, out)
	}
}
