package admin

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tandem-proxy/tandem/internal/browsertest"
	"github.com/tandem-proxy/tandem/store"
)

// What a person sees of a fleet at 1400 px: the live instances with the
// rules version each applied and when it was last seen, this one marked;
// "fleet: degraded" once the database is unreachable; and an instance
// selector whose choice narrows the numbers to that instance's (the
// numbers ReportsFor gives, not the fleet's), goes into the URL's hash
// beside ?since=, survives a reload, reaches the route view's report and
// samples, and goes back to the fleet's with "all instances".
func TestUIFleetInBrowser(t *testing.T) {
	chrome := browsertest.Chromium(t)
	rep := func(compared int64, rate float64) *memReports {
		return &memReports{report: []store.RouteReport{{Route: "img", Requests: compared + 10, Compared: compared,
			Mismatched: int64(rate * float64(compared)), DiffRate: rate}}}
	}
	all, a, b := rep(600, 0.05), rep(150, 0.02), rep(450, 0.06)
	var degraded atomic.Bool
	seen := time.Now().Add(-2 * time.Second)
	fleet := func() FleetStatus {
		st := "ok"
		if degraded.Load() {
			st = "degraded"
		}
		return FleetStatus{Database: st, Instance: "a:8080", Instances: []InstanceStatus{
			{Name: "a:8080", StartedAt: seen.Add(-time.Hour), LastSeen: seen, AppliedVersion: 7},
			{Name: "b:8080", StartedAt: seen.Add(-2 * time.Hour), LastSeen: seen.Add(-20 * time.Second), AppliedVersion: 6},
		}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Deps{
		Token:   uiTestToken,
		Rules:   newMemRules(),
		Reports: all,
		Routes: func() []RouteStatus {
			return []RouteStatus{{Name: "img", Legacy: "legacy", New: "new", Requests: 610, Breakers: map[string]string{}}}
		},
		Fleet: fleet,
		ReportsFor: func(name string) (Reports, error) {
			switch name {
			case "a:8080":
				return a, nil
			case "b:8080":
				return b, nil
			}
			return nil, fmt.Errorf("%w %q", ErrUnknownInstance, name)
		},
	})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Shutdown(); <-done })
	base := "http://" + ln.Addr().String()

	br := startUIBrowser(t, chrome)
	br.Do("1400 px", chromedp.EmulateViewport(1400, 1000))
	br.Do("open /ui/", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	br.Do("enter the token", chromedp.SetValue(chromedp.ID("token"), uiTestToken), chromedp.Click(chromedp.ID("boot-submit")))
	br.WaitView("overview")

	compared := func() string {
		return browsertest.Eval[string](br, `((document.querySelector('tr[data-route="img"] [data-field="compared"]') || {}).innerText || "").split("\n")[0].trim()`)
	}
	waitCompared := func(want string) {
		t.Helper()
		br.Wait(fmt.Sprintf(`((document.querySelector('tr[data-route="img"] [data-field="compared"]') || {}).innerText || "").startsWith(%q)`, want))
	}

	// The live instances, by name, this one marked, with their versions.
	br.Wait(`document.querySelectorAll('#instances tr[data-instance]').length === 2`)
	rows := browsertest.Eval[[]string](br, `[...document.querySelectorAll('#instances tr[data-instance]')].map((r) => r.innerText.replace(/\s+/g, " ").trim())`)
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "a:8080 this one v7") || !strings.HasPrefix(rows[1], "b:8080 v6 behind") {
		t.Errorf("instance rows %q; want a:8080 (this one) at v7, then b:8080 at v6, behind", rows)
	}
	if !strings.Contains(rows[0], "s ago") && !strings.Contains(rows[0], "just now") || !strings.Contains(rows[1], "s ago") {
		t.Errorf("instance rows %q lack when each was last seen", rows)
	}
	if got := browsertest.Eval[bool](br, `!!document.getElementById("fleet-degraded")`); got {
		t.Error(`"fleet: degraded" shown while the database is ok`)
	}
	// The fleet's numbers first.
	waitCompared("600")
	opts := browsertest.Eval[[]string](br, `[...document.querySelectorAll('#instance-picker option')].map((o) => o.value + "=" + o.textContent)`)
	if strings.Join(opts, "|") != "=all instances|a:8080=a:8080 (this one)|b:8080=b:8080" {
		t.Errorf("instance selector offers %q", opts)
	}
	if v := browsertest.Eval[bool](br, `document.getElementById("instance-picker").offsetParent !== null`); !v {
		t.Error("the instance selector is not visible")
	}

	// The database goes away: the notice is there at the next poll.
	degraded.Store(true)
	br.Wait(`(document.getElementById("fleet-degraded") || {}).offsetParent != null`)
	if txt := browsertest.Eval[string](br, `document.getElementById("fleet-degraded").innerText`); !strings.HasPrefix(txt, "fleet: degraded") || !strings.Contains(txt, "rule changes get 503") {
		t.Errorf("degraded notice %q", txt)
	}
	br.Shot("fleet-degraded-1400")

	// Choosing b shows b's numbers, and the URL says so.
	br.pick("b:8080")
	waitCompared("450")
	if got := browsertest.Eval[string](br, `document.querySelector('tr[data-route="img"] [data-field="diff_rate"]').innerText.split("\n")[0].trim()`); got != "6.00%" {
		t.Errorf("b's diff rate shown %q, want 6.00%%", got)
	}
	if h := br.HashParam("instance"); h != "b:8080" {
		t.Errorf("after choosing b the hash's instance is %q (hash %q)", h, browsertest.Eval[string](br, `location.hash`))
	}
	if !strings.HasPrefix(b.lastAsked(), "series ") && !strings.HasPrefix(b.lastAsked(), "report ") {
		t.Errorf("b's reads were last asked %q", b.lastAsked())
	}
	br.Shot("fleet-instance-b-1400")

	// The window and the instance together in the hash; a reload keeps both.
	br.Do("choose 6 h", chromedp.Click(chromedp.CSS(`#window-picker button[data-window="6h"]`)))
	br.Wait(`location.hash.includes("since=6h")`)
	if h := br.HashParam("instance"); h != "b:8080" {
		t.Errorf("after choosing 6 h the instance in the hash is %q", h)
	}
	br.Do("reload", chromedp.Reload())
	br.WaitView("overview")
	waitCompared("450")
	if v := browsertest.Eval[string](br, `document.getElementById("instance-picker").value`); v != "b:8080" {
		t.Errorf("after a reload the selector says %q, want b:8080", v)
	}

	// The route's view reads b's report and b's samples.
	nb := len(b.asked)
	br.Do("open the route", chromedp.Click(chromedp.CSS(`tr[data-route="img"] td.name a`)))
	br.WaitView("route")
	if got := browsertest.Eval[string](br, `document.querySelector('[data-field="r-compared"] .value').innerText`); got != "450" {
		t.Errorf("route view of b: compared %q, want 450", got)
	}
	b.mu.Lock()
	since := b.asked[nb:]
	b.mu.Unlock()
	sawSamples := false
	for _, q := range since {
		sawSamples = sawSamples || strings.HasPrefix(q, "samples {img  50}")
	}
	if !sawSamples {
		t.Errorf("the route view did not read b's samples: %q", since)
	}
	if got := browsertest.Eval[string](br, `document.querySelector('[data-field="r-since"]').innerText`); !strings.Contains(got, "instance b:8080") {
		t.Errorf("route report says %q, not whose numbers", got)
	}

	// Back to the whole fleet.
	br.Do("overview", chromedp.Click(chromedp.CSS(`nav a[data-nav="overview"]`)))
	br.WaitView("overview")
	br.pick("")
	waitCompared("600")
	if h := browsertest.Eval[string](br, `location.hash`); strings.Contains(h, "instance=") || !strings.Contains(h, "since=6h") {
		t.Errorf("after all instances the hash is %q; want since=6h and no instance", h)
	}
	if got := compared(); got != "600" {
		t.Errorf("fleet compared %q, want 600", got)
	}
	br.CheckConsole()
}

// uiBrowser is a tab of browsertest's headless Chromium, with the steps of
// admin's UI tests.
type uiBrowser struct{ *browsertest.Browser }

// startUIBrowser starts Chromium at 1440×1000, saving screenshots into
// browsertest.ScreenshotDir.
func startUIBrowser(t *testing.T, chrome string) *uiBrowser {
	t.Helper()
	return &uiBrowser{browsertest.Start(t, chrome, browsertest.ScreenshotDir(t), 1440, 1000)}
}

// pick chooses an option of the instance selector as a person does: the
// select gets focus, its value changes and it fires "change".
func (b *uiBrowser) pick(value string) {
	b.T().Helper()
	b.Do("focus the instance selector", chromedp.Focus(chromedp.ID("instance-picker")))
	b.MarkStale()
	browsertest.Eval[chromedp.Void](b, fmt.Sprintf(`(() => { const s = document.getElementById("instance-picker"); s.value = %q;
		s.dispatchEvent(new Event("change", {bubbles: true})); })()`, value))
	b.WaitView("overview")
}
