package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The problems of testdata/nine-problems.yaml, in the order validate prints
// them: position, path and a fragment of the message.
var ninePrinted = []struct {
	pos, path, msg, suggestion string
}{
	{"7:1", "limts", `unknown key "limts"`, "limits"},
	{"10:19", "client.header_timeout", `invalid duration "forever"`, ""},
	{"11:15", "client.max_header", `invalid size "big"`, ""},
	{"12:27", "client.underscores_in_headers", `want true or false, got "drop"`, ""},
	{"21:10", "routes[0].new", `unknown backend "nwe"`, "new"},
	{"22:16", "routes[0].serve_new", "150 must be within 0..100", ""},
	{"24:29", "routes[0].compare.ignore_json[1]", `bad path "$.items["`, ""},
	{"25:11", "routes[1].name", `"upload" is also the name of routes[0]`, ""},
	{"29:18", "routes[1].ramp.steps[1]", "1 must be greater than the step before it (5)", ""},
}

// buildTandem builds the binary into dir, as a user has it.
func buildTandem(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "tandem")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBinary runs the built binary in dir and returns stdout, stderr and
// the exit code.
func runBinary(t *testing.T, bin, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return "", "", 0
}

// The built binary, run as a user runs it: every problem of the file in
// one pass, each at its line:column, sorted; -json with the same nine; the
// unclosed [ at its own line; a valid file is ok.
func TestValidateBinaryReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	bin := buildTandem(t, dir)
	nine, err := os.ReadFile("testdata/nine-problems.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tandem.yaml"), nine, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("text", func(t *testing.T) {
		stdout, stderr, code := runBinary(t, bin, dir, "validate", "-config", "tandem.yaml")
		if code != 1 || stdout != "" {
			t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, stdout)
		}
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if len(lines) != len(ninePrinted) {
			t.Errorf("%d lines, want %d:\n%s", len(lines), len(ninePrinted), stderr)
		}
		for i, w := range ninePrinted {
			if i >= len(lines) {
				break
			}
			prefix := "tandem.yaml:" + w.pos + ": " + w.path + ": "
			if !strings.HasPrefix(lines[i], prefix) || !strings.Contains(lines[i], w.msg) {
				t.Errorf("line %d = %q\nwant %q…%q", i+1, lines[i], prefix, w.msg)
			}
			if w.suggestion != "" && !strings.HasSuffix(lines[i], "; did you mean `"+w.suggestion+"`?") {
				t.Errorf("line %d = %q lacks did you mean `%s`?", i+1, lines[i], w.suggestion)
			}
		}
	})

	t.Run("the file as the argument", func(t *testing.T) {
		_, stderr, code := runBinary(t, bin, dir, "validate", "tandem.yaml")
		if code != 1 || strings.Count(stderr, "\n") != len(ninePrinted) {
			t.Errorf("exit %d:\n%s", code, stderr)
		}
	})

	t.Run("json", func(t *testing.T) {
		stdout, _, code := runBinary(t, bin, dir, "validate", "-json", "-config", "tandem.yaml")
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		var got []struct {
			Line, Column  *int
			Path, Message string
			Suggestion    *string
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, stdout)
		}
		if len(got) != len(ninePrinted) {
			t.Fatalf("%d entries, want %d:\n%s", len(got), len(ninePrinted), stdout)
		}
		for i, w := range ninePrinted {
			g := got[i]
			if g.Line == nil || g.Column == nil || g.Suggestion == nil {
				t.Fatalf("entry %d lacks line, column or suggestion:\n%s", i, stdout)
			}
			pos := strings.Join([]string{itoa(*g.Line), itoa(*g.Column)}, ":")
			if pos != w.pos || g.Path != w.path || !strings.Contains(g.Message, w.msg) || *g.Suggestion != w.suggestion {
				t.Errorf("entry %d = %s %s %q %q; want %s %s …%q… %q", i, pos, g.Path, g.Message, *g.Suggestion, w.pos, w.path, w.msg, w.suggestion)
			}
			if strings.Contains(g.Message, "did you mean") || strings.HasPrefix(g.Message, g.Path) {
				t.Errorf("entry %d: message %q repeats the suggestion or the path", i, g.Message)
			}
		}
	})

	t.Run("unclosed [ at its line, not the enclosing block's", func(t *testing.T) {
		// Line 29 is "      steps: [5, 1, 100]"; drop its "]".
		broken := strings.Replace(string(nine), "steps: [5, 1, 100]", "steps: [5, 1, 100", 1)
		var n yaml.Node
		yerr := yaml.Unmarshal([]byte(broken), &n)
		if yerr == nil || strings.Contains(yerr.Error(), "line 29") {
			t.Fatalf("yaml.v3 says %v; this test expects it to name another line", yerr)
		}
		os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte(broken), 0o600)
		_, stderr, code := runBinary(t, bin, dir, "validate", "broken.yaml")
		want := "broken.yaml:29:14: unclosed `[` opened at 29:14"
		if code != 1 || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("exit %d:\n%s\nwant one line starting %q (yaml.v3 said %v)", code, stderr, want, yerr)
		}
		stdout, _, _ := runBinary(t, bin, dir, "validate", "-json", "broken.yaml")
		var got []map[string]any
		if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got) != 1 || got[0]["line"] != 29.0 || got[0]["column"] != 14.0 || got[0]["path"] != "" {
			t.Errorf("json: %v\n%s", err, stdout)
		}
	})

	t.Run("valid file", func(t *testing.T) {
		good := "data_dir: ./data\nbackends: {legacy: {url: \"http://127.0.0.1:9001\"}}\nroutes: [{name: r, legacy: legacy}]\n"
		os.WriteFile(filepath.Join(dir, "good.yaml"), []byte(good), 0o600)
		stdout, stderr, code := runBinary(t, bin, dir, "validate", "-config", "good.yaml")
		if code != 0 || stdout != "good.yaml: ok\n" || stderr != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and \"good.yaml: ok\"", code, stdout, stderr)
		}
		stdout, _, code = runBinary(t, bin, dir, "validate", "-json", "good.yaml")
		if code != 0 || strings.TrimSpace(stdout) != "[]" {
			t.Errorf("json: exit %d, %q; want 0 and []", code, stdout)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		_, stderr, code := runBinary(t, bin, dir, "validate", "-config", "nope.yaml")
		if code != 1 || !strings.HasPrefix(stderr, "nope.yaml: cannot read config:") {
			t.Errorf("exit %d: %q", code, stderr)
		}
	})

	t.Run("serve prints the same nine problems and refuses to start", func(t *testing.T) {
		_, stderr, code := runBinary(t, bin, dir, "serve", "-config", "tandem.yaml")
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", code, stderr)
		}
		for _, w := range ninePrinted {
			if !strings.Contains(stderr, w.pos+": "+w.path+": ") || !strings.Contains(stderr, w.msg) {
				t.Errorf("serve's output lacks %s %s %q:\n%s", w.pos, w.path, w.msg, stderr)
			}
		}
	})
}

func itoa(i int) string { return strconv.Itoa(i) }

// Bad flags exit 2; -h exits 0.
func TestValidateFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"validate", "a.yaml", "b.yaml"}, &out, &errb); code != 2 {
		t.Errorf("two files: exit %d, want 2", code)
	}
	if code := run([]string{"validate", "-config", "a.yaml", "b.yaml"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "not both") {
		t.Errorf("-config and an argument: exit %d, %q", code, errb.String())
	}
	if code := run([]string{"validate", "-h"}, &out, &errb); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
}

// serve refuses an invalid config with exit 1.
func TestServeRefusesInvalidConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("listen: nope\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "-config", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "1:9: listen: \"nope\" is not host:port") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
