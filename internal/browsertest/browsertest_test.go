package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// errorRecorder is a test whose Errorf is recorded instead of failing.
type errorRecorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *errorRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// A page under a Content-Security-Policy: its allowed script runs (Wait,
// Eval), Hash navigates and HashParam decodes the hash's query, and
// CheckConsole reports the inline script the policy refused.
func TestBrowserOnAPage(t *testing.T) {
	chrome := Chromium(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/app.js" {
			w.Header().Set("Content-Type", "text/javascript")
			w.Write([]byte(`window.ok = 1;
addEventListener("hashchange", () => { const v = document.getElementById("view"); v.dataset.view = "x"; v.dataset.ready = "1"; });`))
			return
		}
		w.Header().Set("Content-Security-Policy", "script-src 'self'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><html><body><main id="view" data-view="first" data-ready="1"></main>
<script>window.inline = 1;</script><script src="/app.js"></script></body></html>`))
	}))
	defer srv.Close()

	rec := &errorRecorder{TB: t}
	b := Start(rec, chrome, t.TempDir(), 800, 600)
	b.Do("open the page", chromedp.Navigate(srv.URL+"/"))
	b.WaitView("first")
	b.Wait(`window.ok === 1`)
	if Eval[bool](b, `window.inline === 1`) {
		t.Error("the inline script ran despite the policy")
	}
	b.Hash("#/x?since=6h&instance=b%3A8080")
	b.WaitView("x")
	if got := b.HashParam("instance"); got != "b:8080" {
		t.Errorf("HashParam(instance) = %q, want b:8080", got)
	}
	if got := b.HashParam("since"); got != "6h" {
		t.Errorf("HashParam(since) = %q, want 6h", got)
	}
	b.Shot("browsertest")
	rec.mu.Lock()
	before := len(rec.errs)
	rec.mu.Unlock()
	if before != 0 {
		t.Fatalf("errors before CheckConsole: %q", rec.errs)
	}
	// The console message may follow the refusal by a moment.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b.mu.Lock()
		n := len(b.console)
		b.mu.Unlock()
		if n > 0 {
			break
		}
	}
	b.CheckConsole()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) == 0 || !strings.Contains(strings.Join(rec.errs, "\n"), "Content Security Policy") {
		t.Errorf("CheckConsole reported %q; want the refused inline script", rec.errs)
	}
}
