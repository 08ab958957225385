// Package atomicfile replaces small state files atomically and durably: a
// reader sees the old content or the new, never a mix, an empty file or a
// half-written one, and once Write returns nil the new content survives a
// power cut.
//
// Write is the whole sequence: a temporary file in the same directory (so
// the rename stays on one file system), write, chmod, fsync the file,
// close, rename it over the target, fsync the directory (without that, the
// rename itself may be lost on power loss and the old file come back). On
// any failure before the rename the temporary file is removed and the
// target is left as it was.
//
// Create is the same for a file that must not be replaced (the generated
// admin token): link(2) instead of rename, so of two creators one wins.
//
// Prepare, Pending.Rename and SyncDir are the same steps for a caller that
// must do something between writing the new content and putting it in
// place (the rules state appends its audit entry there); Write is exactly
// Prepare, Rename, SyncDir.
//
// The sequence follows cmd/go's internal/renameio (temporary file near the
// target, fsync before rename, remove only if the rename did not happen, a
// glob Pattern for leftovers) plus the directory fsync that renameio and
// google/renameio leave out (they promise atomicity, not durability).
//
// The package is a leaf: it imports nothing from tandem.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// tempSuffix follows the target's base name in a temporary file's name:
// ".noise.json.tmp-123456" is hidden and names the file it will become.
const tempSuffix = ".tmp-"

// Pattern is the glob that matches the temporary files Write or Prepare
// create for path (left behind only by a crash between create and rename).
func Pattern(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+tempSuffix+"*")
}

// RemoveTemps deletes the temporary files a crash left for path. Call it
// once at start-up, before anything writes path.
func RemoveTemps(path string) error {
	names, err := filepath.Glob(Pattern(path))
	if err != nil {
		return fmt.Errorf("cannot list temporary files of %s: %w", path, err)
	}
	var errs []error
	for _, n := range names {
		if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("cannot remove temporary file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Write replaces path with data, mode perm, atomically and durably (see the
// package doc). An existing file at path is replaced whatever its mode; the
// directory must exist. On error, path holds its old content unless the
// error says that only the directory fsync failed (errors.Is(err,
// ErrDirSync)): then path already holds data, but the rename may not survive
// a power cut.
func Write(path string, data []byte, perm fs.FileMode) error {
	p, err := Prepare(path, data, perm)
	if err != nil {
		return err
	}
	if err := p.Rename(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Create is Write for a file that must not be replaced: it puts data in
// place only if path does not exist yet, else it fails with an error that
// wraps fs.ErrExist and leaves path alone. Of two processes creating path
// at once, exactly one succeeds (link(2) is atomic and refuses an existing
// name, as O_EXCL does), and the winner's file is complete when the other
// can see it. The file system must support hard links.
func Create(path string, data []byte, perm fs.FileMode) error {
	p, err := Prepare(path, data, perm)
	if err != nil {
		return err
	}
	err = os.Link(p.tmp, p.path)
	os.Remove(p.tmp)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// ErrDirSync marks the error of a directory fsync: the rename before it was
// done, so the target holds the new content.
var ErrDirSync = errors.New("directory fsync failed")

// Pending is new content for a file, written and fsynced to a temporary
// file in the same directory, not yet in place. Exactly one of Rename or
// Abort must follow.
type Pending struct {
	path, tmp string
}

// Prepare writes data with mode perm to a new temporary file next to path,
// fsyncs and closes it. On error nothing is left behind.
func Prepare(path string, data []byte, perm fs.FileMode) (*Pending, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+tempSuffix+"*")
	if err != nil {
		return nil, fmt.Errorf("cannot create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(what string, err error) (*Pending, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("cannot %s %s: %w", what, path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail("write", err)
	}
	// CreateTemp made the file 0600; perm is applied as given (no umask),
	// before any reader can see the file at path.
	if err := f.Chmod(perm); err != nil {
		return fail("set the mode of", err)
	}
	if err := f.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("cannot close %s: %w", path, err)
	}
	return &Pending{path: path, tmp: tmp}, nil
}

// Rename puts the new content in place by renaming the temporary file over
// the target. The caller fsyncs the directory (SyncDir) for the rename to
// be durable. On error the temporary file is removed and the target is
// unchanged.
func (p *Pending) Rename() error {
	if err := os.Rename(p.tmp, p.path); err != nil {
		os.Remove(p.tmp)
		return fmt.Errorf("cannot replace %s: %w", p.path, err)
	}
	return nil
}

// Abort removes the temporary file; the target is unchanged.
func (p *Pending) Abort() { os.Remove(p.tmp) }

// SyncDir fsyncs directory dir, making renames and creations in it durable.
// Its error wraps ErrDirSync.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open directory %s: %w: %w", dir, ErrDirSync, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot fsync directory %s: %w: %w", dir, ErrDirSync, err)
	}
	return nil
}
