package rulestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandem-proxy/tandem/rules"
)

// File names inside the state directory.
const (
	RulesFile     = "rules.json"      // the current rules
	PrevRulesFile = "rules.json.prev" // the version before the current one
	AuditFile     = "audit.log"       // JSON lines, append-only
	// oldTempPrefix named temporary files before internal/atomicfile;
	// OpenState still removes such leftovers.
	oldTempPrefix = ".rules.tmp-"
)

// State is the versioned, persisted routing rules of one tandem instance,
// with their audit log. It is safe for concurrent use.
//
// Every change is validated, given the next version, written atomically to
// dir/rules.json (temporary file, fsync, rename, fsync of the directory),
// after the version it replaces has been saved as dir/rules.json.prev, and
// appended to dir/audit.log (fsync per entry) before it becomes current.
// If any of that fails, the current rules stay as they were and the error is
// returned; rules.json is never left half-written. The one exception: if
// only the final fsync of the directory fails, the rename has happened, so
// the new version becomes current (memory follows the file) and the error is
// still returned.
//
// Start-up (OpenState):
//   - no rules.json: the seed (the config file's routes) becomes the first
//     version, event "seed". Its version is 1, or one more than the highest
//     version in audit.log if rules.json was deleted by hand, so versions
//     never go back.
//   - rules.json present and valid: it is loaded; the seed is not applied.
//     The caller compares the config file's routes with FileChanged and
//     calls ReplaceFromFile when they changed.
//   - rules.json corrupt (truncated, garbage, not a rules document): it is
//     renamed to rules.json.corrupt-<unix seconds>, never overwritten, and
//     rules.json.prev, if it parses and validates, becomes the next version,
//     event "recovered"; Recovered says so. Without a usable
//     rules.json.prev, OpenState refuses with an error naming both files and
//     how to fix them, and leaves the corrupt file where it is.
//   - rules.json and the audit log disagree (a crash between logging a
//     change and applying it, or lost log entries): the audit log is made
//     to say so, and a logged version that never applied is never reused
//     (see reconcileLocked); Recovered says so.
//   - rules.json parses but does not validate (the config's backends
//     changed): if the config file's routes changed too and are valid, they
//     replace the stored rules as a new version (event "reload", actor
//     "file"); else OpenState refuses with every problem.
type State struct {
	dir      string
	validate rules.Validator
	now      func() time.Time
	// fault, when set (tests only), is called before each persistence step
	// ("prev", "write", "audit", "rename", "syncdir"); an error fails it.
	fault func(step string) error

	mu         sync.Mutex // serialises changes and audit appends
	cur        atomic.Pointer[rules.Rules]
	fileDigest string // guarded by mu: digest of the routes last applied from the config file
	recovered  string
	// auditVersion is the highest rules version the audit log may hold
	// (guarded by mu); see nextVersionLocked.
	auditVersion int64

	notifyMu sync.Mutex // held while subscribers run, so they see versions in order
	subs     []func(rules.Rules)
}

// stateFile is the on-disk form of rules.json: the rules plus the digest of
// the routes last applied from the config file.
type stateFile struct {
	Version    int64         `json:"version"`
	Routes     []rules.Route `json:"routes"`
	FileRoutes string        `json:"file_routes_sha256,omitempty"`
}

// OpenState opens (creating if needed) the rules state in dir, the data_dir.
// seed is the config file's routes; validate checks routes (nil: Validate
// with every backend name accepted); now is the clock (nil: time.Now). See
// State for what happens to an existing, missing or corrupt rules.json.
func OpenState(dir string, seed []rules.Route, validate rules.Validator, now func() time.Time) (*State, error) {
	return openState(dir, seed, validate, now, nil)
}

func openState(dir string, seed []rules.Route, validate rules.Validator, now func() time.Time, fault func(string) error) (*State, error) {
	if now == nil {
		now = time.Now
	}
	if validate == nil {
		validate = func(rs []rules.Route) []error { return rules.Validate(rs, func(string) bool { return true }) }
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create rules state directory: %w", err)
	}
	s := &State{dir: dir, validate: validate, now: now, fault: fault}
	s.removeTemps()
	if err := s.repairAuditTail(); err != nil {
		return nil, err
	}
	v, err := s.highestAuditVersion()
	if err != nil {
		return nil, err
	}
	s.auditVersion = v
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.path(RulesFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := s.seedLocked(seed); err != nil {
			return nil, err
		}
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("cannot read rules state: %w", err)
	}
	sf, perr := decodeStateFile(data)
	if perr != nil {
		if err := s.recoverLocked(perr); err != nil {
			return nil, err
		}
		return s, nil
	}
	stored := rules.Rules{Version: sf.Version, Routes: sf.Routes}
	s.cur.Store(&stored)
	s.fileDigest = sf.FileRoutes
	if s.recovered, err = s.reconcileLocked(stored, sf.FileRoutes); err != nil {
		return nil, err
	}
	if errs := s.validate(sf.Routes); len(errs) > 0 {
		d := routesDigest(seed)
		if seed != nil && d != sf.FileRoutes && len(s.validate(seed)) == 0 {
			reason := fmt.Sprintf("the config file's routes changed while tandem was stopped and stored version %d no longer validates: %s",
				s.cur.Load().Version, joinErrs(errs))
			ev := rules.Event{Actor: "file", Kind: rules.KindReload, Reason: reason}
			if _, _, err := s.applyLocked(0, ev, &d, func(r *rules.Rules) error { r.Routes = rules.CloneRoutes(seed); return nil }); err != nil {
				return nil, fmt.Errorf("cannot replace the stored rules with the config file's routes: %w", err)
			}
			s.recovered = strings.TrimPrefix(s.recovered+"; "+reason, "; ")
			return s, nil
		}
		return nil, fmt.Errorf("the rules stored in %s (version %d) do not fit the configuration: %s; fix the configuration, or change its routes so that they replace the stored ones",
			s.path(RulesFile), s.cur.Load().Version, joinErrs(errs))
	}
	return s, nil
}

// seedLocked writes the first version from the config file's routes.
func (s *State) seedLocked(seed []rules.Route) error {
	if errs := s.validate(seed); len(errs) > 0 {
		return &rules.ValidationError{Errs: errs}
	}
	version := s.auditVersion + 1
	r := rules.Rules{Version: version, Routes: rules.CloneRoutes(seed)}
	d := routesDigest(seed)
	_, neu := summarize(nil, r.Routes, "")
	ev := rules.Event{Time: s.now(), Actor: "file", Kind: rules.KindSeed, NewVersion: version, New: neu,
		Reason: "first start: the config file's routes seed the rules"}
	if version > 1 {
		ev.Reason = fmt.Sprintf("%s was missing: the config file's routes seed the rules again", RulesFile)
	}
	if _, err := s.commitLocked(r, d, &ev, false); err != nil {
		return fmt.Errorf("cannot write the first rules version: %w", err)
	}
	s.cur.Store(&r)
	s.fileDigest = d
	return nil
}

// recoverLocked handles a rules.json that does not parse.
func (s *State) recoverLocked(perr error) error {
	cur, prev := s.path(RulesFile), s.path(PrevRulesFile)
	fixHint := fmt.Sprintf("restore %s from a backup, or move it aside to start again from the config file's routes (%s keeps the history)",
		cur, s.path(AuditFile))
	data, err := os.ReadFile(prev)
	if err != nil {
		return fmt.Errorf("cannot load rules state: %s is corrupt (%v) and there is no usable %s (%v); %s",
			cur, perr, prev, err, fixHint)
	}
	sf, err := decodeStateFile(data)
	if err != nil {
		return fmt.Errorf("cannot load rules state: %s is corrupt (%v) and %s is corrupt too (%v); %s",
			cur, perr, prev, err, fixHint)
	}
	if errs := s.validate(sf.Routes); len(errs) > 0 {
		return fmt.Errorf("cannot load rules state: %s is corrupt (%v) and %s (version %d) does not fit the configuration (%s); %s",
			cur, perr, prev, sf.Version, joinErrs(errs), fixHint)
	}
	aside := fmt.Sprintf("%s.corrupt-%d", cur, s.now().Unix())
	if err := os.Rename(cur, aside); err != nil {
		return fmt.Errorf("cannot move corrupt %s aside: %w", cur, err)
	}
	version := max(sf.Version, s.auditVersion) + 1
	r := rules.Rules{Version: version, Routes: sf.Routes}
	reason := fmt.Sprintf("%s was corrupt (%v); moved to %s; restored version %d from %s as version %d",
		RulesFile, perr, filepath.Base(aside), sf.Version, PrevRulesFile, version)
	ev := rules.Event{Time: s.now(), Actor: "tandem", Kind: rules.KindRecovered, Reason: reason, NewVersion: version,
		Details: map[string]any{"error": perr.Error(), "moved_to": filepath.Base(aside), "restored_version": sf.Version}}
	if _, err := s.commitLocked(r, sf.FileRoutes, &ev, false); err != nil {
		return fmt.Errorf("cannot restore %s from %s: %w", cur, prev, err)
	}
	s.cur.Store(&r)
	s.fileDigest = sf.FileRoutes
	s.recovered = reason
	return nil
}

// Recovered returns a sentence describing what OpenState repaired (a corrupt
// rules.json restored from rules.json.prev, or stored rules replaced by the
// config file's because they no longer validated), or "" if nothing. The
// caller should log it; it is in the audit log too.
func (s *State) Recovered() string { return s.recovered }

// Dir returns the state directory.
func (s *State) Dir() string { return s.dir }

// Current returns a deep copy of the current rules.
func (s *State) Current() rules.Rules { return s.cur.Load().Clone() }

// Update changes the rules. ifMatch 0 skips the version check; otherwise a
// version other than the current one gives ErrStale and changes nothing.
// mutate works on a deep copy of the current rules; an error from it is
// returned as is. The result is validated (a *ValidationError lists every
// problem), given the next version, persisted and logged (actor, kind,
// route, reason, and the old → new summary), and then made current and
// passed to subscribers. A mutation that leaves the routes as they were is
// not a change: no version, no event, no write.
func (s *State) Update(ifMatch int64, actor, kind, route, reason string, mutate func(*rules.Rules) error) (rules.Rules, error) {
	r, _, err := s.Apply(ifMatch, rules.Event{Actor: actor, Kind: kind, Route: route, Reason: reason}, mutate)
	return r, err
}

// Apply is Update with the whole audit event given (Details included); the
// State fills Time, OldVersion, NewVersion, and Old and New when empty. The
// bool reports whether the rules changed.
func (s *State) Apply(ifMatch int64, ev rules.Event, mutate func(*rules.Rules) error) (rules.Rules, bool, error) {
	s.mu.Lock()
	r, changed, err := s.applyLocked(ifMatch, ev, nil, mutate)
	if err != nil || !changed {
		s.mu.Unlock()
		return r, changed, err
	}
	s.notifyAndUnlock(r)
	return r, true, nil
}

// applyLocked does the work of Apply with s.mu held. fileDigest, when not
// nil, replaces the digest of the file's routes. It does not notify.
func (s *State) applyLocked(ifMatch int64, ev rules.Event, fileDigest *string, mutate func(*rules.Rules) error) (rules.Rules, bool, error) {
	cur := s.cur.Load()
	if ifMatch != 0 && ifMatch != cur.Version {
		return rules.Rules{}, false, fmt.Errorf("%w: If-Match is %d, the current version is %d", rules.ErrStale, ifMatch, cur.Version)
	}
	next := cur.Clone()
	if err := mutate(&next); err != nil {
		return rules.Rules{}, false, err
	}
	if errs := s.validate(next.Routes); len(errs) > 0 {
		return rules.Rules{}, false, &rules.ValidationError{Errs: errs}
	}
	if _, err := json.Marshal(next.Routes); err != nil { // NaN from a Validator that let it through
		return rules.Rules{}, false, &rules.ValidationError{Errs: []error{fmt.Errorf("cannot encode rules: %w", err)}}
	}
	d := s.fileDigest
	if fileDigest != nil {
		d = *fileDigest
	}
	if sameRoutes(cur.Routes, next.Routes) {
		if d != s.fileDigest { // remember the file's routes without a new version
			if _, err := s.commitLocked(*cur, d, nil, false); err != nil {
				return rules.Rules{}, false, err
			}
			s.fileDigest = d
		}
		return cur.Clone(), false, nil
	}
	next.Version = s.nextVersionLocked()
	ev.Time = s.now()
	ev.OldVersion, ev.NewVersion = cur.Version, next.Version
	if ev.Old == "" && ev.New == "" {
		ev.Old, ev.New = summarize(cur.Routes, next.Routes, ev.Route)
	}
	inPlace, err := s.commitLocked(next, d, &ev, true)
	if err != nil && !inPlace {
		return rules.Rules{}, false, err
	}
	s.cur.Store(&next)
	s.fileDigest = d
	return next.Clone(), true, err
}

// notifyAndUnlock passes r to every subscriber, in version order, then
// releases both locks. s.mu must be held.
func (s *State) notifyAndUnlock(r rules.Rules) {
	s.notifyMu.Lock()
	s.mu.Unlock()
	for _, f := range s.subs {
		f(r.Clone())
	}
	s.notifyMu.Unlock()
}

// Promote sets a route's serve_new to percent (kind "promote"). The bool
// reports whether the rules changed: false when the route was already at
// percent (no version, no event).
func (s *State) Promote(route string, percent float64, actor, reason string) (rules.Rules, bool, error) {
	return s.Apply(0, rules.Event{Actor: actor, Kind: rules.KindPromote, Route: route, Reason: reason}, rules.SetServeNew(route, percent, nil))
}

// Rollback sets a route's serve_new to 0 (kind "rollback"). The bool
// reports whether the rules changed: false when the route was already at
// 0% (no version, no event).
func (s *State) Rollback(route string, actor, reason string) (rules.Rules, bool, error) {
	return s.Apply(0, rules.Event{Actor: actor, Kind: rules.KindRollback, Route: route, Reason: reason}, rules.SetServeNew(route, 0, nil))
}

// ReplaceFromFile replaces the routes with the config file's (actor "file",
// kind "reload") as a new version if they differ from the current ones; the
// bool says whether they did. Equal routes make no version. Either way the
// routes are remembered as the file's, for FileChanged. Invalid routes
// change nothing and return a *ValidationError; the caller records a
// "reload_error" event.
func (s *State) ReplaceFromFile(routes []rules.Route) (rules.Rules, bool, error) {
	d := routesDigest(routes)
	s.mu.Lock()
	ev := rules.Event{Actor: "file", Kind: rules.KindReload, Reason: "the config file changed"}
	r, changed, err := s.applyLocked(0, ev, &d, func(r *rules.Rules) error { r.Routes = rules.CloneRoutes(routes); return nil })
	if err != nil || !changed {
		s.mu.Unlock()
		return r, changed, err
	}
	s.notifyAndUnlock(r)
	return r, true, nil
}

// FileChanged reports whether routes (the config file's, as loaded now)
// differ from the routes last applied from the config file — at the seed or
// by ReplaceFromFile. At start-up, call ReplaceFromFile only if it does, so
// that API and ramp changes survive restarts when the file did not change.
func (s *State) FileChanged(routes []rules.Route) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return routesDigest(routes) != s.fileDigest
}

// Record appends an event that changes no rules (reload_error, noise, ramp
// decisions). A zero Time is set to now.
func (s *State) Record(e rules.Event) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.appendAudit(e)
	return err
}

// Subscribe registers f to receive the rules after every successful change,
// in version order, and calls it once at once with the current rules, so the
// subscriber misses nothing. f runs with the State's notification lock held:
// it may call Current, but must not change the rules (deadlock).
func (s *State) Subscribe(f func(rules.Rules)) {
	s.mu.Lock()
	cur := s.cur.Load().Clone()
	s.notifyMu.Lock()
	s.subs = append(s.subs, f)
	s.mu.Unlock()
	f(cur)
	s.notifyMu.Unlock()
}

func (s *State) path(name string) string { return filepath.Join(s.dir, name) }

func (s *State) check(step string) error {
	if s.fault != nil {
		return s.fault(step)
	}
	return nil
}

func decodeStateFile(data []byte) (stateFile, error) {
	var sf stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return stateFile{}, fmt.Errorf("not a rules document: %v", err)
	}
	if dec.More() {
		return stateFile{}, errors.New("not a rules document: data after the document")
	}
	if sf.Version < 1 {
		return stateFile{}, fmt.Errorf("not a rules document: version %d (want 1 or more)", sf.Version)
	}
	return sf, nil
}

func encodeStateFile(r rules.Rules, fileDigest string) ([]byte, error) {
	b, err := json.MarshalIndent(stateFile{Version: r.Version, Routes: r.Routes, FileRoutes: fileDigest}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cannot encode rules: %w", err)
	}
	return append(b, '\n'), nil
}

func joinErrs(errs []error) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func fmtPercent(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
