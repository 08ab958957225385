package rulestore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tandem-proxy/tandem/internal/atomicfile"
	"github.com/tandem-proxy/tandem/rules"
)

// commitLocked persists r as rules.json with its audit event: it saves the
// current version as rules.json.prev (if savePrev, with atomicfile.Write),
// writes and fsyncs a temporary file (atomicfile.Prepare), appends ev (if not nil) to the audit log, renames the
// temporary file over rules.json and fsyncs the directory. A failure before
// the rename undoes what was done (the temporary file is removed, the audit
// entry truncated away) and returns inPlace false. A failure of the final
// directory fsync returns inPlace true: rules.json already holds r.
//
// The audit entry is written first on purpose (write-ahead): a version in
// force always has its entry, so the log never misses a change. A crash
// (or power loss) between the append and the rename (or before the
// directory fsync) therefore leaves an entry for a version that never
// applied; reconcileLocked, at start-up, records that and moves the version
// past it, and nextVersionLocked never hands out a number the log already
// holds, so a version number is never used for two changes.
func (s *State) commitLocked(r rules.Rules, fileDigest string, ev *rules.Event, savePrev bool) (inPlace bool, err error) {
	if savePrev {
		if cur := s.cur.Load(); cur != nil {
			data, err := encodeStateFile(*cur, s.fileDigest)
			if err == nil {
				err = s.check("prev")
			}
			if err == nil {
				err = atomicfile.Write(s.path(PrevRulesFile), data, 0o600)
			}
			if err != nil {
				return false, fmt.Errorf("cannot save %s: %w", PrevRulesFile, err)
			}
		}
	}
	data, err := encodeStateFile(r, fileDigest)
	if err != nil {
		return false, err
	}
	err = s.check("write")
	var pending *atomicfile.Pending
	if err == nil {
		pending, err = atomicfile.Prepare(s.path(RulesFile), data, 0o600)
	}
	if err != nil {
		return false, fmt.Errorf("cannot write %s: %w", RulesFile, err)
	}
	undoAudit := func() {}
	if ev != nil {
		if undoAudit, err = s.appendAudit(*ev); err != nil {
			pending.Abort()
			return false, err
		}
	}
	if err = s.check("rename"); err != nil {
		pending.Abort()
	} else {
		err = pending.Rename() // removes the temporary file if it fails
	}
	if err != nil {
		undoAudit()
		return false, fmt.Errorf("cannot replace %s: %w", RulesFile, err)
	}
	if err := s.syncDir(); err != nil {
		return true, fmt.Errorf("rules version %d is in %s but syncing the directory failed: %w", r.Version, RulesFile, err)
	}
	return true, nil
}

func (s *State) syncDir() error {
	if err := s.check("syncdir"); err != nil {
		return err
	}
	return atomicfile.SyncDir(s.dir)
}

// removeTemps deletes temporary files left by a crash mid-write: those of
// atomicfile, and those named oldTempPrefix by earlier versions.
func (s *State) removeTemps() {
	atomicfile.RemoveTemps(s.path(RulesFile))
	atomicfile.RemoveTemps(s.path(PrevRulesFile))
	names, _ := filepath.Glob(filepath.Join(s.dir, oldTempPrefix+"*"))
	for _, n := range names {
		os.Remove(n)
	}
}

// appendAudit appends e as one JSON line and fsyncs. On failure the file is
// truncated back to its previous length, so no partial line is left for the
// next append to run into. The returned undo does the same after success;
// only when that truncation works does the log forget e's version (see
// nextVersionLocked).
func (s *State) appendAudit(e rules.Event) (undo func(), err error) {
	line, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("cannot encode audit event: %w", err)
	}
	line = append(line, '\n')
	path := s.path(AuditFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open audit log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot append to audit log: %w", err)
	}
	size := st.Size()
	err = s.check("audit")
	if err == nil {
		_, err = f.Write(line)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		if f.Truncate(size) != nil {
			s.noteAuditVersion(e.NewVersion) // the entry may be there
		}
		return nil, fmt.Errorf("cannot append to audit log: %w", err)
	}
	before := s.auditVersion
	s.noteAuditVersion(e.NewVersion)
	return func() {
		if os.Truncate(path, size) == nil {
			s.auditVersion = before
		}
	}, nil
}

// noteAuditVersion records that the audit log may hold version v.
func (s *State) noteAuditVersion(v int64) { s.auditVersion = max(s.auditVersion, v) }

// nextVersionLocked is the version of the next change: one more than both
// the version in force and every version the audit log holds, so that a
// version the log records but that never applied is not used again.
func (s *State) nextVersionLocked() int64 {
	return max(s.cur.Load().Version, s.auditVersion) + 1
}

// reconcileLocked makes the audit log and rules.json (version cur, just
// loaded) agree at start-up, and returns what it did ("" if nothing):
//   - the log holds a version above cur: tandem stopped after logging a
//     change and before installing it (see commitLocked), so that change
//     never applied. The rules in force are re-committed as the version
//     after the highest logged one, with a "recovered" event saying which
//     version never applied; the next change cannot reuse its number.
//   - the log's highest version is below cur (entries lost: the log was
//     truncated, deleted or restored from an older backup): a "recovered"
//     event records that version cur is in force and that the entries
//     after the log's highest version are missing.
func (s *State) reconcileLocked(cur rules.Rules, fileDigest string) (string, error) {
	logged := s.auditVersion
	switch {
	case logged > cur.Version:
		next := rules.Rules{Version: logged + 1, Routes: cur.Routes}
		reason := fmt.Sprintf("the audit log records version %d but %s holds version %d: tandem stopped after logging that change and before applying it, so it never applied; version %d's rules stay in force as version %d",
			logged, RulesFile, cur.Version, cur.Version, next.Version)
		ev := rules.Event{Time: s.now(), Actor: "tandem", Kind: rules.KindRecovered, Reason: reason,
			OldVersion: cur.Version, NewVersion: next.Version,
			Details: map[string]any{"applied_version": cur.Version, "unapplied_version": logged}}
		if _, err := s.commitLocked(next, fileDigest, &ev, true); err != nil {
			return "", fmt.Errorf("cannot reconcile %s (version %d) with the audit log (version %d): %w", RulesFile, cur.Version, logged, err)
		}
		s.cur.Store(&next)
		return reason, nil
	case logged < cur.Version:
		reason := fmt.Sprintf("%s holds version %d but the audit log's last version is %d: the log entries after version %d are missing",
			RulesFile, cur.Version, logged, logged)
		ev := rules.Event{Time: s.now(), Actor: "tandem", Kind: rules.KindRecovered, Reason: reason, NewVersion: cur.Version,
			Details: map[string]any{"applied_version": cur.Version, "last_logged_version": logged}}
		if _, err := s.appendAudit(ev); err != nil {
			return "", err
		}
		return reason, nil
	}
	return "", nil
}

// repairAuditTail ends the audit log with a newline if a crash cut its last
// line short, so that the next entry starts on a line of its own. The cut
// line stays (it is evidence) and readers skip it.
func (s *State) repairAuditTail() error {
	path := s.path(AuditFile)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot open audit log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, st.Size()-1); err != nil {
		return fmt.Errorf("cannot read audit log: %w", err)
	}
	if last[0] == '\n' {
		return nil
	}
	if _, err := f.WriteAt([]byte{'\n'}, st.Size()); err != nil {
		return fmt.Errorf("cannot repair audit log: %w", err)
	}
	return f.Sync()
}

// Events returns audit-log entries at or after since (zero: all), oldest
// first, newest last; limit > 0 keeps only the newest limit. Lines that do
// not decode — a last line cut short by a crash mid-append, or one that a
// later start-up closed with a newline — are skipped. The whole log is read.
func (s *State) Events(since time.Time, limit int) ([]rules.Event, error) {
	var out []rules.Event
	err := s.scanAudit(func(e rules.Event) {
		if e.Time.Before(since) {
			return
		}
		out = append(out, e)
		if limit > 0 && len(out) >= 2*limit+64 {
			out = append(out[:0:0], out[len(out)-limit:]...)
		}
	})
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, err
}

func (s *State) scanAudit(f func(rules.Event)) error {
	file, err := os.Open(s.path(AuditFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read audit log: %w", err)
	}
	defer file.Close()
	r := bufio.NewReaderSize(file, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var e rules.Event
			if json.Unmarshal(bytes.TrimSpace(line), &e) == nil {
				f(e)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read audit log: %w", err)
		}
	}
}

// highestAuditVersion returns the highest rules version in the audit log.
func (s *State) highestAuditVersion() (int64, error) {
	var v int64
	err := s.scanAudit(func(e rules.Event) { v = max(v, e.NewVersion) })
	return v, err
}

// routesDigest identifies a set of routes by their persisted form; "" if
// they cannot be encoded (such routes never validate).
func routesDigest(rs []rules.Route) string {
	b, err := json.Marshal(rs)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sameRoutes reports whether a and b persist identically.
func sameRoutes(a, b []rules.Route) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// summarize describes what changed from old to neu as two short texts, the
// old side and the new side: "serve_new 5" and "serve_new 25" when only
// route's serve_new changed, else per route "images: serve_new 5, mirror
// 100"; added and removed routes, other changed fields and a new order are
// named too.
func summarize(old, neu []rules.Route, route string) (string, string) {
	byName := func(rs []rules.Route) map[string]*rules.Route {
		m := make(map[string]*rules.Route, len(rs))
		for i := range rs {
			m[rs[i].Name] = &rs[i]
		}
		return m
	}
	om, nm := byName(old), byName(neu)
	var oldParts, newParts []string
	type side struct{ name, o, n string }
	var changed []side
	for i := range neu {
		n := &neu[i]
		o, ok := om[n.Name]
		if !ok {
			changed = append(changed, side{n.Name, "absent", fmt.Sprintf("added (serve_new %s, mirror %s)", fmtPercent(n.ServeNew), fmtPercent(n.Mirror))})
			continue
		}
		var op, np []string
		if o.ServeNew != n.ServeNew {
			op, np = append(op, "serve_new "+fmtPercent(o.ServeNew)), append(np, "serve_new "+fmtPercent(n.ServeNew))
		}
		if o.Mirror != n.Mirror {
			op, np = append(op, "mirror "+fmtPercent(o.Mirror)), append(np, "mirror "+fmtPercent(n.Mirror))
		}
		if f := otherChanges(*o, *n); f != "" {
			np = append(np, f+" changed")
		}
		if len(np) > 0 {
			changed = append(changed, side{n.Name, strings.Join(op, ", "), strings.Join(np, ", ")})
		}
	}
	for i := range old {
		o := &old[i]
		if _, ok := nm[o.Name]; !ok {
			changed = append(changed, side{o.Name, fmt.Sprintf("serve_new %s, mirror %s", fmtPercent(o.ServeNew), fmtPercent(o.Mirror)), "removed"})
		}
	}
	if len(changed) == 1 && changed[0].name == route {
		return clip(changed[0].o), clip(changed[0].n)
	}
	for _, c := range changed {
		if c.o != "" {
			oldParts = append(oldParts, c.name+": "+c.o)
		}
		newParts = append(newParts, c.name+": "+c.n)
	}
	if order := func(rs []rules.Route) string {
		names := make([]string, len(rs))
		for i := range rs {
			names[i] = rs[i].Name
		}
		return strings.Join(names, ", ")
	}; len(old) == len(neu) && len(changed) == 0 && order(old) != order(neu) {
		oldParts, newParts = append(oldParts, "order "+order(old)), append(newParts, "order "+order(neu))
	}
	return clip(strings.Join(oldParts, "; ")), clip(strings.Join(newParts, "; "))
}

// otherChanges names the fields other than serve_new and mirror that differ.
func otherChanges(o, n rules.Route) string {
	var f []string
	diff := func(name string, a, b any) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			f = append(f, name)
		}
	}
	diff("match", o.Match, n.Match)
	diff("legacy", o.Legacy, n.Legacy)
	diff("new", o.New, n.New)
	diff("secondary", o.Secondary, n.Secondary)
	diff("sticky", o.Sticky, n.Sticky)
	diff("compare", o.Compare, n.Compare)
	diff("ramp", o.Ramp, n.Ramp)
	return strings.Join(f, ", ")
}

func clip(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
