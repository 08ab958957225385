package app

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-proxy/tandem/compare"
)

// noiseFile persists the learner's state (learned and marked noise) in
// data_dir/noise.json, written atomically.
type noiseFile struct {
	path    string
	learner *compare.Learner
}

func (n *noiseFile) load() error {
	b, err := os.ReadFile(n.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", n.path, err)
	}
	if err := n.learner.Restore(b); err != nil {
		bad := fmt.Sprintf("%s.corrupt", n.path)
		os.Rename(n.path, bad)
		return fmt.Errorf("%s is unreadable (moved to %s; noise will be learned again): %w", n.path, bad, err)
	}
	return nil
}

func (n *noiseFile) save() error {
	b, err := n.learner.Snapshot()
	if err != nil {
		return err
	}
	return writeFileAtomic(n.path, b)
}

// writeFileAtomic writes via a synced temp file and a rename.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
