// The fleet end to end (issue 20, DESIGN.md "Fleet"): three real `tandem
// serve` processes on 127.0.0.1, each with its own data_dir and config
// naming the same fleet.database (a throw-away PostgreSQL cluster from
// internal/pgtest) and its own fleet.instance, in front of real loopback
// backends. Without PostgreSQL's server binaries these tests skip (fail
// with CI=true).

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/pgtest"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
	"github.com/tandem-proxy/tandem/rules"
	"github.com/tandem-proxy/tandem/store"
)

// fleetApplyWithin is the contract's bound: a rules change through any
// instance is in force on every live instance within 2 s.
const fleetApplyWithin = 2 * time.Second

// newFleetSetup writes the config of fleet instance name on database db:
// backends (name → URL, in order) and one route "up" (prefix /) whose
// remaining YAML is route (indented 4 spaces).
func newFleetSetup(t *testing.T, db, name string, backends [][2]string, route string) childSetup {
	t.Helper()
	dir := t.TempDir()
	s := childSetup{cfgPath: filepath.Join(dir, "tandem.yaml"), dataDir: filepath.Join(dir, "data"), addr: freeAddr(t), admin: freeAddr(t)}
	var bs strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&bs, "  %s: {url: %q, timeout: 30s}\n", b[0], b[1])
	}
	cfg := fmt.Sprintf(`listen: %s
admin: {listen: %s}
data_dir: %s
shutdown_timeout: 20s
retention: {comparisons: 2h}
fleet: {database: %q, instance: %q}
backends:
%sroutes:
  - name: up
    match: {path_prefix: /}
%s
`, s.addr, s.admin, s.dataDir, db, name, bs.String(), route)
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// startFleet starts one `tandem serve` per name on a new database of
// cluster pg, one after the other (the first seeds the rules).
func startFleet(t *testing.T, pg *pgtest.Cluster, names []string, backends [][2]string, route string) []*child {
	t.Helper()
	db := pg.NewDatabase()
	var cs []*child
	for _, n := range names {
		cs = append(cs, startChild(t, newFleetSetup(t, db, n, backends, route)))
	}
	return cs
}

// fleetClient is the client side of the fleet tests: kept-alive
// connections, bounded waits.
var fleetClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

// served sends GET path to a child's listener with the sticky key (when
// not empty) and returns the status and the X-Backend header of the answer
// (testbackend's name of the backend that answered).
func served(addr, path, key, requestID string) (int, string, error) {
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	if key != "" {
		req.Header.Set("X-User-Id", key)
	}
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	resp, err := fleetClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, "", err
	}
	return resp.StatusCode, resp.Header.Get("X-Backend"), nil
}

// metricSum adds the samples of m whose series starts with prefix.
func metricSum(m map[string]float64, prefix string) int64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return int64(n)
}

// instanceCounts is what one instance served and compared, from its own
// metrics (the data plane's counters, not the store's).
type instanceCounts struct {
	Requests, ServedLegacy, ServedNew, Compared int64
}

func countsOf(c *child) instanceCounts {
	c.t.Helper()
	m := c.metrics()
	return instanceCounts{
		Requests:     metricSum(m, `tandem_requests_total{route="up",`),
		ServedLegacy: metricSum(m, `tandem_requests_total{route="up",served_by="legacy"}`),
		ServedNew:    metricSum(m, `tandem_requests_total{route="up",served_by="new"}`),
		Compared:     metricSum(m, `tandem_compare_total{route="up",`),
	}
}

func (a instanceCounts) add(b instanceCounts) instanceCounts {
	return instanceCounts{a.Requests + b.Requests, a.ServedLegacy + b.ServedLegacy, a.ServedNew + b.ServedNew, a.Compared + b.Compared}
}

func reportCounts(r store.RouteReport) instanceCounts {
	return instanceCounts{r.Requests, r.ServedLegacy, r.ServedNew, r.Compared}
}

// checkInstanceReports requires GET /api/v1/report?route=up&instance=NAME
// through via to equal what each instance's metrics say it served and
// compared (want, by instance name), and an unknown instance to be 404.
func checkInstanceReports(t *testing.T, via *child, want map[string]instanceCounts) {
	t.Helper()
	if st, b := via.api("GET", "/api/v1/report?route=up&instance=no-such-instance", ""); st != 404 {
		t.Errorf("report for an unknown instance: %d %s, want 404", st, b)
	}
	for name, w := range want {
		var out struct{ Routes []store.RouteReport }
		via.getJSON("/api/v1/report?route=up&instance="+name, &out)
		if len(out.Routes) != 1 {
			t.Errorf("?instance=%s: %d routes, want 1", name, len(out.Routes))
			continue
		}
		if got := reportCounts(out.Routes[0]); got != w {
			t.Errorf("?instance=%s report %+v, want what its metrics say: %+v", name, got, w)
		}
	}
}

// checkRoutesFleet requires GET /api/v1/routes through c to say "fleet":
// want ("ok" or "degraded") with this instance's name, and to list this
// instance (self); when want is "ok", to list exactly the instances names
// within 5 s (the list is read every 2 s; degraded, it is the last one
// read).
func checkRoutesFleet(t *testing.T, c *child, self, want string, names []string) {
	t.Helper()
	type answer struct {
		Fleet     *string `json:"fleet"`
		Instance  string  `json:"instance"`
		Instances []struct {
			Name string `json:"name"`
			Self bool   `json:"self"`
		} `json:"instances"`
	}
	read := func() (answer, []string, bool) {
		var out answer
		c.getJSON("/api/v1/routes", &out)
		var got []string
		selfListed := false
		for _, in := range out.Instances {
			got = append(got, in.Name)
			if in.Self != (in.Name == self) {
				t.Errorf("GET /api/v1/routes through %s: instance %s self %v", self, in.Name, in.Self)
			}
			selfListed = selfListed || in.Name == self
		}
		return out, got, selfListed
	}
	out, got, selfListed := read()
	if out.Fleet == nil || *out.Fleet != want || out.Instance != self || !selfListed {
		t.Errorf("GET /api/v1/routes through %s: fleet %v, instance %q, instances %v; want %q, %q, itself listed", self, out.Fleet, out.Instance, got, want, self)
	}
	if want == "ok" && !pollUntil(5*time.Second, func() bool {
		_, got, _ = read()
		return strings.Join(got, ",") == strings.Join(names, ",")
	}) {
		t.Errorf("GET /api/v1/routes through %s lists instances %v, want %v", self, got, names)
	}
}

// appliedVersion is the rules version a child's data plane has in force.
func appliedVersion(c *child) int64 {
	return int64(c.metrics()["tandem_rules_applied_version"])
}

// stickyKeys are the sticky keys the serving tests send.
func stickyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%03d", i)
	}
	return keys
}

// sideAt is the backend rules.Bucket (the contract every instance hashes
// by) gives a sticky key of route "up" at serve_new percent.
func sideAt(key string, percent float64) string {
	if rules.Bucket("up", key) < rules.Threshold(percent) {
		return "new"
	}
	return "legacy"
}

// awaitChange waits (at most fleetApplyWithin from since) until c serves a
// key whose side changes from percent from to percent to by its new side,
// and returns when it first did.
func awaitChange(t *testing.T, c *child, name string, keys []string, from, to float64, since time.Time) time.Duration {
	t.Helper()
	var probe []string // keys whose side changes
	for _, k := range keys {
		if sideAt(k, from) != sideAt(k, to) {
			probe = append(probe, k)
		}
	}
	if len(probe) == 0 {
		t.Fatalf("no key of %d changes side from %v%% to %v%%", len(keys), from, to)
	}
	for i := 0; ; i++ {
		k := probe[i%len(probe)]
		st, by, err := served(c.s.addr, "/item", k, "")
		if err != nil || st != 200 {
			t.Fatalf("%s: key %s: %d %v\n%s", name, k, st, err, c.logText())
		}
		seen := time.Since(since)
		if by == sideAt(k, to) {
			if seen > fleetApplyWithin {
				t.Fatalf("%s served the change %v after it was acknowledged, want within %v", name, seen, fleetApplyWithin)
			}
			t.Logf("%s serves the change to %v%% %v after the acknowledgement", name, to, seen.Round(time.Millisecond))
			return seen
		}
		if seen > fleetApplyWithin {
			t.Fatalf("%s still serves key %s by %s %v after the change to %v%% was acknowledged; applied version %d",
				name, k, by, seen, to, appliedVersion(c))
		}
	}
}

// checkServing requires c to serve every key by the side percent gives it.
func checkServing(t *testing.T, c *child, name string, keys []string, percent float64) {
	t.Helper()
	var onNew int
	for _, k := range keys {
		st, by, err := served(c.s.addr, "/item", k, "")
		if err != nil || st != 200 {
			t.Fatalf("%s: key %s: %d %v", name, k, st, err)
		}
		if by != sideAt(k, percent) {
			t.Errorf("%s serves key %s (bucket %d) by %q, want %s at %v%%", name, k, rules.Bucket("up", k), by, sideAt(k, percent), percent)
		}
		if by == "new" {
			onNew++
		}
	}
	t.Logf("%s: %d of %d keys on new at %v%%", name, onNew, len(keys), percent)
}

// A promote through A is served by B and C for the same sticky keys within
// 2 s (the keys rules.Bucket puts under the percentage, and only those);
// a rollback through B puts every key back on legacy on all three within
// 2 s.
func TestFleetPromoteRollbackAcrossInstances(t *testing.T) {
	pg := pgtest.Start(t)
	legacy := tb.Start(t, "legacy", tb.Mode{})
	newb := tb.Start(t, "new", tb.Mode{})
	cs := startFleet(t, pg, []string{"a", "b", "c"}, [][2]string{{"legacy", legacy.URL}, {"new", newb.URL}},
		"    legacy: legacy\n    new: new\n    mirror: 0\n    sticky: header:X-User-Id")
	a, b, c := cs[0], cs[1], cs[2]
	names := []string{"a", "b", "c"}
	keys := stickyKeys(200)

	for i, x := range cs {
		for _, k := range keys[:20] {
			if st, by, err := served(x.s.addr, "/item", k, ""); err != nil || st != 200 || by != "legacy" {
				t.Fatalf("%s before any promote: key %s: %d %q %v", names[i], k, st, by, err)
			}
		}
	}

	st, body := a.api("POST", "/api/v1/routes/up/promote", `{"percent": 30, "reason": "fleet e2e"}`)
	acked := time.Now()
	if st != 200 {
		t.Fatalf("promote through a: %d %s", st, body)
	}
	var ans struct {
		Version int64 `json:"version"`
		Changed bool  `json:"changed"`
	}
	json.Unmarshal(body, &ans)
	if !ans.Changed || ans.Version != 2 {
		t.Fatalf("promote through a answered %s, want version 2, changed", body)
	}
	// B and C first: the change was made through A.
	for i, x := range []*child{b, c, a} {
		awaitChange(t, x, []string{"b", "c", "a"}[i], keys, 0, 30, acked)
	}
	for i, x := range cs {
		checkServing(t, x, names[i], keys, 30)
	}

	st, body = b.api("POST", "/api/v1/routes/up/rollback", `{"reason": "fleet e2e rollback"}`)
	acked = time.Now()
	if st != 200 {
		t.Fatalf("rollback through b: %d %s", st, body)
	}
	for i, x := range []*child{a, c, b} {
		awaitChange(t, x, []string{"a", "c", "b"}[i], keys, 30, 0, acked)
	}
	for i, x := range cs {
		checkServing(t, x, names[i], keys, 0)
	}

	for i, x := range cs {
		if v := appliedVersion(x); v != 3 {
			t.Errorf("%s: tandem_rules_applied_version %d, want 3", names[i], v)
		}
		if up := x.metrics()["tandem_fleet_database_up"]; up != 1 {
			t.Errorf("%s: tandem_fleet_database_up %v, want 1", names[i], up)
		}
	}
	// One history: the promote and the rollback, each once, through any
	// instance.
	evs := c.events()
	var kinds []string
	for _, e := range evs {
		if e.NewVersion >= 2 {
			kinds = append(kinds, fmt.Sprintf("%s v%d by %s", e.Kind, e.NewVersion, e.Actor))
		}
	}
	if len(kinds) != 2 || !strings.HasPrefix(kinds[0], "promote v2") || !strings.HasPrefix(kinds[1], "rollback v3") {
		t.Errorf("events through c after version 1: %v, want promote v2 then rollback v3", kinds)
	}
}

// Two PUT /api/v1/rules with the same If-Match, at once, through two
// instances: exactly one is 200 and the other 409, every round; the audit
// log, read through the third, has each winner's version once and nothing
// of the losers.
func TestFleetConcurrentIfMatch(t *testing.T) {
	pg := pgtest.Start(t)
	legacy := tb.Start(t, "legacy", tb.Mode{})
	newb := tb.Start(t, "new", tb.Mode{})
	cs := startFleet(t, pg, []string{"a", "b", "c"}, [][2]string{{"legacy", legacy.URL}, {"new", newb.URL}},
		"    legacy: legacy\n    new: new\n    mirror: 100")
	a, b, c := cs[0], cs[1], cs[2]

	const rounds = 6
	type result struct {
		who     string
		status  int
		version int64
		reason  string
		mirror  float64
	}
	var winners, losers []result
	for round := range rounds {
		doc := a.rules()
		put := func(x *child, who string, mirror float64) result {
			r := doc
			r.Routes = append([]rules.Route(nil), doc.Routes...)
			r.Routes[0].Mirror = mirror
			reason := fmt.Sprintf("round %d through %s", round, who)
			body, _ := json.Marshal(map[string]any{"routes": r.Routes, "reason": reason})
			st, ans, err := x.apiErr("PUT", "/api/v1/rules", string(body), "If-Match", fmt.Sprint(doc.Version))
			res := result{who: who, status: st, reason: reason, mirror: mirror}
			if err != nil {
				res.status = -1
				res.reason += ": " + err.Error()
			}
			if st == 200 {
				var got rules.Rules
				json.Unmarshal(ans, &got)
				res.version = got.Version
			}
			return res
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		out := make([]result, 2)
		for i, x := range []*child{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out[i] = put(x, []string{"a", "b"}[i], float64(10+50*i+round))
			}()
		}
		close(start)
		wg.Wait()
		var win, lose *result
		for i := range out {
			switch out[i].status {
			case 200:
				win = &out[i]
			case 409:
				lose = &out[i]
			}
		}
		if win == nil || lose == nil {
			t.Fatalf("round %d: a %d, b %d; want one 200 and one 409 (%+v)", round, out[0].status, out[1].status, out)
		}
		if win.version != doc.Version+1 {
			t.Fatalf("round %d: the winner (%s) answered version %d, want %d", round, win.who, win.version, doc.Version+1)
		}
		winners, losers = append(winners, *win), append(losers, *lose)
		// Every instance has the winner's version in force before the next
		// round reads the rules through a.
		for i, x := range cs {
			if !pollUntil(fleetApplyWithin, func() bool { return appliedVersion(x) >= win.version }) {
				t.Fatalf("round %d: %s has version %d in force %v after %s's PUT made %d",
					round, []string{"a", "b", "c"}[i], appliedVersion(x), fleetApplyWithin, win.who, win.version)
			}
		}
	}
	var whos []string
	for _, w := range winners {
		whos = append(whos, w.who)
	}
	t.Logf("winners by round: %v", whos)

	evs := c.events()
	for _, w := range winners {
		n := 0
		for _, e := range evs {
			if e.NewVersion == w.version {
				n++
				if e.Kind != "replace" || e.Reason != w.reason || e.OldVersion != w.version-1 {
					t.Errorf("event for version %d: %+v, want replace %d→%d %q", w.version, e, w.version-1, w.version, w.reason)
				}
			}
		}
		if n != 1 {
			t.Errorf("the audit log through c has version %d %d times, want once", w.version, n)
		}
	}
	for _, l := range losers {
		for _, e := range evs {
			if e.Reason == l.reason {
				t.Errorf("the audit log has the refused PUT (%s): %+v", l.reason, e)
			}
		}
	}
	last := winners[len(winners)-1]
	for i, x := range cs {
		r := x.rules()
		if r.Version != last.version || r.Routes[0].Mirror != last.mirror {
			t.Errorf("%s has version %d mirror %v, want the last winner's %d mirror %v",
				[]string{"a", "b", "c"}[i], r.Version, r.Routes[0].Mirror, last.version, last.mirror)
		}
	}
}

// Load spread over three instances (300 requests round-robin, mirror 100)
// → every instance's report equals the sum of what each served and
// compared. The route has a secondary legacy backend; every backend adds a
// random nonce, and new changes $.field on 30 requests. noise_min_samples
// is 150: each instance makes 100 legacy-vs-secondary comparisons, too few
// to learn the nonce alone; the fleet's 300 are enough, and the report
// through any instance counts the nonce as noise and $.field as real.
func TestFleetReportSumsInstancesAndLearnsNoise(t *testing.T) {
	const total, minSamples = 300, 150
	changed := func(n int) bool { return n%10 == 5 }
	legacy := nonceBackend(t, func(int) bool { return false })
	secondary := nonceBackend(t, func(int) bool { return false })
	newURL := nonceBackend(t, changed)
	pg := pgtest.Start(t)
	names := []string{"a", "b", "c"}
	cs := startFleet(t, pg, names, [][2]string{{"legacy", legacy}, {"legacy2", secondary}, {"new", newURL}},
		fmt.Sprintf("    legacy: legacy\n    secondary: legacy2\n    new: new\n    mirror: 100\n    compare: {noise_min_samples: %d}", minSamples))
	if per := total / len(cs); per >= minSamples || total < minSamples {
		t.Fatalf("the scenario needs each instance below noise_min_samples (%d per instance) and the fleet at or above it (%d)", per, total)
	}

	for i := range total {
		x := cs[i%len(cs)]
		st, _, err := served(x.s.addr, fmt.Sprintf("/item/%d", i), "", fmt.Sprintf("fleet-%03d", i))
		if err != nil || st != 200 {
			t.Fatalf("request %d through %s: %d %v\n%s", i, names[i%len(cs)], st, err, x.logText())
		}
	}
	// Every instance compared its share (the data plane's own counters).
	per := map[string]instanceCounts{}
	var sum instanceCounts
	for i, x := range cs {
		var n instanceCounts
		if !pollUntil(20*time.Second, func() bool { n = countsOf(x); return n.Compared >= total/int64(len(cs)) }) {
			t.Fatalf("%s compared %d of its %d in 20 s", names[i], n.Compared, total/len(cs))
		}
		if n.Requests != total/int64(len(cs)) || n.ServedLegacy != n.Requests || n.Compared != n.Requests {
			t.Errorf("%s's metrics: %+v, want %d requests, all served by legacy and compared", names[i], n, total/len(cs))
		}
		per[names[i]] = n
		sum = sum.add(n)
	}

	// After the stores flush and the noise counts are shared (pgrules adds
	// them every 5 s), the report through any instance is the fleet's.
	for i, x := range cs {
		var rep store.RouteReport
		ok := pollUntil(30*time.Second, func() bool {
			rep = x.report()
			return reportCounts(rep) == sum && rep.Mismatched == total/10 && rep.Noise == total-total/10
		})
		if !ok {
			t.Fatalf("report through %s: %+v (matched %d, mismatched %d, noise %d); want the sum of the instances %+v, %d mismatched, %d noise",
				names[i], reportCounts(rep), rep.Matched, rep.Mismatched, rep.Noise, sum, total/10, total-total/10)
		}
		flags := map[string]store.PathStat{}
		for _, p := range rep.Diffs {
			flags[p.Path] = p
		}
		if p := flags["$.nonce"]; !p.Noise || p.Count != total {
			t.Errorf("report through %s: $.nonce %+v, want noise, differing in all %d", names[i], p, total)
		}
		if p := flags["$.field"]; p.Noise || p.Count != total/10 {
			t.Errorf("report through %s: $.field %+v, want real, differing in %d", names[i], p, total/10)
		}
	}
	checkInstanceReports(t, cs[1], per)
	// The routes view of any instance counts the fleet too (refreshed from
	// the report every 5 s), not the instance's own share.
	for i, x := range cs {
		var got struct {
			Routes []struct {
				Name               string
				Requests, Compared int64
				Mismatched, Noise  int64
			}
		}
		if !pollUntil(10*time.Second, func() bool {
			x.getJSON("/api/v1/routes", &got)
			return len(got.Routes) == 1 && got.Routes[0].Requests == total && got.Routes[0].Compared == total &&
				got.Routes[0].Mismatched == total/10 && got.Routes[0].Noise == total-total/10
		}) {
			t.Errorf("GET /api/v1/routes through %s: %+v, want the fleet's %d requests and compared, %d mismatched", names[i], got.Routes, total, total/10)
		}
	}
}

// loadRun sends GET /item/N round-robin to the children until stop is
// closed (or max requests), pausing pause between requests, and counts what
// was sent and every answer that is not the backend's (a transport error,
// a status other than 200, no X-Backend).
type loadRun struct {
	sent, failed atomic.Int64
	mu           sync.Mutex
	firstFail    string
	done         chan struct{}
}

func startLoad(cs []*child, stop <-chan struct{}, max int64, pause time.Duration) *loadRun {
	l := &loadRun{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := int64(0); i < max; i++ {
			select {
			case <-stop:
				return
			default:
			}
			x := cs[i%int64(len(cs))]
			st, by, err := served(x.s.addr, fmt.Sprintf("/item/%d", i), fmt.Sprintf("user-%d", i%50), "")
			l.sent.Add(1)
			if err != nil || st != 200 || (by != "legacy" && by != "new") {
				l.failed.Add(1)
				l.mu.Lock()
				if l.firstFail == "" {
					l.firstFail = fmt.Sprintf("request %d through %s: status %d, backend %q, %v", i, x.s.addr, st, by, err)
				}
				l.mu.Unlock()
			}
			time.Sleep(pause)
		}
	}()
	return l
}

// PostgreSQL stopped under load: every client request is still answered by
// a backend (0 failed), a promote gets 503, every instance says
// tandem_fleet_database_up 0 and /readyz 200. Started again: up is 1 on
// every instance, rules changes work, and the counts sent during the
// outage are in the report (buffered and caught up) unless counted in
// tandem_store_dropped_total.
func TestFleetDatabaseOutageUnderLoad(t *testing.T) {
	pg := pgtest.Start(t)
	legacy := tb.Start(t, "legacy", tb.Mode{})
	newb := tb.Start(t, "new", tb.Mode{})
	names := []string{"a", "b", "c"}
	cs := startFleet(t, pg, names, [][2]string{{"legacy", legacy.URL}, {"new", newb.URL}},
		"    legacy: legacy\n    new: new\n    mirror: 100\n    sticky: header:X-User-Id")
	if st, b := cs[0].api("POST", "/api/v1/routes/up/promote", `{"percent": 20, "reason": "before the outage"}`); st != 200 {
		t.Fatalf("promote: %d %s", st, b)
	}
	for _, x := range cs {
		if !pollUntil(fleetApplyWithin, func() bool { return appliedVersion(x) == 2 }) {
			t.Fatalf("version 2 not in force on %s", x.s.addr)
		}
	}

	stop := make(chan struct{})
	load := startLoad(cs, stop, 3000, 5*time.Millisecond)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-load.done
	}()
	time.Sleep(time.Second)
	pg.Stop()
	downAt, sentAtStop := time.Now(), load.sent.Load()

	for i, x := range cs {
		if !pollUntil(15*time.Second, func() bool { return x.metrics()["tandem_fleet_database_up"] == 0 }) {
			t.Fatalf("%s: tandem_fleet_database_up still 1 15 s after PostgreSQL stopped", names[i])
		}
	}
	t.Logf("every instance says the database is down %v after it stopped", time.Since(downAt).Round(time.Millisecond))
	for i, x := range cs {
		if st, b := x.api("POST", "/api/v1/routes/up/promote", `{"percent": 50, "reason": "during the outage"}`); st != 503 {
			t.Errorf("%s: promote with the database down: %d %s, want 503", names[i], st, b)
		}
		if st, b := x.api("GET", "/readyz", ""); st != 200 {
			t.Errorf("%s: /readyz with the database down: %d %s, want 200", names[i], st, b)
		}
		if v := appliedVersion(x); v != 2 {
			t.Errorf("%s: applied version %d with the database down, want 2 (the rules in force stay)", names[i], v)
		}
		checkRoutesFleet(t, x, names[i], "degraded", names)
	}
	time.Sleep(time.Second)
	sentDuringOutage := load.sent.Load() - sentAtStop
	pg.Restart()
	upAt := time.Now()
	for i, x := range cs {
		if !pollUntil(20*time.Second, func() bool { return x.metrics()["tandem_fleet_database_up"] == 1 }) {
			t.Fatalf("%s: tandem_fleet_database_up still 0 20 s after PostgreSQL started again\n%s", names[i], x.logText())
		}
	}
	t.Logf("up again on every instance %v after PostgreSQL started; %d requests sent while it was down", time.Since(upAt).Round(time.Millisecond), sentDuringOutage)
	if sentDuringOutage < 50 {
		t.Fatalf("only %d requests were sent during the outage: the scenario did not load it", sentDuringOutage)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-load.done
	if n := load.failed.Load(); n != 0 {
		t.Fatalf("%d of %d client requests failed (first: %s)", n, load.sent.Load(), load.firstFail)
	}

	// Rules changes work again, and reach every instance.
	var v int64
	if !pollUntil(15*time.Second, func() bool {
		st, b, err := cs[1].apiErr("POST", "/api/v1/routes/up/promote", `{"percent": 40, "reason": "after the outage"}`)
		if err == nil && st == 200 {
			var r rules.Rules
			json.Unmarshal(b, &r)
			v = r.Version
		}
		return v != 0
	}) {
		t.Fatal("promote not accepted 15 s after PostgreSQL came back")
	}
	for i, x := range cs {
		if !pollUntil(fleetApplyWithin, func() bool { return appliedVersion(x) == v }) {
			t.Errorf("%s: version %d not in force within %v after the database came back", names[i], v, fleetApplyWithin)
		}
		checkRoutesFleet(t, x, names[i], "ok", names)
	}

	// Caught up: the report is the sum of what the instances served and
	// compared, or what is missing was counted as dropped.
	var sum instanceCounts
	per := map[string]instanceCounts{}
	var dropped int64
	for i, x := range cs {
		n := countsOf(x)
		per[names[i]] = n
		sum = sum.add(n)
		dropped += int64(x.metrics()["tandem_store_dropped_total"])
	}
	if sum.Requests != load.sent.Load() {
		t.Errorf("the instances' metrics count %d requests, the client sent %d", sum.Requests, load.sent.Load())
	}
	var rep store.RouteReport
	caught := pollUntil(30*time.Second, func() bool { rep = cs[2].report(); return reportCounts(rep) == sum })
	t.Logf("report %+v, instances %+v, dropped %d", reportCounts(rep), sum, dropped)
	switch {
	case caught && dropped == 0:
		// Everything buffered during the outage reached the database.
	case dropped > 0:
		if rep.Requests > sum.Requests || rep.Compared > sum.Compared {
			t.Errorf("report %+v counts more than the instances %+v", reportCounts(rep), sum)
		}
		t.Logf("%d store items dropped during the outage (counted in tandem_store_dropped_total)", dropped)
	default:
		t.Errorf("report through c %+v 30 s after the outage, want the instances' sum %+v (nothing dropped)", reportCounts(rep), sum)
	}
	if dropped == 0 {
		checkInstanceReports(t, cs[0], per)
	}
}

// kill -9 of an instance during writes loses nothing acknowledged: a loop
// of promotes through A, A killed mid-loop. Through B every acknowledged
// version is in the audit log once, and the last acknowledged (or a later)
// one is in force on B and C. The report data A's store had committed — the
// part the report through B showed before the kill — is still there
// (pgstore: a committed batch is PostgreSQL's to keep; only what was still
// buffered in A may be lost).
func TestFleetKill9DuringWrites(t *testing.T) {
	pg := pgtest.Start(t)
	legacy := tb.Start(t, "legacy", tb.Mode{})
	newb := tb.Start(t, "new", tb.Mode{})
	names := []string{"a", "b", "c"}
	cs := startFleet(t, pg, names, [][2]string{{"legacy", legacy.URL}, {"new", newb.URL}},
		"    legacy: legacy\n    new: new\n    mirror: 100\n    sticky: header:X-User-Id")
	a, b, c := cs[0], cs[1], cs[2]

	// Report data through A only, until the report through B shows it.
	stop := make(chan struct{})
	load := startLoad([]*child{a}, stop, 5000, 5*time.Millisecond)
	var before store.RouteReport
	if !pollUntil(20*time.Second, func() bool { before = b.report(); return before.Requests >= 50 && before.Compared >= 50 }) {
		t.Fatalf("the report through b shows %d requests of a's after 20 s", before.Requests)
	}

	type ack struct {
		version int64
		reason  string
	}
	acks := make(chan ack, 100)
	loopDone := make(chan error, 1)
	go func() {
		defer close(acks)
		for i := 1; i <= 99; i++ {
			reason := fmt.Sprintf("kill loop %d", i)
			st, body, err := a.apiErr("POST", "/api/v1/routes/up/promote", fmt.Sprintf(`{"percent": %d, "reason": %q}`, i, reason))
			if err != nil {
				loopDone <- nil // a is gone: this one is not acknowledged
				return
			}
			if st != 200 {
				loopDone <- fmt.Errorf("promote %d through a: %d %s", i, st, body)
				return
			}
			var r rules.Rules
			if err := json.Unmarshal(body, &r); err != nil {
				loopDone <- err
				return
			}
			acks <- ack{r.Version, reason}
		}
		loopDone <- fmt.Errorf("the loop ended before a was killed")
	}()
	var acked []ack
	for ak := range acks {
		acked = append(acked, ak)
		if len(acked) == 10 {
			before = b.report() // what the database has of a's, read just before the kill
			a.kill9()
		}
	}
	if err := <-loopDone; err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-load.done
	if len(acked) < 10 {
		t.Fatalf("%d promotes acknowledged before the kill", len(acked))
	}
	last := acked[len(acked)-1]
	t.Logf("%d promotes acknowledged by a, the last version %d; %d requests sent to a", len(acked), last.version, load.sent.Load())

	for i, x := range []*child{b, c} {
		if !pollUntil(fleetApplyWithin, func() bool { return appliedVersion(x) >= last.version }) {
			t.Errorf("%s has version %d in force, want the last acknowledged %d or later", names[i+1], appliedVersion(x), last.version)
		}
		if r := x.rules(); r.Version < last.version {
			t.Errorf("%s: rules version %d, want ≥ %d", names[i+1], r.Version, last.version)
		}
	}
	evs := b.events()
	for _, ak := range acked {
		n := 0
		for _, e := range evs {
			if e.NewVersion == ak.version {
				n++
				if e.Kind != "promote" || e.Reason != ak.reason {
					t.Errorf("event for acknowledged version %d: %+v, want promote %q", ak.version, e, ak.reason)
				}
			}
		}
		if n != 1 {
			t.Errorf("acknowledged version %d is in the audit log through b %d times, want once", ak.version, n)
		}
	}

	after := b.report()
	t.Logf("report through b: %d requests, %d compared before the kill; %d, %d after; %d sent", before.Requests, before.Compared, after.Requests, after.Compared, load.sent.Load())
	if after.Requests < before.Requests || after.Compared < before.Compared || after.Mirrored < before.Mirrored {
		t.Errorf("report through b after a's kill -9 %+v has less than it showed before %+v", reportCounts(after), reportCounts(before))
	}
	if after.Requests > load.sent.Load() {
		t.Errorf("report counts %d requests, a was sent %d", after.Requests, load.sent.Load())
	}
}
