package admin

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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
	chrome := uiChromium(t)
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
	br.do("1400 px", chromedp.EmulateViewport(1400, 1000))
	br.do("open /ui/", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	br.do("enter the token", chromedp.SetValue(chromedp.ID("token"), uiTestToken), chromedp.Click(chromedp.ID("boot-submit")))
	br.waitView("overview")

	compared := func() string {
		return uiEval[string](br, `((document.querySelector('tr[data-route="img"] [data-field="compared"]') || {}).innerText || "").split("\n")[0].trim()`)
	}
	waitCompared := func(want string) {
		t.Helper()
		br.wait(fmt.Sprintf(`((document.querySelector('tr[data-route="img"] [data-field="compared"]') || {}).innerText || "").startsWith(%q)`, want))
	}

	// The live instances, by name, this one marked, with their versions.
	br.wait(`document.querySelectorAll('#instances tr[data-instance]').length === 2`)
	rows := uiEval[[]string](br, `[...document.querySelectorAll('#instances tr[data-instance]')].map((r) => r.innerText.replace(/\s+/g, " ").trim())`)
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "a:8080 this one v7") || !strings.HasPrefix(rows[1], "b:8080 v6 behind") {
		t.Errorf("instance rows %q; want a:8080 (this one) at v7, then b:8080 at v6, behind", rows)
	}
	if !strings.Contains(rows[0], "s ago") && !strings.Contains(rows[0], "just now") || !strings.Contains(rows[1], "s ago") {
		t.Errorf("instance rows %q lack when each was last seen", rows)
	}
	if got := uiEval[bool](br, `!!document.getElementById("fleet-degraded")`); got {
		t.Error(`"fleet: degraded" shown while the database is ok`)
	}
	// The fleet's numbers first.
	waitCompared("600")
	opts := uiEval[[]string](br, `[...document.querySelectorAll('#instance-picker option')].map((o) => o.value + "=" + o.textContent)`)
	if strings.Join(opts, "|") != "=all instances|a:8080=a:8080 (this one)|b:8080=b:8080" {
		t.Errorf("instance selector offers %q", opts)
	}
	if v := uiEval[bool](br, `document.getElementById("instance-picker").offsetParent !== null`); !v {
		t.Error("the instance selector is not visible")
	}

	// The database goes away: the notice is there at the next poll.
	degraded.Store(true)
	br.wait(`(document.getElementById("fleet-degraded") || {}).offsetParent != null`)
	if txt := uiEval[string](br, `document.getElementById("fleet-degraded").innerText`); !strings.HasPrefix(txt, "fleet: degraded") || !strings.Contains(txt, "rule changes get 503") {
		t.Errorf("degraded notice %q", txt)
	}
	br.shot("fleet-degraded-1400")

	// Choosing b shows b's numbers, and the URL says so.
	br.pick("b:8080")
	waitCompared("450")
	if got := uiEval[string](br, `document.querySelector('tr[data-route="img"] [data-field="diff_rate"]').innerText.split("\n")[0].trim()`); got != "6.00%" {
		t.Errorf("b's diff rate shown %q, want 6.00%%", got)
	}
	if h := br.hashParam("instance"); h != "b:8080" {
		t.Errorf("after choosing b the hash's instance is %q (hash %q)", h, uiEval[string](br, `location.hash`))
	}
	if !strings.HasPrefix(b.lastAsked(), "series ") && !strings.HasPrefix(b.lastAsked(), "report ") {
		t.Errorf("b's reads were last asked %q", b.lastAsked())
	}
	br.shot("fleet-instance-b-1400")

	// The window and the instance together in the hash; a reload keeps both.
	br.do("choose 6 h", chromedp.Click(chromedp.CSS(`#window-picker button[data-window="6h"]`)))
	br.wait(`location.hash.includes("since=6h")`)
	if h := br.hashParam("instance"); h != "b:8080" {
		t.Errorf("after choosing 6 h the instance in the hash is %q", h)
	}
	br.do("reload", chromedp.Reload())
	br.waitView("overview")
	waitCompared("450")
	if v := uiEval[string](br, `document.getElementById("instance-picker").value`); v != "b:8080" {
		t.Errorf("after a reload the selector says %q, want b:8080", v)
	}

	// The route's view reads b's report and b's samples.
	nb := len(b.asked)
	br.do("open the route", chromedp.Click(chromedp.CSS(`tr[data-route="img"] td.name a`)))
	br.waitView("route")
	if got := uiEval[string](br, `document.querySelector('[data-field="r-compared"] .value').innerText`); got != "450" {
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
	if got := uiEval[string](br, `document.querySelector('[data-field="r-since"]').innerText`); !strings.Contains(got, "instance b:8080") {
		t.Errorf("route report says %q, not whose numbers", got)
	}

	// Back to the whole fleet.
	br.do("overview", chromedp.Click(chromedp.CSS(`nav a[data-nav="overview"]`)))
	br.waitView("overview")
	br.pick("")
	waitCompared("600")
	if h := uiEval[string](br, `location.hash`); strings.Contains(h, "instance=") || !strings.Contains(h, "since=6h") {
		t.Errorf("after all instances the hash is %q; want since=6h and no instance", h)
	}
	if got := compared(); got != "600" {
		t.Errorf("fleet compared %q, want 600", got)
	}
	br.checkConsole()
}

// uiChromium finds Chromium; without it the test is skipped, or fails
// under CI (as e2e's browser tests do).
func uiChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("TANDEM_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatal("chromium is not installed (apt-get install -y chromium); CI needs it for the UI test")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); skipping the browser test")
	return ""
}

// uiBrowser is one headless Chromium tab (a small copy of e2e's harness:
// admin's tests cannot import e2e's).
type uiBrowser struct {
	t     *testing.T
	ctx   context.Context
	shots string

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func startUIBrowser(t *testing.T, chrome string) *uiBrowser {
	t.Helper()
	shots := os.Getenv("TANDEM_UI_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "tandem-ui-screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	profile := t.TempDir()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1440, 1000),
	)
	ctx, cancel := chromedp.NewContext(actx)
	b := &uiBrowser{t: t, ctx: ctx, shots: shots}
	messages := chromedp.Console(ctx) // starts the browser
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		<-done
	})
	return b
}

func (b *uiBrowser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed")
		b.t.Fatalf("%s: %v", what, err)
	}
}

func uiEval[T any](b *uiBrowser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// wait polls a JavaScript predicate until it is true (15 s at most).
func (b *uiBrowser) wait(expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		b.shot("failed")
		b.t.Fatalf("waiting for %s: %v", expr, err)
	}
}

func (b *uiBrowser) waitView(name string) {
	b.t.Helper()
	b.wait(fmt.Sprintf(`document.querySelector('main#view[data-view=%q][data-ready="1"]') !== null`, name))
}

// pick chooses an option of the instance selector as a person does: the
// select gets focus, its value changes and it fires "change".
func (b *uiBrowser) pick(value string) {
	b.t.Helper()
	b.do("focus the instance selector", chromedp.Focus(chromedp.ID("instance-picker")))
	uiEval[chromedp.Void](b, fmt.Sprintf(`document.getElementById("view").dataset.ready = "stale";
		(() => { const s = document.getElementById("instance-picker"); s.value = %q; s.dispatchEvent(new Event("change", {bubbles: true})); })()`, value))
	b.waitView("overview")
}

// hashParam is one parameter of the page's hash query, decoded.
func (b *uiBrowser) hashParam(name string) string {
	b.t.Helper()
	h := uiEval[string](b, `location.hash`)
	_, q, _ := strings.Cut(h, "?")
	v, err := url.ParseQuery(q)
	if err != nil {
		b.t.Errorf("hash %q: %v", h, err)
	}
	return v.Get(name)
}

func (b *uiBrowser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), img, 0o644); err != nil {
		b.t.Error(err)
	}
}

// checkConsole fails on script errors and blocked content.
func (b *uiBrowser) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to") {
			b.t.Errorf("browser console: %s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line)
		}
	}
}
