package rulestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-proxy/tandem/rules"
)

// errCrash stands for the process dying at a persistence step.
var errCrash = errors.New("crash")

// crashAt opens the state in dir with a fault hook that panics at step
// (when armed), runs f, and swallows the panic: what is on disk afterwards
// is what a crash at that step leaves. The crashed State is dropped.
func crashAt(t *testing.T, dir string, c *clock, step string, f func(s *State)) {
	t.Helper()
	armed := false
	s, err := openState(dir, seedRoutes(), validator(), c.now, func(st string) error {
		if armed && st == step {
			panic(errCrash)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if p := recover(); p != errCrash {
			t.Fatalf("no crash at %q (recovered %v)", step, p)
		}
	}()
	armed = true
	f(s)
}

// checkVersionsUnique fails if two audit events that change the rules name
// the same new version, or if the versions in force went down.
func checkVersionsUnique(t *testing.T, s *State) {
	t.Helper()
	seen := map[int64]string{}
	for _, e := range allEvents(t, s) {
		if e.NewVersion == 0 {
			continue
		}
		if prev, dup := seen[e.NewVersion]; dup {
			t.Errorf("version %d used twice: %s and %s (%s)", e.NewVersion, prev, e.Kind, e.Reason)
		}
		seen[e.NewVersion] = e.Kind
	}
	if logged := maxVersion(allEvents(t, s)); s.Current().Version < logged {
		t.Errorf("version in force %d is below the audit log's %d", s.Current().Version, logged)
	}
}

func maxVersion(evs []rules.Event) int64 {
	var v int64
	for _, e := range evs {
		v = max(v, e.NewVersion)
	}
	return v
}

// A crash after the audit entry of version 3 was fsynced and before
// rules.json was replaced (or with the rename lost to a power cut before the
// directory fsync): the next start records that version 3 never applied,
// keeps version 2's rules in force as version 4, and the next change is 5.
// Version 3 is never used for another change.
func TestCrashBetweenAuditAndRename(t *testing.T) {
	for _, how := range []string{"crash before the rename", "rename lost before the directory fsync"} {
		t.Run(how, func(t *testing.T) {
			dir, c := t.TempDir(), newClock()
			s := openTest(t, dir, c)
			if _, _, err := s.Promote("images", 5, "api", "to 5"); err != nil { // version 2
				t.Fatal(err)
			}
			rules2 := readFile(t, filepath.Join(dir, RulesFile))
			if how == "crash before the rename" {
				crashAt(t, dir, c, "rename", func(s *State) { s.Promote("images", 25, "api", "to 25") })
			} else {
				// The whole commit ran, but the rename never reached the disk.
				if _, _, err := s.Promote("images", 25, "api", "to 25"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, RulesFile), rules2, 0o600); err != nil {
					t.Fatal(err)
				}
			}

			evs := allEvents(t, openTestNoReconcile(t, dir))
			if last := evs[len(evs)-1]; last.NewVersion != 3 || last.Kind != rules.KindPromote {
				t.Fatalf("the crash should leave version 3's entry last, got %+v", last)
			}

			s2 := openTest(t, dir, c)
			if rec := s2.Recovered(); !strings.Contains(rec, "version 3") || !strings.Contains(rec, "never applied") {
				t.Errorf("Recovered() = %q, want it to say version 3 never applied", rec)
			}
			cur := s2.Current()
			if cur.Version != 4 || serveNew(cur, "images") != 5 {
				t.Fatalf("after the crash: version %d serve_new %v, want version 4 with version 2's serve_new 5", cur.Version, serveNew(cur, "images"))
			}
			evs = allEvents(t, s2)
			last := evs[len(evs)-1]
			if last.Kind != rules.KindRecovered || last.OldVersion != 2 || last.NewVersion != 4 || last.Actor != "tandem" {
				t.Errorf("last event %+v, want recovered 2 → 4 by tandem", last)
			}
			if got := readFile(t, filepath.Join(dir, RulesFile)); !strings.Contains(string(got), `"version": 4`) {
				t.Errorf("rules.json is not version 4:\n%s", got)
			}
			if tmps, _ := leftoverTemps(dir); len(tmps) > 0 {
				t.Errorf("temporary files left: %v", tmps)
			}
			r, _, err := s2.Promote("images", 25, "api", "to 25 again")
			if err != nil || r.Version != 5 {
				t.Fatalf("next change: version %d err %v, want 5", r.Version, err)
			}
			checkVersionsUnique(t, s2)

			// A further start finds nothing to reconcile.
			s3 := openTest(t, dir, c)
			if rec := s3.Recovered(); rec != "" {
				t.Errorf("second start: Recovered() = %q", rec)
			}
			if n := len(allEvents(t, s3)); n != len(allEvents(t, s2)) {
				t.Errorf("second start appended %d events", n-len(allEvents(t, s2)))
			}
			if s3.Current().Version != 5 {
				t.Errorf("second start: version %d, want 5", s3.Current().Version)
			}
		})
	}
}

// openTestNoReconcile reads the state directory's audit log without
// starting (a State with only dir set can read events).
func openTestNoReconcile(t *testing.T, dir string) *State {
	t.Helper()
	return &State{dir: dir}
}

// A crash at each step of a change leaves a state that starts consistently:
// the version in force is the last applied one or a higher one, the audit
// log names no version twice, and the next change gets a fresh number.
func TestCrashAtEachStepStartsConsistently(t *testing.T) {
	for _, step := range []string{"prev", "write", "audit", "rename", "syncdir"} {
		t.Run(step, func(t *testing.T) {
			dir, c := t.TempDir(), newClock()
			s := openTest(t, dir, c)
			if _, _, err := s.Promote("images", 5, "api", ""); err != nil { // version 2
				t.Fatal(err)
			}
			crashAt(t, dir, c, step, func(s *State) { s.Promote("images", 25, "api", "") })
			s2 := openTest(t, dir, c)
			cur := s2.Current()
			applied := serveNew(cur, "images")
			switch {
			case step == "syncdir": // renamed: version 3 applied
				if cur.Version != 3 || applied != 25 {
					t.Errorf("version %d serve_new %v, want 3 and 25", cur.Version, applied)
				}
			case step == "rename": // logged, not applied
				if cur.Version != 4 || applied != 5 {
					t.Errorf("version %d serve_new %v, want 4 and 5", cur.Version, applied)
				}
			default: // nothing logged nor applied
				if cur.Version != 2 || applied != 5 || s2.Recovered() != "" {
					t.Errorf("version %d serve_new %v recovered %q, want 2 and 5 and nothing", cur.Version, applied, s2.Recovered())
				}
			}
			r, _, err := s2.Promote("images", 50, "api", "")
			if err != nil || r.Version != cur.Version+1 {
				t.Fatalf("next change: version %d err %v, want %d", r.Version, err, cur.Version+1)
			}
			checkVersionsUnique(t, s2)
		})
	}
}

// Audit entries lost (the log truncated or restored from an older backup):
// the start records that rules.json's version is in force and which entries
// are missing, once; the next change continues from rules.json's version.
func TestAuditEntriesMissingAtStart(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	s := openTest(t, dir, c)
	for i, p := range []float64{5, 25, 50} {
		if r, _, err := s.Promote("images", p, "api", ""); err != nil || r.Version != int64(i+2) {
			t.Fatalf("promote %v: %v %v", p, r.Version, err)
		}
	}
	// Keep only the first two entries (versions 1 and 2).
	lines := strings.SplitAfter(string(readFile(t, filepath.Join(dir, AuditFile))), "\n")
	if err := os.WriteFile(filepath.Join(dir, AuditFile), []byte(strings.Join(lines[:2], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir, c)
	if rec := s2.Recovered(); !strings.Contains(rec, "version 4") || !strings.Contains(rec, "missing") {
		t.Errorf("Recovered() = %q, want it to say entries up to version 4 are missing", rec)
	}
	evs := allEvents(t, s2)
	if last := evs[len(evs)-1]; last.Kind != rules.KindRecovered || last.NewVersion != 4 || len(evs) != 3 {
		t.Errorf("events %+v, want a third: recovered, version 4", evs)
	}
	if cur := s2.Current(); cur.Version != 4 || serveNew(cur, "images") != 50 {
		t.Errorf("version %d serve_new %v, want 4 and 50", cur.Version, serveNew(cur, "images"))
	}
	if r, _, err := s2.Promote("images", 100, "api", ""); err != nil || r.Version != 5 {
		t.Errorf("next change: %d %v, want 5", r.Version, err)
	}
	s3 := openTest(t, dir, c)
	if s3.Recovered() != "" || len(allEvents(t, s3)) != 4 {
		t.Errorf("second start: recovered %q, %d events", s3.Recovered(), len(allEvents(t, s3)))
	}
	checkVersionsUnique(t, s3)
}

// In a running state, a logged version whose rename failed and whose audit
// entry could not be taken back is not reused by the next change.
func TestNextVersionSkipsLoggedVersion(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	fail := ""
	s, err := openState(dir, seedRoutes(), validator(), c.now, func(st string) error {
		if st == fail {
			return fmt.Errorf("failing %s", st)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The entry for version 2 is in the log (as if truncating it back
	// failed): the state must not hand out 2 again.
	s.mu.Lock()
	if _, err := s.appendAudit(rules.Event{Actor: "api", Kind: rules.KindPromote, OldVersion: 1, NewVersion: 2}); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	r, _, err := s.Promote("images", 5, "api", "")
	if err != nil || r.Version != 3 {
		t.Fatalf("version %d err %v, want 3", r.Version, err)
	}
	// A rename failure whose audit entry is taken back does not skip.
	fail = "rename"
	if _, _, err := s.Promote("images", 25, "api", ""); err == nil {
		t.Fatal("promote with a failing rename succeeded")
	}
	fail = ""
	if r, _, err := s.Promote("images", 25, "api", ""); err != nil || r.Version != 4 {
		t.Fatalf("after the failure: version %d err %v, want 4", r.Version, err)
	}
}

// leftoverTemps lists the temporary files in the state directory: those of
// atomicfile (".rules.json.tmp-…") and the older ".rules.tmp-…".
func leftoverTemps(dir string) ([]string, error) {
	a, err := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if err != nil {
		return nil, err
	}
	b, err := filepath.Glob(filepath.Join(dir, oldTempPrefix+"*"))
	return append(a, b...), err
}

// A start removes the temporary files a crash left mid-write, of this
// version and of earlier ones, and nothing else.
func TestOpenRemovesLeftoverTemps(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	openTest(t, dir, c)
	left := []string{".rules.json.tmp-123", ".rules.json.prev.tmp-456", oldTempPrefix + "789"}
	for _, n := range left {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keep := filepath.Join(dir, "noise.json")
	os.WriteFile(keep, []byte("{}"), 0o600)
	s := openTest(t, dir, c)
	if tmps, _ := leftoverTemps(dir); len(tmps) > 0 {
		t.Errorf("temporary files left after the start: %v", tmps)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("another file was removed: %v", err)
	}
	if s.Current().Version != 1 {
		t.Errorf("version %d", s.Current().Version)
	}
}
