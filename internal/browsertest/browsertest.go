// Package browsertest drives headless Chromium (through chromedp) for the
// web UI's tests, e2e's and admin's: it finds Chromium (a test without it
// skips with the install command, and fails when CI is set), starts a
// browser at a window size with a directory for screenshots, runs steps
// and JavaScript with time limits, waits for the UI's views, navigates
// inside the app by its hash, and fails on script errors and Content
// Security Policy violations in the console.
//
// It is a normal package, not a _test file, so that both test packages can
// import it; only tests import it.
package browsertest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium finds Chromium: $TANDEM_CHROMIUM, then the usual names on PATH.
// Without it the test is skipped, or fails under CI (CI set, and not
// "false" or "0").
func Chromium(t testing.TB) string {
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

// ScreenshotDir is where screenshots go: $TANDEM_UI_SCREENSHOTS, else
// <tmp>/tandem-ui-screenshots; it is created.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	shots := os.Getenv("TANDEM_UI_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "tandem-ui-screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	return shots
}

// Browser is one headless Chromium tab.
type Browser struct {
	t     testing.TB
	ctx   context.Context
	shots string

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// Start starts the Chromium at chrome, headless, with a fresh profile and
// a width×height window, and opens a tab in it; Shot saves into shots. The
// browser is stopped when the test ends.
func Start(t testing.TB, chrome, shots string, width, height int) *Browser {
	t.Helper()
	profile, err := os.MkdirTemp("", "tandem-ui-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
	)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{t: t, ctx: ctx, shots: shots}
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
		os.RemoveAll(profile)
	})
	return b
}

// NewTab opens another tab of b's browser (or attaches to an open one,
// with chromedp.WithTargetID). Its console is not recorded: CheckConsole
// checks b's.
func (b *Browser) NewTab(opts ...chromedp.ContextOption) *Browser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, opts...)
	b.t.Cleanup(cancel)
	tab := &Browser{t: b.t, ctx: ctx, shots: b.shots}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`true`)); err != nil {
		b.t.Fatalf("new tab: %v", err)
	}
	return tab
}

// T is the test the browser belongs to.
func (b *Browser) T() testing.TB { return b.t }

// Context is the tab's chromedp context, for what the helpers here do not
// cover.
func (b *Browser) Context() context.Context { return b.ctx }

// Do runs steps with a time limit (20 s); on an error it saves the
// screenshot "failed" and fails the test.
func (b *Browser) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.Shot("failed")
		b.t.Fatalf("%s: %v", what, err)
	}
}

// A Tab is what Eval runs in: a *Browser, or a test's own type that embeds
// one.
type Tab interface{ browser() *Browser }

func (b *Browser) browser() *Browser { return b }

// Eval evaluates a JavaScript expression in the tab (10 s at most) and
// decodes its value into T; an error fails the test.
func Eval[T any](tab Tab, expr string) T {
	b := tab.browser()
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Wait polls a JavaScript predicate until it is true (15 s at most); when
// it stays false it saves the screenshot "failed" and fails the test.
func (b *Browser) Wait(expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		b.Shot("failed")
		b.t.Fatalf("waiting for %s: %v", expr, err)
	}
}

// WaitView waits until the UI has rendered the view name
// (main#view[data-view=name][data-ready="1"]).
func (b *Browser) WaitView(name string) {
	b.t.Helper()
	b.Wait(fmt.Sprintf(`document.querySelector('main#view[data-view=%q][data-ready="1"]') !== null`, name))
}

// MarkStale marks the current view stale, so that WaitView waits for the
// next one even when it has the same name.
func (b *Browser) MarkStale() {
	b.t.Helper()
	Eval[chromedp.Void](b, `document.getElementById("view").dataset.ready = "stale"`)
}

// Hash navigates inside the app: it marks the current view stale and sets
// location.hash to h.
func (b *Browser) Hash(h string) {
	b.t.Helper()
	Eval[chromedp.Void](b, fmt.Sprintf(`document.getElementById("view").dataset.ready = "stale"; location.hash = %q`, h))
}

// HashParam is one parameter of the query in the page's hash, decoded.
func (b *Browser) HashParam(name string) string {
	b.t.Helper()
	h := Eval[string](b, `location.hash`)
	_, q, _ := strings.Cut(h, "?")
	v, err := url.ParseQuery(q)
	if err != nil {
		b.t.Errorf("hash %q: %v", h, err)
	}
	return v.Get(name)
}

// Shot scrolls to the top and saves a full-page screenshot as
// <shots>/<name>.png; a failure is an error of the test, not fatal.
func (b *Browser) Shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), img, 0o644); err != nil {
		b.t.Error(err)
	}
}

// CheckConsole fails on script errors and blocked content: the UI must run
// under its Content-Security-Policy without violations. Other console
// messages are logged.
func (b *Browser) CheckConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		text := m.Text
		switch {
		case m.IsException(), strings.Contains(text, "Content Security Policy"), strings.Contains(text, "Refused to"):
			b.t.Errorf("browser console: %s: %s (%s:%d)", m.Type, text, m.URL, m.Line)
		default:
			b.t.Logf("browser console: %s: %s", m.Type, text)
		}
	}
}
