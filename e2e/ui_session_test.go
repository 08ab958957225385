package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/internal/browsertest"
)

// uiSessionConfig has one route at serve_new 0, the one another origin's
// page tries to promote.
const uiSessionConfig = `
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
backends:
  legacy: {url: "%s"}
  new: {url: "%s"}
routes:
  - name: images
    match: {path_prefix: /img}
    legacy: legacy
    new: new
`

// uiAttackPage is served by another origin (127.0.0.1, another port: the
// same site, so the browser sends the SameSite=Strict cookie along). It
// tries to promote the route with the session cookie every way a page can
// without the token, and to read the API; window.attack holds what its
// script saw, window.framesLoaded counts the answers to its forms.
const uiAttackPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>another origin</title></head><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="f1" method="POST" action="ADMIN/api/v1/routes/images/promote" enctype="text/plain" target="sink1">
<input name='{"percent": 100, "reason": "csrf", "x": "' value='"}'>
</form>
<form id="f2" method="POST" action="ADMIN/api/v1/routes/images/promote" target="sink2">
<input name="percent" value="100"><input name="reason" value="csrf">
</form>
<script>
window.attack = {};
window.framesLoaded = 0;
const promote = "ADMIN/api/v1/routes/images/promote";
const body = JSON.stringify({percent: 100, reason: "csrf"});
async function attempt(name, p) {
  try { const r = await p; attack[name] = "answered " + r.type + " " + r.status; }
  catch (e) { attack[name] = "failed: " + e.message; }
}
(async () => {
  // A simple request: no preflight, sent with the cookie; its answer is opaque.
  await attempt("no-cors", fetch(promote, {method: "POST", credentials: "include", mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: body}));
  // JSON needs a preflight, which the admin API does not grant.
  await attempt("json", fetch(promote, {method: "POST", credentials: "include",
    headers: {"Content-Type": "application/json"}, body: body}));
  await attempt("read", fetch("ADMIN/api/v1/routes", {credentials: "include"}));
  for (const f of document.querySelectorAll("iframe")) f.addEventListener("load", () => { framesLoaded++; });
  document.getElementById("f1").submit();
  document.getElementById("f2").submit();
  attack.done = true;
})();
</script>
</body></html>`

// TestUISessionInBrowser: the token is entered once. The session cookie
// (HttpOnly, SameSite=Strict, Path=/) then opens a Ctrl+clicked tab, a
// pasted link and the API itself without asking again; a page on another
// origin cannot promote a route with it (fetch or auto-submitted forms:
// the admin answers 403 and serve_new stays), while the UI's own page can;
// sign-out ends the session on the server for every tab and the old cookie.
func TestUISessionInBrowser(t *testing.T) {
	chrome := browsertest.Chromium(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer backend.Close()
	p := startInProcess(t, fmt.Sprintf(uiSessionConfig, backend.URL, backend.URL), "")
	b := startBrowser(t, chrome)

	// Sign in once.
	b.Do("open /ui/", chromedp.Navigate(p.apiBase+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	b.Do("enter the token", chromedp.SetValue(chromedp.ID("token"), p.run.Token()), chromedp.Click(chromedp.ID("boot-submit")))
	b.WaitView("overview")

	// The cookie: HttpOnly (no script sees it), SameSite=Strict, Path=/,
	// not Secure on plain http, for SessionLifetime; the token is kept
	// nowhere in the page.
	ck := browserCookie(t, b, p.apiBase)
	if ck == nil {
		t.Fatal("no session cookie after signing in")
	}
	until := time.Unix(int64(ck.Expires), 0)
	if !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteStrict || ck.Path != "/" || ck.Secure || ck.Session ||
		until.Before(time.Now().Add(admin.SessionLifetime-time.Hour)) || until.After(time.Now().Add(admin.SessionLifetime+time.Hour)) {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure, expiring in %v", ck, admin.SessionLifetime)
	}
	if browsertest.Eval[bool](b, `document.cookie.includes("`+admin.SessionCookie+`") || sessionStorage.length + localStorage.length > 0`) {
		t.Error("the page's script can see the cookie, or keeps something in storage")
	}
	sessionValue := ck.Value

	// Ctrl+click on a link of the app: a second tab (Chromium gives it no
	// opener), signed in.
	links, err := chromedp.Run(b.Context(), chromedp.Nodes(chromedp.CSS(`a[href="#/events"]`)))
	if err != nil || len(links) == 0 {
		t.Fatalf("no link to the events view: %v", err)
	}
	b.Do("ctrl+click the events link", chromedp.MouseClickNode(links[0], chromedp.ButtonModifiers(chromedp.ModifierCtrl)))
	var tabID target.ID
	for deadline := time.Now().Add(15 * time.Second); tabID == ""; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("ctrl+click opened no tab")
		}
		ts, err := chromedp.Targets(b.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ts {
			if x.Type == "page" && !x.Attached && x.URL == p.apiBase+"/ui/#/events" {
				tabID = x.TargetID
			}
		}
	}
	tab2 := &browser{b.NewTab(chromedp.WithTargetID(tabID))}
	tab2.WaitView("events") // the app runs: nobody typed the token there
	tab2.Shot("session-ctrl-click-tab")

	// A link pasted into a new tab, and the API opened directly.
	tab3 := &browser{b.NewTab()}
	tab3.Do("open a shared link", chromedp.Navigate(p.apiBase+"/ui/#/route/images"))
	tab3.WaitView("route")
	tab3.Do("open the API", chromedp.Navigate(p.apiBase+"/api/v1/routes"))
	if got := browsertest.Eval[string](tab3, `document.body.innerText`); !strings.Contains(got, `"name": "images"`) {
		t.Errorf("GET /api/v1/routes in a tab with the cookie shows %.200q", got)
	}

	// Another origin tries to promote with the cookie.
	var mu sync.Mutex
	sawCookie := false
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(admin.SessionCookie); err == nil && c.Value == sessionValue {
			mu.Lock()
			sawCookie = true
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(strings.ReplaceAll(uiAttackPage, "ADMIN", p.apiBase)))
	}))
	defer attacker.Close()
	if strings.TrimPrefix(attacker.URL, "http://") == strings.TrimPrefix(p.apiBase, "http://") || !strings.HasPrefix(attacker.URL, "http://127.0.0.1:") {
		t.Fatalf("attacker %s is not another origin on 127.0.0.1 than %s", attacker.URL, p.apiBase)
	}
	before := p.rules()
	tab4 := &browser{b.NewTab()}
	answers := recordAnswers(t, tab4, p.apiBase)
	tab4.Do("open the other origin's page", chromedp.Navigate(attacker.URL+"/"))
	tab4.Wait(`window.attack && window.attack.done === true && window.framesLoaded === 2`)
	tab4.Shot("session-other-origin")
	attack := browsertest.Eval[map[string]any](tab4, `window.attack`)
	t.Logf("the other origin's page saw %v", attack)
	if got := fmt.Sprint(attack["json"]); !strings.HasPrefix(got, "failed") {
		t.Errorf("a JSON fetch from another origin was answered: %s", got)
	}
	if got := fmt.Sprint(attack["read"]); !strings.HasPrefix(got, "failed") {
		t.Errorf("another origin read GET /api/v1/routes: %s", got)
	}
	// The browser sent the cookie (same site), and the admin refused each
	// POST with 403: the no-cors fetch and both forms.
	var posts []int
	for _, a := range answers() {
		if a.method == "POST" && strings.HasSuffix(a.url, "/api/v1/routes/images/promote") {
			posts = append(posts, a.status)
		}
		if a.status >= 200 && a.status < 300 {
			t.Errorf("the admin answered %s %s from another origin with %d", a.method, a.url, a.status)
		}
	}
	if len(posts) != 3 || posts[0] != 403 || posts[1] != 403 || posts[2] != 403 {
		t.Errorf("promotions from another origin answered %v, want three 403s", posts)
	}
	after := p.rules()
	if after.Version != before.Version || after.Routes[0].ServeNew != 0 {
		t.Errorf("after the other origin's page: rules version %d → %d, serve_new %v; want no change", before.Version, after.Version, after.Routes[0].ServeNew)
	}
	for _, e := range p.events() {
		if e.Kind == "promote" {
			t.Errorf("a promotion was recorded: %+v", e)
		}
	}
	mu.Lock()
	if sawCookie {
		t.Logf("note: the other origin's server received the session cookie too (cookies are per host, not per port)")
	}
	mu.Unlock()

	// The UI's own page can, with the same cookie.
	b.Hash("#/")
	b.WaitView("overview")
	st, err := chromedp.Run(b.Context(), chromedp.Evaluate[int](`fetch("/api/v1/routes/images/promote", {method: "POST",
		headers: {"Content-Type": "application/json"}, body: JSON.stringify({percent: 5, reason: "same origin"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || st != 200 {
		t.Fatalf("promote from the UI's page with the cookie: %d %v", st, err)
	}
	if r := p.rules(); r.Routes[0].ServeNew != 5 {
		t.Errorf("serve_new %v after the UI's promotion, want 5", r.Routes[0].ServeNew)
	}

	// Sign out: the sign-in page; the other tab is signed out at its next
	// call; the old cookie, replayed, gets 401.
	b.Do("sign out", chromedp.Click(chromedp.ID("signout")))
	b.Do("the sign-in page", chromedp.WaitVisible(chromedp.ID("token")))
	if c := browserCookie(t, b, p.apiBase); c != nil {
		t.Errorf("the cookie is still there after sign-out: %+v", c)
	}
	tab2.Wait(`!document.getElementById("banner").hidden && document.getElementById("banner").textContent.includes("401")`)
	tab2.Shot("session-signed-out-tab")
	req, _ := http.NewRequest("GET", p.apiBase+"/api/v1/routes", nil)
	req.AddCookie(&http.Cookie{Name: admin.SessionCookie, Value: sessionValue})
	resp, err := p.httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the signed-out cookie replayed: %d, want 401", resp.StatusCode)
	}
	tab3.Do("a shared link after sign-out asks for the token", chromedp.Navigate(p.apiBase+"/ui/#/events"), chromedp.WaitVisible(chromedp.ID("token")))
	b.CheckConsole()
}

// browserCookie is the session cookie the browser holds for base.
func browserCookie(t *testing.T, b *browser, base string) *network.Cookie {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatalf("get cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == admin.SessionCookie {
			return c
		}
	}
	return nil
}

// adminAnswer is a response the tab got from the admin listener.
type adminAnswer struct {
	method, url string
	status      int
}

// recordAnswers records the answers tab gets from URLs under base; the
// returned func lists them in the order they came.
func recordAnswers(t *testing.T, tab *browser, base string) func() []adminAnswer {
	t.Helper()
	var mu sync.Mutex
	methods := map[network.RequestID]string{}
	var got []adminAnswer
	err := chromedp.Listen(tab.Context(), func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			methods[ev.RequestID] = ev.Request.Method
		case *network.EventResponseReceived:
			if strings.HasPrefix(ev.Response.URL, base+"/") {
				got = append(got, adminAnswer{methods[ev.RequestID], ev.Response.URL, int(ev.Response.Status)})
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() []adminAnswer {
		mu.Lock()
		defer mu.Unlock()
		return append([]adminAnswer(nil), got...)
	}
}
