package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tandemBin is the tandem binary TestMain builds from ./cmd/tandem.
var tandemBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tandem-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tandemBin = filepath.Join(dir, "tandem")
	cmd := exec.Command("go", append(append([]string{"build"}, buildTags()...), "-o", tandemBin, "../cmd/tandem")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build tandem: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildTags passes TANDEM_BUILD_TAGS (a comma-separated list) to the build
// of the binary under test.
func buildTags() []string {
	if t := os.Getenv("TANDEM_BUILD_TAGS"); t != "" {
		return []string{"-tags", t}
	}
	return nil
}
