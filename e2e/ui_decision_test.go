package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	"github.com/tandem-proxy/tandem/internal/browsertest"
	"github.com/tandem-proxy/tandem/internal/latencyfmt"
	"github.com/tandem-proxy/tandem/store"
)

// uiDecisionConfig is uiRampConfig's ramped route, whose diff-rate gate
// fails (every live comparison differs), and a route without a ramp.
const uiDecisionConfig = uiRampConfig + `  - name: images
    match: {path_prefix: /img}
    legacy: legacy
    new: new
`

// What a person deciding "promote or not" sees, at 1400 and at 800 px:
// the time window changes the numbers (stored minutes three hours old are
// in the 6 h window, not in the last hour's), survives a reload through
// the URL, and draws the trend from stored minutes; a red route's Promote
// is not the primary button and its dialog names the failing gate before
// it lets the promotion through; the header table colours a noise header
// as noise and a noise-only sample is badged noise; latencies have three
// significant digits; column heads explain themselves on focus; nothing of
// the overview is clipped, and at 800 px the routes are cards and a
// sample's images stay side by side.
func TestUIDecision(t *testing.T) {
	chrome := browsertest.Chromium(t)
	p := startUIProxy(t, uiDecisionConfig)

	for i := 0; i < 12; i++ {
		p.sendAs(fmt.Sprintf("/api/items/%d", i), fmt.Sprint("u", i))
	}
	p.sendAs("/img/png", "u1")
	p.sendAs("/img/jpeg", "u2")

	// Stored minutes three hours old: 30 matching comparisons and one
	// mismatch (with a sample) of api, and their traffic.
	st := p.run.Store()
	old := time.Now().Add(-3 * time.Hour)
	body := func(s string) *compare.Response {
		return &compare.Response{Status: 200, Body: []byte(s), Size: int64(len(s)),
			Header: []compare.HeaderField{{Name: "Content-Type", Value: "application/json"}}}
	}
	ex := func(id string, at time.Time, out compare.Outcome, diffs ...compare.Difference) *exchange.Exchange {
		return &exchange.Exchange{Route: "api", RequestID: id, Method: "GET", Path: "/api/old", ServedBy: "legacy", At: at,
			Legacy: body(`{"v":1}`), New: body(`{"v":2}`), LegacyLatency: 12 * time.Millisecond, NewLatency: 14 * time.Millisecond,
			Result: compare.Result{Outcome: out, Diffs: diffs}}
	}
	for i := 0; i < 30; i++ {
		if !st.Record(ex(fmt.Sprint("old-", i), old.Add(time.Duration(i)*time.Second), compare.OutcomeMatch)) {
			t.Fatal("Record refused")
		}
	}
	if !st.Record(ex("old-mismatch", old.Add(40*time.Second), compare.OutcomeMismatch,
		compare.Difference{Kind: compare.KindJSON, Path: "$.v", Legacy: "1", New: "2"})) {
		t.Fatal("Record refused")
	}
	// A sample whose only difference is a header marked noise below.
	hdr := func(side string) *compare.Response {
		r := body(`{"v":1}`)
		r.Header = append(r.Header, compare.HeaderField{Name: "X-Served-At", Value: side})
		return r
	}
	noiseOnly := ex("noise-only", time.Now().Add(-2*time.Minute), compare.OutcomeMismatch,
		compare.Difference{Kind: compare.KindHeader, Path: "$.header.X-Served-At", Legacy: "legacy", New: "new"})
	noiseOnly.Legacy, noiseOnly.New, noiseOnly.Path = hdr("legacy"), hdr("new"), "/api/noise-only"
	if !st.Record(noiseOnly) {
		t.Fatal("Record refused")
	}
	// The counters of the old traffic: one answer per comparison.
	if !st.AddCounters("api", old, storeCounters(31)) {
		t.Fatal("AddCounters refused")
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"X-Backend", "X-Served-At"} {
		if s, b := p.api("POST", "/api/v1/routes/api/noise", "", "application/json", `{"path":"$.header.`+h+`","reason":"the backend names itself"}`); s != 200 {
			t.Fatalf("mark %s as noise: %d %s", h, s, b)
		}
	}
	// Wait for the live comparisons and the gates.
	var gateDiff float64
	waitFor(t, func() bool {
		var v rampView
		_, b := p.api("GET", "/api/v1/routes", "", "", "")
		json.Unmarshal(b, &v)
		for _, r := range v.Routes {
			if r.Name == "api" && r.Ramp != nil && len(r.Ramp.Gates) == 3 && r.Ramp.Gates[0].Samples >= 12 && r.Ramp.Gates[0].State == "fail" {
				gateDiff = r.Ramp.Gates[0].Value
				return len(p.samples("api", "$.height")) > 0 && len(p.samples("images", "")) > 0
			}
		}
		return false
	})
	report := func(since time.Duration) (compared int64, rate float64) {
		q := "/api/v1/report?route=api"
		if since > 0 {
			q += "&since=" + time.Now().Add(-since).UTC().Format(time.RFC3339)
		}
		var out struct {
			Routes []struct {
				Compared int64   `json:"compared"`
				DiffRate float64 `json:"diff_rate"`
			}
		}
		_, b := p.api("GET", q, "", "", "")
		json.Unmarshal(b, &out)
		return out.Routes[0].Compared, out.Routes[0].DiffRate
	}
	c1h, r1h := report(time.Hour)
	c6h, r6h := report(6 * time.Hour)
	if c6h != c1h+31 {
		t.Fatalf("report: %d compared in 1 h, %d in 6 h; want the 31 old ones more", c1h, c6h)
	}

	b := startBrowser(t, chrome)
	b.Do("1400 px", chromedp.EmulateViewport(1400, 1000))
	b.Do("open /ui/", chromedp.Navigate(p.apiBase+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	b.Do("enter the token", chromedp.SetValue(chromedp.ID("token"), p.run.Token()), chromedp.Click(chromedp.ID("boot-submit")))
	b.WaitView("overview")

	rowText := func(route, field string) string {
		return browsertest.Eval[string](b, fmt.Sprintf(`(document.querySelector('tr[data-route=%q] [data-field=%q]') || {}).innerText || ""`, route, field))
	}
	firstLine := func(s string) string { return strings.TrimSpace(strings.SplitN(s, "\n", 2)[0]) }
	pct := func(r float64) string { return fmt.Sprintf("%.2f%%", r*100) }

	// The default window is the last hour.
	b.Wait(`document.querySelector('#window-picker button[data-window="1h"][aria-pressed="true"]') !== null`)
	if got := firstLine(rowText("api", "compared")); got != fmt.Sprint(c1h) {
		t.Errorf("1 h: api compared %q, want %d", got, c1h)
	}
	if got := firstLine(rowText("api", "diff_rate")); got != pct(r1h) {
		t.Errorf("1 h: api diff rate %q, want %s", got, pct(r1h))
	}
	b.Shot("decision-1h-1400")

	// 6 h: the old minutes count; the trend has their bucket and today's.
	b.Do("choose 6 h", chromedp.Click(chromedp.CSS(`#window-picker button[data-window="6h"]`)))
	b.Wait(fmt.Sprintf(`(document.querySelector('tr[data-route="api"] [data-field="compared"]') || {}).innerText.startsWith(%q)`, fmt.Sprint(c6h)))
	if h := browsertest.Eval[string](b, `location.hash`); !strings.Contains(h, "since=6h") {
		t.Errorf("after choosing 6 h the URL's hash is %q, want since=6h in it", h)
	}
	if got := firstLine(rowText("api", "diff_rate")); got != pct(r6h) {
		t.Errorf("6 h: api diff rate %q, want %s", got, pct(r6h))
	}
	buckets := p.seriesBuckets("api", 6*time.Hour, "5m")
	if buckets < 2 {
		t.Fatalf("the 6 h series of api has %d buckets with comparisons, want the old one and today's", buckets)
	}
	b.Wait(fmt.Sprintf(`+document.querySelector('tr[data-route="api"] svg.spark').dataset.points === %d`, buckets))
	// A reload (a shared link) keeps the window.
	b.Do("reload", chromedp.Reload())
	b.WaitView("overview")
	b.Wait(`document.querySelector('#window-picker button[data-window="6h"][aria-pressed="true"]') !== null`)
	b.Wait(fmt.Sprintf(`(document.querySelector('tr[data-route="api"] [data-field="compared"]') || {}).innerText.startsWith(%q)`, fmt.Sprint(c6h)))
	b.Shot("decision-6h-1400")

	// Promote: not primary on the red route, primary on the other.
	bg := func(route string) string {
		return browsertest.Eval[string](b, fmt.Sprintf(`getComputedStyle(document.querySelector('tr[data-route=%q] button[data-action="promote"]')).backgroundColor`, route))
	}
	primary := browsertest.Eval[string](b, `(() => { const b = document.createElement("button"); document.body.appendChild(b);
		const c = getComputedStyle(b).backgroundColor; b.remove(); return c; })()`)
	if got := bg("api"); got == primary {
		t.Errorf("the red route's Promote has the primary background %s", got)
	}
	if got := bg("images"); got != primary {
		t.Errorf("images' Promote background %s, want the primary %s (nothing fails there)", got, primary)
	}
	// Nothing of the overview is clipped at 1400 px.
	b.checkUnclipped("1400 px")

	// Column heads explain themselves on focus.
	// A headless tab has no window focus: emulate it, so :focus applies.
	b.Do("emulate focus", func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
		return chromedp.Void{}, err
	})
	b.Do("focus the Route head", chromedp.Focus(chromedp.CSS(`#routes-table thead abbr[data-help]`)))
	if got := browsertest.Eval[string](b, `document.activeElement.tagName + " " + document.activeElement.matches(":focus") + " " + getComputedStyle(document.activeElement, "::after").content`); !strings.Contains(got, "backends") {
		t.Errorf("a focused column head shows %q, want its explanation", got)
	}
	for _, head := range []string{"Compared", "Diff rate", "Ramp"} {
		if got := browsertest.Eval[string](b, fmt.Sprintf(`([...document.querySelectorAll("#routes-table thead abbr")].find(a => a.innerText.toLowerCase() === %q) || {}).title || ""`, strings.ToLower(head))); len(got) < 20 {
			t.Errorf("column head %s has the explanation %q", head, got)
		}
	}

	// The red route's dialog: the gates with their numbers, what fails, and
	// no promotion without the box ticked.
	b.Do("promote api", chromedp.Click(chromedp.CSS(`tr[data-route="api"] button[data-action="promote"]`)))
	b.Wait(`document.querySelector('dialog[data-dialog="promote"][open]') !== null`)
	dlg := browsertest.Eval[string](b, `document.querySelector('dialog[data-dialog="promote"]').innerText`)
	wantFail := "diff rate " + strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", gateDiff*100), "0"), ".") + "% > limit 1%"
	for _, want := range []string{"Failing now", wantFail, "Diff rate", "bound", "limit 1%", "Error rate", "Latency ratio"} {
		if !strings.Contains(dlg, want) {
			t.Errorf("the promote dialog of the red route lacks %q:\n%s", want, dlg)
		}
	}
	b.Do("fill and review without ticking", chromedp.SetValue(chromedp.CSS(`dialog input[name="reason"]`), "ui test: red"),
		chromedp.Click(chromedp.CSS(`dialog button[data-action="review"]`)))
	b.Wait(`!document.querySelector("dialog .error").hidden`)
	if got := browsertest.Eval[string](b, `document.querySelector("dialog .error").innerText`); !strings.Contains(got, wantFail) {
		t.Errorf("review without the box: %q, want it to name %q", got, wantFail)
	}
	b.Do("tick and review", chromedp.Click(chromedp.CSS(`dialog input[name="acknowledge"]`)),
		chromedp.Click(chromedp.CSS(`dialog button[data-action="review"]`)))
	b.Wait(`document.querySelector('dialog [data-step="confirm"]') !== null`)
	confirm := browsertest.Eval[string](b, `document.querySelector('dialog [data-step="confirm"]').innerText`)
	if !strings.Contains(confirm, "Promoting while failing") || !strings.Contains(confirm, wantFail) ||
		browsertest.Eval[string](b, `document.querySelector('dialog button[data-action="confirm"]').innerText`) != "Promote anyway" {
		t.Errorf("the confirmation does not name what fails:\n%s", confirm)
	}
	b.Shot("decision-promote-red")
	b.Do("promote anyway", chromedp.Click(chromedp.CSS(`dialog button[data-action="confirm"]`)))
	waitFor(t, func() bool {
		for _, r := range p.rules().Routes {
			if r.Name == "api" {
				return r.ServeNew == 5
			}
		}
		return false
	})

	// A route without a ramp: the window's diff rate, and no limit.
	b.Do("promote images", chromedp.Click(chromedp.CSS(`tr[data-route="images"] button[data-action="promote"]`)))
	b.Wait(`document.querySelector('dialog[data-dialog="promote"][open]') !== null`)
	if got := browsertest.Eval[string](b, `document.querySelector('dialog [data-field="dialog-diff-rate"]').innerText`); !strings.Contains(got, "no limit") || !strings.Contains(got, "last 6 h") {
		t.Errorf("no-ramp dialog: %q, want the window's diff rate and no limit", got)
	}
	if browsertest.Eval[bool](b, `document.querySelector('dialog [data-field="failing"]') !== null`) {
		t.Error("the no-ramp route's dialog says something fails")
	}
	b.Do("cancel", chromedp.Click(chromedp.CSS(`dialog button.secondary`)))
	b.Wait(`document.querySelector("dialog") === null`)

	// Route view: the report and the samples follow the window.
	b.Hash("#/route/api?since=6h")
	b.WaitView("route")
	if got := browsertest.Eval[string](b, `document.querySelector('[data-field="r-compared"] .value').innerText`); got != fmt.Sprint(c6h) {
		t.Errorf("route view, 6 h: compared %q, want %d", got, c6h)
	}
	if !browsertest.Eval[bool](b, `[...document.querySelectorAll("#samples tr[data-sample]")].some(tr => tr.innerText.includes("/api/old"))`) {
		t.Error("route view, 6 h: the 3-hour-old sample is not listed")
	}
	b.Wait(fmt.Sprintf(`+document.querySelector("#chart-diff-rate svg").dataset.points === %d`, buckets))
	for _, side := range []string{"legacy", "new"} {
		got := browsertest.Eval[string](b, fmt.Sprintf(`document.querySelector('#latency tr[data-side=%q] [data-field="p99"]').innerText`, side))
		if !regexp.MustCompile(`^(\d{3}|\d{2}\.\d|\d\.\d{2}|0\.\d{1,3}) ms$|^(\d{3}|\d{2}\.\d|\d\.\d{2}) s$`).MatchString(got) {
			t.Errorf("%s p99 printed %q, want 3 significant digits (842 ms, 84.2 ms, 8.42 ms, 1.23 s)", side, got)
		}
	}
	b.Shot("decision-route-6h")
	b.Hash("#/route/api?since=1h")
	b.WaitView("route")
	if got := browsertest.Eval[string](b, `document.querySelector('[data-field="r-compared"] .value').innerText`); got != fmt.Sprint(c1h) {
		t.Errorf("route view, 1 h: compared %q, want %d", got, c1h)
	}
	if browsertest.Eval[bool](b, `[...document.querySelectorAll("#samples tr[data-sample]")].some(tr => tr.innerText.includes("/api/old"))`) {
		t.Error("route view, 1 h: the 3-hour-old sample is listed")
	}
	// The noise-only sample is badged noise in the list and on its page.
	if got := browsertest.Eval[string](b, `([...document.querySelectorAll("#samples tr[data-sample]")].find(tr => tr.innerText.includes("/api/noise-only")) || {querySelector: () => ({innerText: "missing"})}).querySelector('[data-field="outcome"]').innerText`); got != "noise" {
		t.Errorf("the noise-only sample is badged %q in the list, want noise", got)
	}
	b.Hash("#/sample/" + p.sampleOf("api", "/api/noise-only"))
	b.WaitView("sample")
	if got := browsertest.Eval[string](b, `document.querySelector(".view-head .badge.outcome").innerText`); got != "noise" {
		t.Errorf("the noise-only sample's page badges it %q, want noise", got)
	}
	// Header colours agree with the noise flags: on a live JSON sample
	// X-Backend (marked noise) is drawn as noise, X-Api-Version counts.
	b.Hash("#/sample/" + p.samples("api", "$.height")[0].ID)
	b.WaitView("sample")
	type hdrRow struct{ State, Class, Bg, Flag string }
	row := func(name string) hdrRow {
		return browsertest.Eval[hdrRow](b, fmt.Sprintf(`(() => { const tr = document.querySelector('#headers tr[data-header=%q]');
			const d = [...document.querySelectorAll("#diff-table tr[data-path]")].find(r => r.dataset.path === "$.header." + %q);
			return {State: tr.dataset.state, Class: tr.className, Bg: getComputedStyle(tr.querySelector("td")).backgroundColor,
				Flag: d && d.querySelector(".badge.muted-badge") ? "noise" : "counts"}; })()`, name, name))
	}
	backend, version := row("X-Backend"), row("X-Api-Version")
	if backend.State != "noise" || backend.Flag != "noise" || version.State != "counts" || version.Flag != "counts" || backend.Bg == version.Bg {
		t.Errorf("header rows X-Backend %+v, X-Api-Version %+v; want X-Backend drawn as noise (as its difference is flagged) and X-Api-Version as counting, in other colours", backend, version)
	}
	b.Shot("decision-sample-headers")

	// 800 px: the overview is cards, nothing off screen; a sample's images
	// side by side.
	b.Do("800 px", chromedp.EmulateViewport(800, 1000))
	b.Hash("#/?since=6h")
	b.WaitView("overview")
	if d := browsertest.Eval[string](b, `getComputedStyle(document.querySelector("#routes-table tbody tr")).display`); d != "grid" {
		t.Errorf("800 px: a route row is displayed %q, want a card (grid)", d)
	}
	b.checkUnclipped("800 px")
	b.Shot("decision-overview-800")
	b.Hash("#/sample/" + p.sampleOf("images", "/img/png"))
	b.WaitView("sample")
	b.Wait(`[...document.querySelectorAll("#images img")].length === 3`)
	type box struct{ Left, Top, Right, Bottom float64 }
	rect := func(sel string) box {
		return browsertest.Eval[box](b, `(() => { const r = document.querySelector('`+sel+`').getBoundingClientRect();
			return {Left: r.left, Top: r.top, Right: r.right, Bottom: r.bottom}; })()`)
	}
	l, n := rect(`figure[data-figure="legacy"] img`), rect(`figure[data-figure="new"] img`)
	if n.Left < l.Right || l.Top != n.Top || n.Right > 800 || l.Right-l.Left < 150 {
		t.Errorf("800 px: legacy image %+v, new image %+v; want them side by side, level, inside the viewport", l, n)
	}
	// The failing measurements are in the failing colour, not new's green.
	colours := browsertest.Eval[[]string](b, `(() => {
		const bad = getComputedStyle(document.querySelector(".bad-text")).color;
		const green = (() => { const s = document.createElement("span"); s.className = "val new"; document.body.appendChild(s);
			const c = getComputedStyle(s).color; s.remove(); return c; })();
		return [bad, green].concat(["$.image.psnr", "$.image.ssim", "$.image.mean_shift"].flatMap(p => {
			const td = document.querySelector('#diff-table tr[data-path="' + p + '"] td[data-measured]');
			const tree = document.querySelector('#diff-tree [data-path="' + p + '"] .val:last-of-type');
			return [td ? getComputedStyle(td).color : "missing", tree ? getComputedStyle(tree).color : "missing"];
		}));
	})()`)
	for i, c := range colours[2:] {
		if c != colours[0] || c == colours[1] {
			t.Errorf("measurement %d (PSNR, SSIM, ΔE00 in the table and the tree) drawn in %s; want the failing %s, not new's %s", i, c, colours[0], colours[1])
		}
	}
	b.Shot("decision-sample-800")

	// Latency and event details printed by the same rules as the CLI.
	for _, c := range []struct {
		ms   float64
		want string
	}{{842.4, "842 ms"}, {84.24, "84.2 ms"}, {8.424, "8.42 ms"}, {0.5, "0.500 ms"}, {0.08424, "0.0842 ms"}, {999.7, "1.00 s"},
		{1234, "1.23 s"}, {10092.5, "10.1 s"}, {1234567, "1235 s"}, {0, "—"}} {
		got := browsertest.Eval[string](b, fmt.Sprintf(`window.tandemFormat.fmtMS(%v)`, c.ms))
		if got != c.want {
			t.Errorf("latency %v ms printed %q, want %q", c.ms, got, c.want)
		}
		// One rule: the CLI's (internal/latencyfmt) prints the same.
		if c.ms != 0 && latencyfmt.Millis(c.ms) != got {
			t.Errorf("latency %v ms: the UI prints %q, the CLI %q", c.ms, got, latencyfmt.Millis(c.ms))
		}
	}
	for _, c := range []struct {
		key   string
		value float64
		want  string
	}{{"held_seconds", 22.000066, "held 22 s"}, {"diff_rate_upper", 0.021345, "diff rate upper bound 2.13%"},
		{"new_p99_seconds", 0.0842, "new p99 84.2 ms"}, {"compared", 1200, "compared 1,200"}, {"latency_ratio", 1.23456, "latency ratio 1.23×"}} {
		if got := browsertest.Eval[string](b, fmt.Sprintf(`window.tandemFormat.eventDetail(%q, %v).join(" ")`, c.key, c.value)); got != c.want {
			t.Errorf("event detail %s %v printed %q, want %q", c.key, c.value, got, c.want)
		}
	}
	b.CheckConsole()
}

// checkUnclipped fails when a route's action column (its buttons and
// gates) or any of its fields is outside the viewport, or the page or the
// routes table scrolls sideways.
func (b *browser) checkUnclipped(where string) {
	b.T().Helper()
	type out struct {
		Problems []string
	}
	got := browsertest.Eval[out](b, `(() => {
		const p = [];
		const vw = document.documentElement.clientWidth;
		if (document.documentElement.scrollWidth > vw) p.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " > " + vw);
		const wrap = document.querySelector(".routes-wrap");
		if (wrap && wrap.scrollWidth > wrap.clientWidth + 1) p.push("the routes table scrolls sideways: " + wrap.scrollWidth + " > " + wrap.clientWidth);
		const right = wrap ? Math.min(vw, wrap.getBoundingClientRect().right) : vw;
		for (const tr of document.querySelectorAll("#routes-table tr[data-route]")) {
			const els = [...tr.querySelectorAll('.actions button, .actions [data-gate], [data-field="diff_rate"], [data-field="breakers"], [data-field="ramp"], [data-field="serve_new"]')];
			if (!els.some(e => e.matches('button[data-action="promote"]'))) p.push(tr.dataset.route + ": no Promote button");
			for (const e of els) {
				const r = e.getBoundingClientRect();
				if (r.width === 0 || r.left < 0 || r.right > right + 0.5) p.push(tr.dataset.route + ": " + (e.dataset.action || e.dataset.gate || e.dataset.field) + " at " + Math.round(r.left) + ".." + Math.round(r.right) + " outside 0.." + Math.round(right));
			}
		}
		return {Problems: p};
	})()`)
	for _, s := range got.Problems {
		b.T().Errorf("%s: %s", where, s)
	}
}

// sampleOf is the id of a stored sample of route for the request path
// reqPath.
func (p *inproc) sampleOf(route, reqPath string) string {
	p.t.Helper()
	for _, s := range p.samples(route, "") {
		if s.Path == reqPath {
			return s.ID
		}
	}
	p.t.Fatalf("route %s has no sample of %s", route, reqPath)
	return ""
}

// storeCounters is n answers served by legacy, all mirrored.
func storeCounters(n int64) store.Counters {
	return store.Counters{Requests: n, ServedLegacy: n, Sent: n}
}

// seriesBuckets counts the buckets with comparisons in GET /api/v1/series
// of route over the last since.
func (p *inproc) seriesBuckets(route string, since time.Duration, step string) int {
	p.t.Helper()
	q := "/api/v1/series?route=" + route + "&step=" + step + "&since=" + time.Now().Add(-since).UTC().Format(time.RFC3339)
	st, b := p.api("GET", q, "", "", "")
	var out struct {
		Routes []struct {
			Points []struct {
				Compared int64 `json:"compared"`
			} `json:"points"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(b, &out); st != 200 || err != nil || len(out.Routes) != 1 {
		p.t.Fatalf("GET %s: %d %v %s", q, st, err, b)
	}
	n := 0
	for _, pt := range out.Routes[0].Points {
		if pt.Compared > 0 {
			n++
		}
	}
	return n
}
