package rulestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/rules"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func seedRoutes() []rules.Route {
	a := rules.DefaultRoute()
	a.Name, a.Legacy, a.New = "images", "legacy", "new"
	a.Match = rules.Match{PathPrefix: "/upload", Methods: []string{"POST", "PUT"}}
	a.Compare = compare.Settings{IgnoreHeaders: []string{"Date"}, IgnoreJSON: []string{"$.id"}}
	rp := rules.DefaultRamp()
	a.Ramp = &rp
	b := rules.DefaultRoute()
	b.Name, b.Legacy = "static", "legacy"
	return []rules.Route{a, b}
}

func validator(backends ...string) rules.Validator {
	if len(backends) == 0 {
		backends = []string{"legacy", "new", "legacy2"}
	}
	return func(rs []rules.Route) []error {
		return rules.Validate(rs, func(n string) bool {
			for _, b := range backends {
				if b == n {
					return true
				}
			}
			return false
		})
	}
}

func openTest(t *testing.T, dir string, c *clock) *State {
	t.Helper()
	s, err := OpenState(dir, seedRoutes(), validator(), c.now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}

func allEvents(t *testing.T, s *State) []rules.Event {
	t.Helper()
	evs, err := s.Events(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func serveNew(r rules.Rules, route string) float64 {
	for _, rt := range r.Routes {
		if rt.Name == route {
			return rt.ServeNew
		}
	}
	return -1
}

// First start: the seed becomes version 1, on disk and in the audit log.
func TestOpenStateSeedsFirstStart(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, newClock())
	cur := s.Current()
	if cur.Version != 1 || !reflect.DeepEqual(cur.Routes, seedRoutes()) {
		t.Fatalf("current = %+v", cur)
	}
	sf, err := decodeStateFile(readFile(t, filepath.Join(dir, RulesFile)))
	if err != nil || sf.Version != 1 {
		t.Fatalf("rules.json: %+v %v", sf, err)
	}
	evs := allEvents(t, s)
	if len(evs) != 1 || evs[0].Kind != "seed" || evs[0].Actor != "file" || evs[0].NewVersion != 1 {
		t.Fatalf("events = %+v", evs)
	}
	if s.FileChanged(seedRoutes()) {
		t.Error("FileChanged(seed) right after seeding")
	}
	if s.Recovered() != "" {
		t.Errorf("Recovered() = %q", s.Recovered())
	}
}

// A restart keeps what the API did; the seed is not applied again.
func TestReopenKeepsPromotedVersion(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	s := openTest(t, dir, c)
	if _, _, err := s.Promote("images", 25, "api", "looks good"); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir, c)
	cur := s2.Current()
	if cur.Version != 2 || serveNew(cur, "images") != 25 {
		t.Fatalf("after reopen: version %d serve_new %v", cur.Version, serveNew(cur, "images"))
	}
	if s2.FileChanged(seedRoutes()) {
		t.Error("the config file did not change, FileChanged says it did")
	}
	edited := seedRoutes()
	edited[1].Mirror = 50
	if !s2.FileChanged(edited) {
		t.Error("the config file changed, FileChanged says it did not")
	}
	prev, err := decodeStateFile(readFile(t, filepath.Join(dir, PrevRulesFile)))
	if err != nil || prev.Version != 1 {
		t.Errorf("rules.json.prev = %+v, %v; want version 1", prev, err)
	}
}

// A change that is refused writes nothing: files byte-identical, rules unchanged.
func TestUpdateRefusedWritesNothing(t *testing.T) {
	cases := []struct {
		why     string
		ifMatch int64
		mutate  func(*rules.Rules) error
		check   func(error) bool
		nErrs   int
	}{
		{"If-Match of an older version is stale", 7, func(r *rules.Rules) error { r.Routes[0].ServeNew = 5; return nil },
			func(err error) bool { return errors.Is(err, rules.ErrStale) }, 0},
		{"every validation error is returned, not just the first", 1, func(r *rules.Rules) error {
			r.Routes[0].ServeNew = 150
			r.Routes[0].New = "nope"
			r.Routes[1].Name = "images"
			return nil
		}, func(err error) bool { var ve *rules.ValidationError; return errors.As(err, &ve) }, 3},
		{"the mutation's own error is returned as is", 0, func(r *rules.Rules) error { return errBoom },
			func(err error) bool { return errors.Is(err, errBoom) }, 0},
		{"a Version set by the mutation is ignored, an invalid route still refused", 0, func(r *rules.Rules) error {
			r.Version = 99
			r.Routes[1].ServeNew = 10 // static has no new backend
			return nil
		}, func(err error) bool { var ve *rules.ValidationError; return errors.As(err, &ve) }, 1},
	}
	for _, tc := range cases {
		t.Run(tc.why, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir, newClock())
			called := 0
			s.Subscribe(func(rules.Rules) { called++ })
			rulesBefore := readFile(t, filepath.Join(dir, RulesFile))
			auditBefore := readFile(t, filepath.Join(dir, AuditFile))
			_, err := s.Update(tc.ifMatch, "api", "replace", "", "test", tc.mutate)
			if err == nil || !tc.check(err) {
				t.Fatalf("err = %v", err)
			}
			var ve *rules.ValidationError
			if errors.As(err, &ve) && len(ve.Errs) != tc.nErrs {
				t.Errorf("got %d errors, want %d: %v", len(ve.Errs), tc.nErrs, ve.Errs)
			}
			if !bytes.Equal(readFile(t, filepath.Join(dir, RulesFile)), rulesBefore) {
				t.Error("rules.json changed")
			}
			if !bytes.Equal(readFile(t, filepath.Join(dir, AuditFile)), auditBefore) {
				t.Error("audit.log changed")
			}
			if cur := s.Current(); cur.Version != 1 || !reflect.DeepEqual(cur.Routes, seedRoutes()) {
				t.Errorf("current changed: %+v", cur)
			}
			if called != 1 { // the initial delivery only
				t.Errorf("subscriber called %d times", called)
			}
		})
	}
}

var errBoom = errors.New("boom")

// Promote, Rollback and the unknown-route case.
func TestPromoteRollback(t *testing.T) {
	s := openTest(t, t.TempDir(), newClock())
	if _, _, err := s.Promote("nope", 5, "api", ""); !errors.Is(err, rules.ErrUnknownRoute) {
		t.Errorf("promote unknown route: %v", err)
	}
	if _, _, err := s.Promote("images", 12.345, "api", ""); err == nil {
		t.Error("three decimals accepted")
	}
	r, changed, err := s.Promote("images", 5, "cli", "first users")
	if err != nil || r.Version != 2 || serveNew(r, "images") != 5 || !changed {
		t.Fatalf("promote: %+v %v", r, err)
	}
	r, _, err = s.Rollback("images", "api", "bad thumbnails")
	if err != nil || r.Version != 3 || serveNew(r, "images") != 0 {
		t.Fatalf("rollback: %+v %v", r, err)
	}
	r, changed, err = s.Rollback("images", "api", "again")
	if err != nil || r.Version != 3 || changed {
		t.Errorf("a rollback that changes nothing made version %d, changed %v (%v)", r.Version, changed, err)
	}
	if _, changed, err := s.Promote("images", 150, "cli", ""); err == nil || changed ||
		err.Error() != `invalid rules: route "images": serve_new 150 must be within 0..100` {
		t.Errorf("promote to 150: changed %v, %v", changed, err)
	}
	evs := allEvents(t, s)
	if len(evs) != 3 {
		t.Fatalf("events: %+v", evs)
	}
	if e := evs[1]; e.Kind != "promote" || e.Actor != "cli" || e.Route != "images" || e.Old != "serve_new 0" || e.New != "serve_new 5" || e.OldVersion != 1 || e.NewVersion != 2 || e.Reason != "first users" {
		t.Errorf("promote event %+v", e)
	}
	if e := evs[2]; e.Kind != "rollback" || e.Old != "serve_new 5" || e.New != "serve_new 0" {
		t.Errorf("rollback event %+v", e)
	}
}

// 50 writers race with If-Match: the stale ones fail, nothing is lost.
func TestConcurrentUpdates(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, newClock())
	type win struct {
		version int64
		percent float64
	}
	var (
		mu   sync.Mutex
		wins []win
		wg   sync.WaitGroup
		gate = make(chan struct{})
	)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-gate
			v := s.Current().Version
			p := float64(i + 1)
			r, err := s.Update(v, "api", "promote", "images", "", func(r *rules.Rules) error {
				r.Routes[0].ServeNew = p
				return nil
			})
			switch {
			case err == nil:
				mu.Lock()
				wins = append(wins, win{r.Version, p})
				mu.Unlock()
			case !errors.Is(err, rules.ErrStale):
				t.Errorf("writer %d: %v", i, err)
			}
		}(i)
	}
	close(gate)
	wg.Wait()
	if len(wins) == 0 {
		t.Fatal("no write accepted")
	}
	last := wins[0]
	for _, w := range wins {
		if w.version > last.version {
			last = w
		}
	}
	cur := s.Current()
	if cur.Version != int64(1+len(wins)) || last.version != cur.Version {
		t.Errorf("version %d, %d accepted writes, last accepted version %d", cur.Version, len(wins), last.version)
	}
	if serveNew(cur, "images") != last.percent {
		t.Errorf("serve_new %v, last accepted write set %v", serveNew(cur, "images"), last.percent)
	}
	sf, err := decodeStateFile(readFile(t, filepath.Join(dir, RulesFile)))
	if err != nil || sf.Version != cur.Version || !reflect.DeepEqual(sf.Routes, cur.Routes) {
		t.Errorf("rules.json = %+v, %v; current %+v", sf, err, cur)
	}
	if n := len(allEvents(t, s)); n != 1+len(wins) {
		t.Errorf("%d events for %d changes", n, 1+len(wins))
	}
}

// A corrupt rules.json is moved aside and rules.json.prev restored, or the
// start refuses with the file's name and the fix.
func TestCorruptRulesJSON(t *testing.T) {
	cases := []struct {
		why     string
		rules   func(good []byte) []byte // content of rules.json
		prev    func(good []byte) []byte // content of rules.json.prev; nil: remove
		wantErr []string                 // empty: recovery expected
	}{
		{"truncated by a crash: restored from prev", func(g []byte) []byte { return g[:len(g)/2] }, nil, nil},
		{"garbage: restored from prev", func([]byte) []byte { return []byte("\x00\x01garbage") }, nil, nil},
		{"empty file: restored from prev", func([]byte) []byte { return nil }, nil, nil},
		{"valid JSON, not a rules document: restored", func([]byte) []byte { return []byte(`{"hello": 1}`) }, nil, nil},
		{"no prev: refused, naming the file and the fix", func(g []byte) []byte { return g[:10] },
			func([]byte) []byte { return nil }, []string{RulesFile + " is corrupt", "no usable", "move it aside"}},
		{"prev corrupt too: refused", func(g []byte) []byte { return g[:10] },
			func(g []byte) []byte { return g[:5] }, []string{PrevRulesFile + " is corrupt too"}},
		{"prev does not fit the configuration: refused", func(g []byte) []byte { return g[:10] },
			func(g []byte) []byte {
				return bytes.ReplaceAll(g, []byte(`"legacy": "legacy"`), []byte(`"legacy": "gone"`))
			},
			[]string{"does not fit the configuration", `unknown backend "gone"`}},
	}
	for _, tc := range cases {
		t.Run(tc.why, func(t *testing.T) {
			dir, c := t.TempDir(), newClock()
			s := openTest(t, dir, c)
			if _, _, err := s.Promote("images", 5, "api", ""); err != nil { // v2; prev holds v1
				t.Fatal(err)
			}
			good := readFile(t, filepath.Join(dir, RulesFile))
			bad := tc.rules(good)
			os.WriteFile(filepath.Join(dir, RulesFile), bad, 0o600)
			if tc.prev != nil {
				if p := tc.prev(readFile(t, filepath.Join(dir, PrevRulesFile))); p == nil {
					os.Remove(filepath.Join(dir, PrevRulesFile))
				} else {
					os.WriteFile(filepath.Join(dir, PrevRulesFile), p, 0o600)
				}
			}
			c.add(time.Minute)
			s2, err := OpenState(dir, seedRoutes(), validator(), c.now)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("corrupt state accepted")
				}
				for _, w := range append(tc.wantErr, filepath.Join(dir, RulesFile)) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q: %v", w, err)
					}
				}
				if !bytes.Equal(readFile(t, filepath.Join(dir, RulesFile)), bad) {
					t.Error("the corrupt file was touched although nothing was recovered")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cur := s2.Current()
			if cur.Version != 3 || serveNew(cur, "images") != 0 {
				t.Errorf("recovered version %d serve_new %v; want version 3 holding version 1's routes", cur.Version, serveNew(cur, "images"))
			}
			aside := filepath.Join(dir, fmt.Sprintf("%s.corrupt-%d", RulesFile, c.now().Unix()))
			if got := readFile(t, aside); !bytes.Equal(got, bad) {
				t.Errorf("corrupt file not kept at %s", aside)
			}
			if !strings.Contains(s2.Recovered(), "corrupt") {
				t.Errorf("Recovered() = %q", s2.Recovered())
			}
			evs := allEvents(t, s2)
			if e := evs[len(evs)-1]; e.Kind != "recovered" || e.NewVersion != 3 {
				t.Errorf("last event %+v", e)
			}
			if _, err := OpenState(dir, seedRoutes(), validator(), c.now); err != nil {
				t.Errorf("reopen after recovery: %v", err)
			}
		})
	}
}

// Stored rules that no longer fit the configuration: the changed config
// file's routes replace them; an unchanged file makes the start fail.
func TestStoredRulesNoLongerValidate(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	openTest(t, dir, c)
	renamed := seedRoutes()
	renamed[0].New = "new2"
	s, err := OpenState(dir, renamed, validator("legacy", "new2"), c.now)
	if err != nil {
		t.Fatal(err)
	}
	if cur := s.Current(); cur.Version != 2 || cur.Routes[0].New != "new2" || s.Recovered() == "" {
		t.Errorf("current %+v, recovered %q", cur, s.Recovered())
	}
	_, err = OpenState(dir, renamed, validator("legacy"), c.now)
	if err == nil || !strings.Contains(err.Error(), `unknown backend "new2"`) || !strings.Contains(err.Error(), RulesFile) {
		t.Errorf("err = %v", err)
	}
}

// Versions never go back, even if rules.json is deleted by hand.
func TestSeedAfterDeleteContinuesVersions(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	s := openTest(t, dir, c)
	s.Promote("images", 5, "api", "")
	os.Remove(filepath.Join(dir, RulesFile))
	s2 := openTest(t, dir, c)
	if v := s2.Current().Version; v != 3 {
		t.Errorf("version %d after reseed, want 3", v)
	}
}

// A crash mid-append leaves a cut last line: readers skip it, and the next
// start closes it so new entries stay readable.
func TestAuditTruncatedLastLine(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	s := openTest(t, dir, c)
	s.Promote("images", 5, "api", "")
	f, _ := os.OpenFile(filepath.Join(dir, AuditFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"time":"2025-03-01T12:00:00Z","actor":"api","kind":"prom`)
	f.Close()
	if evs := allEvents(t, s); len(evs) != 2 {
		t.Fatalf("got %d events, want 2 (the cut line skipped)", len(evs))
	}
	s2 := openTest(t, dir, c)
	if err := s2.Record(rules.Event{Actor: "api", Kind: "noise", Route: "images", Reason: "$.x"}); err != nil {
		t.Fatal(err)
	}
	evs := allEvents(t, s2)
	if len(evs) != 3 || evs[2].Kind != "noise" {
		t.Fatalf("events after repair: %+v", evs)
	}
}

// A failure at any persistence step leaves memory, rules.json and the audit
// log as they were, and no temporary file behind.
func TestPersistFailureLeavesStateUnchanged(t *testing.T) {
	for _, step := range []string{"prev", "write", "audit", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir, c := t.TempDir(), newClock()
			var failing string
			s, err := openState(dir, seedRoutes(), validator(), c.now, func(st string) error {
				if st == failing {
					return errors.New("no space left on device")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			s.Promote("images", 5, "api", "") // so that rules.json.prev exists
			var got []int64
			s.Subscribe(func(r rules.Rules) { got = append(got, r.Version) })
			rulesBefore := readFile(t, filepath.Join(dir, RulesFile))
			prevBefore := readFile(t, filepath.Join(dir, PrevRulesFile))
			auditBefore := readFile(t, filepath.Join(dir, AuditFile))
			failing = step
			if _, _, err := s.Promote("images", 25, "api", ""); err == nil || !strings.Contains(err.Error(), "no space") {
				t.Fatalf("err = %v", err)
			}
			if cur := s.Current(); cur.Version != 2 || serveNew(cur, "images") != 5 {
				t.Errorf("current %d/%v", cur.Version, serveNew(cur, "images"))
			}
			if !bytes.Equal(readFile(t, filepath.Join(dir, RulesFile)), rulesBefore) {
				t.Error("rules.json changed")
			}
			if !bytes.Equal(readFile(t, filepath.Join(dir, AuditFile)), auditBefore) {
				t.Error("audit.log changed")
			}
			if step != "prev" && !bytes.Equal(readFile(t, filepath.Join(dir, PrevRulesFile)), rulesBefore) {
				t.Error("rules.json.prev is not the version still in force")
			} else if step == "prev" && !bytes.Equal(readFile(t, filepath.Join(dir, PrevRulesFile)), prevBefore) {
				t.Error("rules.json.prev changed")
			}
			if tmps, _ := leftoverTemps(dir); len(tmps) > 0 {
				t.Errorf("temporary files left: %v", tmps)
			}
			if !reflect.DeepEqual(got, []int64{2}) {
				t.Errorf("subscriber saw %v", got)
			}
			failing = ""
			if r, _, err := s.Promote("images", 25, "api", ""); err != nil || r.Version != 3 {
				t.Errorf("after the disk recovers: %v %v", r.Version, err)
			}
		})
	}
}

// Only the directory fsync failing: the file holds the new version, so
// memory follows it, and the error is still reported.
func TestDirSyncFailureFollowsTheFile(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	fail := false
	s, err := openState(dir, seedRoutes(), validator(), c.now, func(st string) error {
		if fail && st == "syncdir" {
			return errors.New("EIO")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fail = true
	r, _, err := s.Promote("images", 5, "api", "")
	if err == nil || r.Version != 2 || s.Current().Version != 2 {
		t.Errorf("r.Version %d, current %d, err %v", r.Version, s.Current().Version, err)
	}
}

// A data_dir that is a file cannot hold the state.
func TestOpenStateDirIsAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := OpenState(f, seedRoutes(), validator(), nil); err == nil {
		t.Error("opened a state inside a file")
	}
}

// An invalid seed stops the first start with every error.
func TestOpenStateInvalidSeed(t *testing.T) {
	seed := seedRoutes()
	seed[0].ServeNew, seed[1].Legacy = 101, ""
	_, err := OpenState(t.TempDir(), seed, validator(), nil)
	var ve *rules.ValidationError
	if !errors.As(err, &ve) || len(ve.Errs) != 2 {
		t.Errorf("err = %v", err)
	}
}

func TestReplaceFromFile(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	s := openTest(t, dir, c)
	if r, changed, err := s.ReplaceFromFile(seedRoutes()); err != nil || changed || r.Version != 1 {
		t.Errorf("unchanged file: %v %v %v", r.Version, changed, err)
	}
	edited := seedRoutes()
	edited[1].Mirror = 50
	r, changed, err := s.ReplaceFromFile(edited)
	if err != nil || !changed || r.Version != 2 {
		t.Fatalf("changed file: %v %v %v", r.Version, changed, err)
	}
	evs := allEvents(t, s)
	if e := evs[len(evs)-1]; e.Actor != "file" || e.Kind != "reload" || e.Old != "static: mirror 100" || e.New != "static: mirror 50" {
		t.Errorf("reload event %+v", e)
	}
	bad := seedRoutes()
	bad[0].Legacy = "gone"
	if _, _, err := s.ReplaceFromFile(bad); err == nil {
		t.Error("invalid file accepted")
	} else if ve := (*rules.ValidationError)(nil); !errors.As(err, &ve) {
		t.Errorf("err %T, want *ValidationError", err)
	}
	if s.Current().Version != 2 {
		t.Error("invalid file changed the rules")
	}
	// An API change, then the file reverts to what the API set: no version,
	// but the file's routes are remembered.
	s.Promote("images", 5, "api", "")
	same := s.Current().Routes
	if _, changed, _ := s.ReplaceFromFile(same); changed || !s.FileChanged(edited) || s.FileChanged(same) {
		t.Errorf("changed=%v FileChanged(edited)=%v FileChanged(same)=%v", changed, s.FileChanged(edited), s.FileChanged(same))
	}
	if s2 := openTest(t, dir, c); s2.FileChanged(same) {
		t.Error("the file's routes were not persisted")
	}
}

// Subscribers get the current rules at once, then every change in order.
func TestSubscribe(t *testing.T) {
	s := openTest(t, t.TempDir(), newClock())
	var got []int64
	s.Subscribe(func(r rules.Rules) {
		got = append(got, r.Version)
		_ = s.Current() // allowed inside the callback
	})
	s.Promote("images", 1, "api", "")
	s.Promote("images", 1, "api", "") // no change, no delivery
	s.Rollback("images", "api", "")
	if !reflect.DeepEqual(got, []int64{1, 2, 3}) {
		t.Errorf("deliveries %v", got)
	}
}

func TestEventsSinceAndLimit(t *testing.T) {
	c := newClock()
	s := openTest(t, t.TempDir(), c)
	for i := 1; i <= 5; i++ {
		c.add(time.Minute)
		s.Promote("images", float64(i), "api", "")
	}
	cases := []struct {
		why   string
		since time.Time
		limit int
		want  []int64 // NewVersions
	}{
		{"everything, oldest first", time.Time{}, 0, []int64{1, 2, 3, 4, 5, 6}},
		{"limit keeps the newest", time.Time{}, 2, []int64{5, 6}},
		{"since is inclusive", c.now().Add(-2 * time.Minute), 0, []int64{4, 5, 6}},
		{"since and limit", c.now().Add(-2 * time.Minute), 1, []int64{6}},
		{"since in the future", c.now().Add(time.Hour), 0, nil},
	}
	for _, tc := range cases {
		evs, err := s.Events(tc.since, tc.limit)
		var got []int64
		for _, e := range evs {
			got = append(got, e.NewVersion)
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v (%v)", tc.why, got, tc.want, err)
		}
	}
}

// Old → new summaries name what changed.
func TestSummaries(t *testing.T) {
	base := seedRoutes()
	cases := []struct {
		why      string
		route    string
		edit     func([]rules.Route) []rules.Route
		old, new string
	}{
		{"one route's serve_new, named in the event", "images", func(rs []rules.Route) []rules.Route { rs[0].ServeNew = 25; return rs }, "serve_new 0", "serve_new 25"},
		{"several fields of an unnamed route", "", func(rs []rules.Route) []rules.Route {
			rs[0].ServeNew, rs[0].Mirror, rs[0].Sticky = 5, 10, "ip"
			return rs
		},
			"images: serve_new 0, mirror 100", "images: serve_new 5, mirror 10, sticky changed"},
		{"a route added", "", func(rs []rules.Route) []rules.Route {
			n := rules.DefaultRoute()
			n.Name, n.Legacy = "thumbs", "legacy"
			return append(rs, n)
		}, "thumbs: absent", "thumbs: added (serve_new 0, mirror 100)"},
		{"a route removed", "", func(rs []rules.Route) []rules.Route { return rs[:1] }, "static: serve_new 0, mirror 100", "static: removed"},
		{"routes reordered", "", func(rs []rules.Route) []rules.Route { return []rules.Route{rs[1], rs[0]} }, "order images, static", "order static, images"},
		{"ramp edited", "", func(rs []rules.Route) []rules.Route { rs[0].Ramp.Hold = rules.Duration(time.Minute); return rs }, "", "images: ramp changed"},
	}
	for _, tc := range cases {
		o, n := summarize(base, tc.edit(rules.CloneRoutes(base)), tc.route)
		if o != tc.old || n != tc.new {
			t.Errorf("%s: got %q → %q, want %q → %q", tc.why, o, n, tc.old, tc.new)
		}
	}
}

// What GET returns, PUT accepts unchanged.
func TestRulesDocumentRoundTrip(t *testing.T) {
	s := openTest(t, t.TempDir(), newClock())
	b, err := json.Marshal(s.Current())
	if err != nil {
		t.Fatal(err)
	}
	r, errs := rules.ParseRules(b)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !reflect.DeepEqual(r, s.Current()) {
		t.Errorf("round trip:\n got %+v\nwant %+v", r, s.Current())
	}
}
