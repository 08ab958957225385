package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tandem validate prints every problem with its line and exits 1.
func TestValidateReportsEveryProblemWithLine(t *testing.T) {
	dir := t.TempDir()
	bad := `listen: 127.0.0.1:8080
limits:
  max_body: lots
  shadow_concurency: 4
backends:
  legacy: {url: "ftp://x"}
routes:
  - name: images
    legacy: legacy
    new: missing
    serve_new: 101
    sticky: header
`
	path := filepath.Join(dir, "bad.yaml")
	os.WriteFile(path, []byte(bad), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"validate", "-config", path}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	got := errb.String()
	for _, want := range []string{
		"line 3:", "invalid size", // max_body
		"line 4:", `unknown key "shadow_concurency"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// Semantic errors come once the document decodes.
	fixed := strings.Replace(strings.Replace(bad, "  max_body: lots\n", "", 1), "  shadow_concurency: 4\n", "", 1)
	os.WriteFile(path, []byte(fixed), 0o600)
	errb.Reset()
	if code := run([]string{"validate", "-config", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	got = errb.String()
	for _, want := range []string{
		`line 4: backends.legacy.url: URL "ftp://x": scheme must be http or https`,
		`line 8: routes[0].new: unknown backend "missing"`,
		`line 9: routes[0].serve_new: 101 must be within 0..100`,
		`line 10: routes[0].sticky: invalid sticky "header"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	good := "data_dir: /tmp/x\nbackends: {legacy: {url: \"http://127.0.0.1:9001\"}}\nroutes: [{name: r, legacy: legacy}]\n"
	os.WriteFile(path, []byte(good), 0o600)
	out.Reset()
	if code := run([]string{"validate", "-config", path}, &out, &errb); code != 0 || !strings.Contains(out.String(), "ok") {
		t.Fatalf("valid file: exit %d, %q", code, out.String())
	}
}

// serve refuses an invalid config with exit 1.
func TestServeRefusesInvalidConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("listen: nope\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "-config", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "listen") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
