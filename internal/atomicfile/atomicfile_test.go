package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// leftovers lists the temporary files in dir (of any target).
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, ".*"+tempSuffix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func checkFile(t *testing.T, path, want string, mode fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s holds %q, want %q", path, b, want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != mode {
		t.Errorf("%s has mode %v, want %v", path, got, mode)
	}
}

// Write creates or replaces the file with exactly the given content and
// mode (not narrowed by the umask, not kept from the old file), and leaves
// no temporary file.
func TestWriteContentAndMode(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "noise.json")
	for _, c := range []struct {
		why  string
		data string
		perm fs.FileMode
	}{
		{"a new file gets perm, umask or not", `{"v":1}`, 0o644},
		{"a replaced file takes the new mode, not the old one", `{"v":2}`, 0o600},
		{"empty content is a file of zero bytes", ``, 0o600},
	} {
		if err := Write(path, []byte(c.data), c.perm); err != nil {
			t.Fatalf("%s: %v", c.why, err)
		}
		checkFile(t, path, c.data, c.perm)
		if l := leftovers(t, dir); len(l) > 0 {
			t.Errorf("%s: temporary files left: %v", c.why, l)
		}
	}
}

// A rename that fails (the target is a non-empty directory) leaves the
// target as it was and no temporary file; the error names the target.
func TestWriteRenameFailureKeepsTarget(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := os.MkdirAll(filepath.Join(path, "inside"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := Write(path, []byte("new"), 0o600)
	if err == nil || !strings.HasPrefix(err.Error(), "cannot replace "+path) {
		t.Fatalf("err = %v, want cannot replace %s: …", err, path)
	}
	if st, err := os.Stat(filepath.Join(path, "inside")); err != nil || !st.IsDir() {
		t.Errorf("the target changed: %v", err)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
}

// A directory that does not exist: a clear error, nothing created.
func TestWriteMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "noise.json")
	err := Write(path, []byte("x"), 0o600)
	if err == nil || !strings.Contains(err.Error(), "cannot create temporary file for "+path) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

// Prepare writes nothing at the target until Rename; Abort removes the
// temporary file; RemoveTemps clears what a crash left.
func TestPrepareRenameAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.json")
	if err := Write(path, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(path, []byte("v2"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "v1", 0o600)
	if l := leftovers(t, dir); len(l) != 1 || !strings.HasPrefix(filepath.Base(l[0]), ".rules.json.tmp-") {
		t.Fatalf("pending temporary file: %v", l)
	}
	p.Abort()
	checkFile(t, path, "v1", 0o600)
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("Abort left %v", l)
	}

	p, err = Prepare(path, []byte("v3"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Rename(); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "v3", 0o600)

	// A crash between Prepare and Rename leaves a temporary file.
	if _, err := Prepare(path, []byte("v4"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, ".other.tmp-1")
	os.WriteFile(other, nil, 0o600)
	if err := RemoveTemps(path); err != nil {
		t.Fatal(err)
	}
	if l := leftovers(t, dir); len(l) != 1 || l[0] != other {
		t.Errorf("after RemoveTemps: %v, want only %s (another file's)", l, other)
	}
	checkFile(t, path, "v3", 0o600)
}

func TestSyncDirError(t *testing.T) {
	err := SyncDir(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, ErrDirSync) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want ErrDirSync and ErrNotExist", err)
	}
}

// Create never replaces: the second creator gets ErrExist and the first
// one's content stays; of many racing creators exactly one wins, and the
// file holds the winner's complete content.
func TestCreateExclusive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.token")
	if err := Create(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Create(path, []byte("second"), 0o600)
	if !errors.Is(err, fs.ErrExist) || !strings.HasPrefix(err.Error(), "cannot create "+path) {
		t.Fatalf("second Create: %v, want ErrExist", err)
	}
	checkFile(t, path, "first", 0o600)

	race := filepath.Join(dir, "race.token")
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Create(race, []byte(fmt.Sprintf("token-%02d", i)), 0o600)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("creators %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("creator %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no creator succeeded")
	}
	checkFile(t, race, fmt.Sprintf("token-%02d", winner), 0o600)
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
}
