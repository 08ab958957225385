package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-proxy/tandem/compare"
)

// A file that is not a store is refused with an error naming it.
func TestOpenCorrupt(t *testing.T) {
	for _, c := range []struct {
		why  string
		data []byte
	}{
		{"not SQLite at all", []byte("this is not a database, just some text that is long enough")},
		{"truncated header", []byte("SQLite")},
		{"SQLite header, garbage pages", append(append([]byte{}, sqliteHeader...), bytes.Repeat([]byte{0xA5}, 8192)...)},
	} {
		path := filepath.Join(t.TempDir(), "store.db")
		if err := os.WriteFile(path, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{})
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", c.why)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name %s", c.why, err, path)
		}
		t.Logf("%s: %v", c.why, err)
		if got, _ := os.ReadFile(path); !bytes.Equal(got, c.data) {
			t.Errorf("%s: Open changed the file", c.why)
		}
	}
}

// The store's files have mode 0600, and an existing looser file is tightened.
func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "store.db")
	s := openAt(t, path, Options{})
	record(t, s, exch("r", sec(0), compare.OutcomeMismatch, diff(compare.KindJSON, "$.a", false)))
	flush(t, s)
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", f, m)
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("created directory has mode %o, want 700", st.Mode().Perm())
	}
	s.Close()

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path, Options{})
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("reopened file has mode %o, want 600", st.Mode().Perm())
	}
}
