package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// servedErrorsConfig: three routes with mirror 100 to a healthy new; legacy
// answers on /ok (and refuses nothing), times out on /slow, and refuses
// connections on /gone. Bodies over 4 KiB are refused.
const servedErrorsConfig = `
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
limits: {max_body: 4KiB}
backends:
  legacy: {url: "%s", timeout: 5s}
  slow:   {url: "%s", timeout: 300ms}
  gone:   {url: "%s", timeout: 5s}
  new:    {url: "%s", timeout: 5s}
routes:
  - {name: ok,   match: {path_prefix: /ok},   legacy: legacy, new: new, mirror: 100}
  - {name: slow, match: {path_prefix: /slow}, legacy: slow,   new: new, mirror: 100}
  - {name: gone, match: {path_prefix: /gone}, legacy: gone,   new: new, mirror: 100}
`

// servedView is the part of a route's numbers this test checks, decoded
// from both GET /api/v1/routes and GET /api/v1/report.
type servedView struct {
	Name, Route  string
	Requests     int64 `json:"requests"`
	ServedLegacy int64 `json:"served_legacy"`
	ServedNew    int64 `json:"served_new"`
	ServedTandem int64 `json:"served_tandem"`
	Mirrored     int64 `json:"mirrored"`
	ServedErrors struct {
		Legacy int64 `json:"legacy"`
		New    int64 `json:"new"`
		Tandem int64 `json:"tandem"`
	} `json:"served_errors"`
}

// Issue 18 item 4: 18 clients got 504 while the report and the UI said
// "errors legacy 0 / new 0", and a route showed Requests 390 below Mirrored
// 396. Every answer tandem gives a client on a route — the backend's, its
// own 502 and 504, a refused body — is one of the route's requests, an
// error answer is one of its errors, by who served it, and requests ≥
// mirrored; the live API, the report (after a restart, from the store) and
// tandem report all say what the clients got.
func TestErrorsClientsGotAreCounted(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	slow := tb.Start(t, "slow", tb.Mode{Kind: tb.KindHang})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfg := fmt.Sprintf(servedErrorsConfig, legacy.URL, slow.URL, tb.ClosedURL(t), newb.URL)
	p := startInProcess(t, cfg, "")

	got := map[string]map[int]int{} // route → status → clients
	send := func(route, path string, body io.Reader, n int64) {
		t.Helper()
		req, err := http.NewRequest("POST", p.proxyBase+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = n
		resp, err := p.httpClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got[route] == nil {
			got[route] = map[int]int{}
		}
		got[route][resp.StatusCode]++
	}
	const ok, slowN, goneN, big, declared = 30, 6, 6, 4, 2
	for i := 0; i < ok; i++ {
		send("ok", "/ok", strings.NewReader(fmt.Sprint(i)), -1)
	}
	for i := 0; i < big; i++ { // chunked: refused once 4 KiB went by, legacy has seen part of it
		send("ok", "/ok", tb.PatternReader(int64(i), 64<<10), -1)
	}
	for i := 0; i < declared; i++ { // declared over max_body: refused before any backend
		send("ok", "/ok", tb.PatternReader(int64(i), 8<<10), 8<<10)
	}
	for i := 0; i < slowN; i++ {
		send("slow", "/slow", strings.NewReader("x"), 1)
	}
	for i := 0; i < goneN; i++ {
		send("gone", "/gone", strings.NewReader("x"), 1)
	}
	if got["ok"][200] != ok || got["ok"][413] != big+declared || got["slow"][504] != slowN || got["gone"][502] != goneN {
		t.Fatalf("clients got %v", got)
	}

	type want struct {
		requests, legacy, tandem, mirrored int64
		errLegacy, errTandem               int64
	}
	wants := map[string]want{
		"ok":   {requests: ok + big + declared, legacy: ok, tandem: big + declared, mirrored: ok, errTandem: big + declared},
		"slow": {requests: slowN, legacy: slowN, errLegacy: slowN},
		"gone": {requests: goneN, legacy: goneN, errLegacy: goneN},
	}
	check := func(where string, views []servedView) {
		t.Helper()
		seen := 0
		for _, v := range views {
			name := v.Name + v.Route
			w, ok := wants[name]
			if !ok {
				continue
			}
			seen++
			g := want{v.Requests, v.ServedLegacy, v.ServedTandem, v.Mirrored, v.ServedErrors.Legacy, v.ServedErrors.Tandem}
			if g != w || v.ServedNew != 0 || v.ServedErrors.New != 0 {
				t.Errorf("%s, route %s: %+v (new %d, new errors %d), want %+v: what the clients got, %v",
					where, name, g, v.ServedNew, v.ServedErrors.New, w, got[name])
			}
			if v.Requests < v.Mirrored {
				t.Errorf("%s, route %s: requests %d below mirrored %d", where, name, v.Requests, v.Mirrored)
			}
		}
		if seen != len(wants) {
			t.Errorf("%s: %d of %d routes reported: %+v", where, seen, len(wants), views)
		}
	}

	// The live numbers.
	st, b := p.api("GET", "/api/v1/routes", "", "", "")
	if st != 200 {
		t.Fatalf("GET routes: %d %s", st, b)
	}
	var live struct{ Routes []servedView }
	if err := json.Unmarshal(b, &live); err != nil {
		t.Fatal(err)
	}
	check("GET /api/v1/routes", live.Routes)

	// The stored ones, after a restart.
	p.stop()
	p2 := startInProcess(t, cfg, p.dataDir)
	st, b = p2.api("GET", "/api/v1/report", "", "", "")
	if st != 200 {
		t.Fatalf("GET report: %d %s", st, b)
	}
	var rep struct{ Routes []servedView }
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	check("GET /api/v1/report", rep.Routes)

	// tandem report prints them.
	t.Setenv("TANDEM_ADMIN_TOKEN", p2.run.Token())
	var out, errb bytes.Buffer
	if code := cli(t, &out, &errb, "report", "-admin", p2.apiBase); code != 0 {
		t.Fatalf("tandem report: %d %s", code, errb.String())
	}
	for _, line := range []string{
		fmt.Sprintf("slow: served legacy %d, new 0, tandem 0; errors served legacy %d, new 0, tandem 0;", slowN, slowN),
		fmt.Sprintf("gone: served legacy %d, new 0, tandem 0; errors served legacy %d, new 0, tandem 0;", goneN, goneN),
		fmt.Sprintf("ok: served legacy %d, new 0, tandem %d; errors served legacy 0, new 0, tandem %d;", ok, big+declared, big+declared),
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("tandem report lacks %q:\n%s", line, out.String())
		}
	}
}
