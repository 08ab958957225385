package app

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/internal/atomicfile"
)

// noiseFile persists the learner's state (learned and marked noise) in
// data_dir/noise.json, written atomically and durably (atomicfile).
//
// A mark is persisted before it takes effect (mark), and mu makes every
// write of the file one at a time: two marks cannot lose one another (the
// second's snapshot holds the first, which is in force before mu is
// released), and the periodic save cannot put an older snapshot over a
// mark between its write and its Mark.
type noiseFile struct {
	path    string
	learner *compare.Learner
	log     *slog.Logger

	mu sync.Mutex // held for every write of path and for a whole mark
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
	n.mu.Lock()
	defer n.mu.Unlock()
	b, err := n.learner.Snapshot()
	if err != nil {
		return err
	}
	return atomicfile.Write(n.path, b, 0o600)
}

// markError is how mark fails.
type markError struct {
	// bad: the request is wrong (a path that is not a pattern); nothing
	// was written.
	bad bool
	// audited: the audit log records the mark although it was not applied
	// (only when noise.json could not be replaced after the audit entry
	// was written, see mark); the caller records that it was withdrawn.
	audited bool
	err     error
}

func (e *markError) Error() string { return e.err.Error() }
func (e *markError) Unwrap() error { return e.err }

// mark marks path as noise for route, persisted before it takes effect:
//
//  1. the snapshot as it would be with the mark (Learner.SnapshotWithMark,
//     which changes nothing) is written to a temporary file next to
//     noise.json and fsynced (atomicfile.Prepare);
//  2. audit appends the audit event;
//  3. the temporary file replaces noise.json (rename, directory fsync);
//  4. only then Learner.Mark puts the mark in force.
//
// A failure at 1 or 2 (a full or read-only data_dir) leaves the learner,
// noise.json and the audit log as they were: a mark in force always has
// its audit entry and survives a restart. Writing the audit entry between
// the file's write and its rename (as the rules state does for rules.json)
// keeps the rare failure of a rename after the audit (3) from leaving a
// mark in force without an audit entry; mark then says audited.
func (n *noiseFile) mark(route, path, reason string, audit func() error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, err := n.learner.SnapshotWithMark(route, path, reason)
	if err != nil {
		return &markError{bad: true, err: err}
	}
	p, err := atomicfile.Prepare(n.path, b, 0o600)
	if err != nil {
		return &markError{err: err}
	}
	if err := audit(); err != nil {
		p.Abort()
		return &markError{err: err}
	}
	if err := p.Rename(); err != nil {
		return &markError{audited: true, err: err}
	}
	// A failed directory fsync leaves noise.json holding the mark (only
	// its durability through a power cut is in doubt): in force, as the
	// file says, and logged.
	if err := atomicfile.SyncDir(filepath.Dir(n.path)); err != nil && n.log != nil {
		n.log.Warn("noise mark applied, but its file may not survive a power cut", "err", err)
	}
	if err := n.learner.Mark(route, path, reason); err != nil {
		panic(fmt.Sprintf("BUG: Mark refused %q after SnapshotWithMark took it: %v", path, err))
	}
	return nil
}
