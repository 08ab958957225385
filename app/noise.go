package app

import (
	"fmt"
	"os"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/internal/atomicfile"
)

// noiseFile persists the learner's state (learned and marked noise) in
// data_dir/noise.json, written atomically and durably (atomicfile.Write).
type noiseFile struct {
	path    string
	learner *compare.Learner
}

func (n *noiseFile) load() error {
	atomicfile.RemoveTemps(n.path) // left by a crash mid-save; best effort
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
	return atomicfile.Write(n.path, b, 0o600)
}
