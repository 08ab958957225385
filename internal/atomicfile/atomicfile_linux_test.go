package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs with opts on a new directory. Mounting needs
// root (CAP_SYS_ADMIN); the test skips without it.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): needs CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("cannot unmount %s: %v; detaching", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// A directory that cannot be written (read-only: mode 0500 for a normal
// user; a read-only mount for root, whom modes do not stop): the old file
// stays whole and the error says what could not be done.
func TestWriteReadOnlyDirKeepsOldFile(t *testing.T) {
	var dir string
	if os.Geteuid() == 0 {
		dir = mountTmpfs(t, "size=1m,mode=0700")
	} else {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "noise.json")
	if err := Write(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			t.Skipf("cannot remount read-only: %v", err)
		}
	} else {
		os.Chmod(dir, 0o500)
		defer os.Chmod(dir, 0o700)
	}
	err := Write(path, []byte("new"), 0o600)
	if err == nil || !strings.HasPrefix(err.Error(), "cannot create temporary file for "+path) {
		t.Fatalf("err = %v", err)
	}
	checkFile(t, path, "old", 0o600)
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
}

// A full disk fails the write of the temporary file: the old file stays
// whole, the error wraps ENOSPC, and the partial temporary file is gone.
func TestWriteDiskFullKeepsOldFile(t *testing.T) {
	dir := mountTmpfs(t, "size=64k,mode=0700")
	path := filepath.Join(dir, "rules.json")
	if err := Write(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Write(path, bytes.Repeat([]byte{'x'}, 1<<20), 0o600)
	if !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), "cannot write "+path) {
		t.Fatalf("err = %v, want cannot write …: ENOSPC", err)
	}
	checkFile(t, path, "old", 0o600)
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
}
