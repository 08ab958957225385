package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/internal/browsertest"
	"github.com/tandem-proxy/tandem/ramp"
	"github.com/tandem-proxy/tandem/store"
)

// The web UI against a running tandem, in headless Chromium: a wrong token
// shows an error and no data; the overview's numbers equal the API's and
// follow live traffic; the route view groups differences; the sample view
// shows both images and the server's heat map; promote (with a reason and a
// confirmation) changes serve_new and adds an event; the events view shows it;
// an unreachable admin API is reported. Screenshots of every view are saved
// (TANDEM_UI_SCREENSHOTS, else <tmp>/tandem-ui-screenshots).
func TestUIInBrowser(t *testing.T) {
	chrome := browsertest.Chromium(t)
	start := time.Now()
	p := startUIProxy(t, uiConfig)

	b := startBrowser(t, chrome)

	// A wrong token: an error, and no data.
	b.Do("open /ui/", chromedp.Navigate(p.apiBase+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	b.Do("enter a wrong token", chromedp.SetValue(chromedp.ID("token"), "wrong-token-0123456789abcdef"), chromedp.Click(chromedp.ID("boot-submit")))
	b.Wait(`!document.getElementById("boot-error").hidden`)
	msg := browsertest.Eval[string](b, `document.getElementById("boot-error").textContent`)
	if !strings.Contains(msg, "401") || !strings.Contains(strings.ToLower(msg), "wrong token") {
		t.Errorf("wrong-token message %q does not say 401 / wrong token", msg)
	}
	if browsertest.Eval[bool](b, `document.getElementById("view") !== null || document.body.innerText.includes("images")`) {
		t.Error("data shown with a wrong token")
	}
	if browsertest.Eval[bool](b, `sessionStorage.length !== 0`) {
		t.Error("a wrong token was kept in sessionStorage")
	}
	b.Shot("wrong-token")

	// The right token: the dashboard, before any traffic.
	b.Do("enter the token", chromedp.SetValue(chromedp.ID("token"), p.run.Token()), chromedp.Click(chromedp.ID("boot-submit")))
	b.WaitView("overview")
	b.Wait(`document.querySelector('[data-empty="no-traffic"]') !== null`)
	b.Shot("overview-empty")

	// Traffic: images that differ in colour (PNG and JPEG) and in size, and
	// JSON that differs in fields and a header.
	for i := 0; i < 8; i++ {
		p.sendAs("/img/png", fmt.Sprint("u", i))
		p.sendAs("/img/jpeg", fmt.Sprint("u", i))
		p.sendAs(fmt.Sprintf("/api/items/%d", i), fmt.Sprint("u", i))
	}
	p.sendAs("/img/resized", "u1")
	p.sendAs("/img/resized", "u2")
	// A body over max_body (chunked, so legacy has seen part of it): tandem
	// answers 413 itself, an error served by tandem.
	if resp, err := p.httpClient.Post(p.proxyBase+"/img/upload", "image/png", io.MultiReader(strings.NewReader(strings.Repeat("x", 2048)))); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != 413 {
		t.Fatalf("a 2 KiB body with max_body 1KiB: %d", resp.StatusCode)
	}
	waitFor(t, func() bool {
		var rs struct{ Routes []admin.RouteStatus }
		_, body := p.api("GET", "/api/v1/routes", "", "", "")
		json.Unmarshal(body, &rs)
		var reps struct{ Routes []store.RouteReport }
		_, body = p.api("GET", "/api/v1/report", "", "", "")
		json.Unmarshal(body, &reps)
		done := 0
		for _, r := range rs.Routes {
			for _, rep := range reps.Routes {
				// The routes' report numbers are refreshed every 10 s.
				if rep.Route == r.Name && r.Compared == r.Requests-r.ServedTandem && rep.Compared == r.Compared && rep.Requests == r.Requests &&
					r.ReportCompared == rep.Compared && r.ReportDiffRate == rep.DiffRate {
					done++
				}
			}
		}
		return done == 2 && len(p.samples("images", "$.image.psnr")) > 0 && len(p.samples("api", "")) > 0
	})

	// The overview follows, and equals the API.
	// The trend is from stored minutes: a fresh page draws it at once.
	b.Wait(`[...document.querySelectorAll("#routes-table tr[data-route] svg.spark")].filter(s => +s.dataset.points >= 1).length === 2`)
	b.compareOverview(p)
	b.Shot("overview")

	// Route view: differences grouped by kind and path, samples, latency.
	b.Do("open the images route", chromedp.Click(chromedp.CSS(`tr[data-route="images"] td.name a`)))
	b.WaitView("route")
	var rep struct{ Routes []store.RouteReport }
	_, body := p.api("GET", "/api/v1/report?route=images", "", "", "")
	json.Unmarshal(body, &rep)
	for _, d := range rep.Routes[0].Diffs {
		got := browsertest.Eval[string](b, fmt.Sprintf(`(document.querySelector('.kind-group[data-kind=%q] tr[data-path=%q] [data-field=count]') || {}).textContent || "missing"`, d.Kind, d.Path))
		if got != fmt.Sprint(d.Count) {
			t.Errorf("route view: %s %s count %q, API %d", d.Kind, d.Path, got, d.Count)
		}
	}
	if n := browsertest.Eval[int](b, `document.querySelectorAll("#samples tr[data-sample]").length`); n == 0 {
		t.Error("route view lists no samples")
	}
	// Every sample's request id is a link to that request's comparisons.
	for _, smp := range p.samples("images", "") {
		got := browsertest.Eval[string](b, fmt.Sprintf(`(document.querySelector('#samples tr[data-sample=%q] a[data-request-link]') || {}).innerText || "no link"`, smp.ID))
		href := browsertest.Eval[string](b, fmt.Sprintf(`(document.querySelector('#samples tr[data-sample=%q] a[data-request-link]') || {getAttribute: () => ""}).getAttribute("href")`, smp.ID))
		if got != smp.RequestID || href != "#/request/"+url.PathEscape(smp.RequestID) {
			t.Errorf("route view: sample %s shows request %q linking to %q, want %q linking to its comparisons", smp.ID, got, href, smp.RequestID)
		}
	}
	if got := browsertest.Eval[string](b, `document.querySelector('#latency tr[data-side="new"] [data-field="p99"]').textContent`); !strings.Contains(got, "ms") {
		t.Errorf("new p99 shows %q", got)
	}
	// The refused body is an error the client got, in the report and in
	// the live cards.
	if e := rep.Routes[0].ServedErrors; e.Tandem != 1 || e.Total() != 1 || rep.Routes[0].ServedTandem != 1 {
		t.Errorf("report: served_tandem %d, served_errors %+v; want the one refused body", rep.Routes[0].ServedTandem, e)
	}
	b.Wait(`(document.querySelector('[data-field="r-served_errors"] .value') || {}).textContent === "1"`)
	b.Wait(`(document.querySelector('.card[data-field="served_errors"] .value') || {}).textContent === "1"`)
	b.Shot("route")

	// Mark a JSON path as noise from the api route's view.
	b.Hash("#/route/api")
	b.WaitView("route")
	b.Do("mark $.meta.codec as noise", chromedp.Click(chromedp.CSS(`tr[data-path="$.meta.codec"] button[data-action="noise"]`)))
	b.confirm("noise", map[string]string{"reason": "codec upgrade is intended"})
	waitFor(t, func() bool {
		evs := p.events()
		last := evs[len(evs)-1]
		return last.Kind == "noise" && last.Route == "api" && last.Reason == "codec upgrade is intended"
	})
	b.Wait(`document.querySelector('tr[data-path="$.meta.codec"] button[data-action="noise"]') === null`)
	b.Shot("route-api")

	// Sample view of a PNG pair: both images and the heat map load; the
	// measurements are shown.
	id := p.samples("images", "$.image.mean_shift")[0].ID
	for _, s := range p.samples("images", "$.image.mean_shift") {
		if s.Path == "/img/png" {
			id = s.ID
			break
		}
	}
	b.Hash("#/sample/" + id)
	b.WaitView("sample")
	b.Wait(`(() => { const imgs = [...document.querySelectorAll("#images img")];
		return imgs.length === 3 && imgs.every(i => i.complete && i.naturalWidth > 0); })()`)
	for _, key := range []string{"legacy", "new", "heatmap"} {
		if w := browsertest.Eval[int](b, fmt.Sprintf(`document.querySelector('img[data-img=%q]').naturalWidth`, key)); w <= 0 {
			t.Errorf("%s image not loaded", key)
		}
	}
	var sample store.Sample
	_, body = p.api("GET", "/api/v1/diffs/"+id, "", "", "")
	json.Unmarshal(body, &sample)
	for _, d := range sample.Diffs {
		field := strings.TrimPrefix(d.Path, "$.image.")
		if field != "psnr" && field != "mean_shift" {
			continue
		}
		// The measured value, as compare/image.go writes it, is on the page.
		got := browsertest.Eval[string](b, fmt.Sprintf(`document.querySelector('[data-measure=%q]').textContent.replace(/\s+/g, "")`, field))
		if field == "psnr" && !strings.Contains(got, strings.Fields(d.New)[0]+"dB") {
			t.Errorf("PSNR shows %q, want %q", got, d.New)
		}
		if field == "mean_shift" && !strings.Contains(got, strings.ReplaceAll(d.New, " ", "")) {
			t.Errorf("mean shift shows %q, want %q", got, d.New)
		}
	}
	if !browsertest.Eval[bool](b, `document.querySelector('#headers tr.diff-real[data-header="X-Backend"]') !== null`) {
		t.Error("the differing X-Backend header is not highlighted")
	}
	b.Shot("sample")

	// A resized image: the dimensions are shown.
	if rs := p.samples("images", "$.image.dimensions"); len(rs) > 0 {
		b.Hash("#/sample/" + rs[0].ID)
		b.WaitView("sample")
		if got := browsertest.Eval[string](b, `document.querySelector('[data-measure="dimensions"]').textContent`); !strings.Contains(got, "96×72") || !strings.Contains(got, "120×90") {
			t.Errorf("dimensions show %q", got)
		}
		b.Wait(`[...document.querySelectorAll("#images img")].length === 3`)
		b.Shot("sample-resized")
	} else {
		t.Error("no sample with a dimensions difference")
	}

	// A JSON sample: the diff tree and the highlighted header.
	b.Hash("#/sample/" + p.samples("api", "$.height")[0].ID)
	b.WaitView("sample")
	for _, path := range []string{"$.height", "$.tags[1]", "$.meta.bitrate"} {
		if !browsertest.Eval[bool](b, fmt.Sprintf(`document.querySelector('#diff-tree [data-path=%q]') !== null`, path)) {
			t.Errorf("diff tree lacks %s", path)
		}
	}
	if !browsertest.Eval[bool](b, `document.querySelector('#headers tr.diff-real[data-header="X-Api-Version"]') !== null`) {
		t.Error("the differing X-Api-Version header is not highlighted")
	}
	b.Shot("sample-json")

	// The sample's request id links to the request's comparisons; the rows
	// a person sees are the API's, with the differing paths and their noise
	// marks, and a link back to the sample.
	jsonSample := p.samples("api", "$.height")[0]
	if got := browsertest.Eval[string](b, `document.querySelector(".view-head a[data-request-link]").innerText`); got != jsonSample.RequestID {
		t.Errorf("sample view shows request %q, want %q", got, jsonSample.RequestID)
	}
	b.Do("follow the request id", chromedp.Click(chromedp.CSS(`.view-head a[data-request-link]`)))
	b.WaitView("request")
	b.checkComparisons(p, jsonSample.RequestID, jsonSample.ID)
	b.Shot("request")

	// The lookup field: another request by its id, and one nobody knows.
	b.Hash("#/request")
	b.WaitView("request")
	other := p.samples("api", "$.height")[len(p.samples("api", "$.height"))-1]
	// Each lookup renders a new request view: mark this one stale first, so
	// that WaitView waits for it.
	b.MarkStale()
	b.Do("look up a request", chromedp.SetValue(chromedp.ID("request-lookup"), other.RequestID),
		chromedp.Click(chromedp.CSS(`#request-form button[type="submit"]`)))
	b.WaitView("request")
	b.checkComparisons(p, other.RequestID, other.ID)
	b.MarkStale()
	b.Do("look up an unknown request", chromedp.SetValue(chromedp.ID("request-lookup"), "no-such-request"),
		chromedp.Click(chromedp.CSS(`#request-form button[type="submit"]`)))
	b.WaitView("request")
	if got := browsertest.Eval[string](b, `document.getElementById("view").innerText`); !strings.Contains(got, "No comparisons recorded for request no-such-request.") {
		t.Errorf("unknown request: the page says %q", got)
	}
	b.Shot("request-unknown")

	// Promote with a reason, through the confirmation step.
	b.Hash("#/")
	b.WaitView("overview")
	b.Do("promote images", chromedp.Click(chromedp.CSS(`tr[data-route="images"] button[data-action="promote"]`)))
	b.confirm("promote", map[string]string{"percent": "25", "reason": "ui test: canary"})
	waitFor(t, func() bool {
		for _, r := range p.rules().Routes {
			if r.Name == "images" {
				return r.ServeNew == 25
			}
		}
		return false
	})
	evs := p.events()
	if last := evs[len(evs)-1]; last.Kind != "promote" || last.Route != "images" || last.Reason != "ui test: canary" {
		t.Errorf("last event %+v, want the promotion", last)
	}
	b.Wait(`document.querySelector('tr[data-route="images"] [data-field="serve_new"]').dataset.value === "25"`)

	// Events: the promotion is on top, with who, what, why.
	b.Hash("#/events")
	b.WaitView("events")
	top := browsertest.Eval[string](b, `document.querySelector("#events li.event").innerText`)
	for _, want := range []string{"Promoted", "images", "api", "ui test: canary", "serve_new"} {
		if !strings.Contains(top, want) {
			t.Errorf("newest event %q lacks %q", top, want)
		}
	}
	b.Shot("events")

	// The admin API goes away: the page says so.
	b.Hash("#/")
	b.WaitView("overview")
	p.stop()
	b.Wait(`!document.getElementById("banner").hidden && document.getElementById("banner").textContent.includes("unreachable")`)
	b.Shot("unreachable")

	b.CheckConsole()
	t.Logf("browser test took %v", time.Since(start).Round(100*time.Millisecond))
}

const uiConfig = `
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
limits: {max_body: 1KiB}
backends:
  legacy: {url: "%s"}
  new: {url: "%s"}
routes:
  - name: images
    match: {path_prefix: /img}
    legacy: legacy
    new: new
    sticky: header:X-User-Id
  - name: api
    match: {path_prefix: /api}
    legacy: legacy
    new: new
    serve_new: 5
    sticky: header:X-User-Id
    ramp: {steps: [1, 5, 25, 50, 100], hold: 10m, min_compared: 1000, max_diff_rate: 0.01, max_error_rate: 0.01, max_latency_ratio: 10}
`

// uiPicture is a w×h picture: a gradient, a disc and a bar. The new
// backend's version is redder, and its disc has another colour.
func uiPicture(w, h int, isNew bool) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// Coordinates on a 96×72 grid, so resized pictures match.
			gx, gy := x*96/w, y*72/h
			c := color.NRGBA{uint8(60 + gx), uint8(70 + 2*gy), 150, 255}
			if dx, dy := gx-34, gy-36; dx*dx+dy*dy < 18*18 {
				c = color.NRGBA{230, 180, 40, 255}
				if isNew {
					c = color.NRGBA{200, 90, 160, 255}
				}
			}
			if gx >= 62 && gx < 84 && gy >= 16 && gy < 58 {
				c = color.NRGBA{40, 90, 60, 255}
			}
			if isNew {
				c.R = uint8(min(255, int(c.R)+18))
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// startUIProxy runs tandem in process with config, a format string taking
// the URLs of legacy's and new's uiBackend.
func startUIProxy(t *testing.T, config string) *inproc {
	t.Helper()
	legacy := httptest.NewServer(uiBackend("legacy"))
	t.Cleanup(legacy.Close)
	newb := httptest.NewServer(uiBackend("new"))
	t.Cleanup(newb.Close)
	return startInProcess(t, fmt.Sprintf(config, legacy.URL, newb.URL), "")
}

// uiBackend serves the pictures and JSON documents of one side.
func uiBackend(side string) http.Handler {
	isNew := side == "new"
	encode := func(img image.Image, jpg bool) []byte {
		var b bytes.Buffer
		if jpg {
			jpeg.Encode(&b, img, &jpeg.Options{Quality: 92})
		} else {
			png.Encode(&b, img)
		}
		return b.Bytes()
	}
	pngBody := encode(uiPicture(96, 72, isNew), false)
	jpegBody := encode(uiPicture(96, 72, isNew), true)
	resized := encode(uiPicture(96, 72, false), false)
	if isNew {
		resized = encode(uiPicture(120, 90, false), false)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", side)
		switch {
		case r.URL.Path == "/img/png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(pngBody)
		case r.URL.Path == "/img/jpeg":
			w.Header().Set("Content-Type", "image/jpeg")
			w.Write(jpegBody)
		case r.URL.Path == "/img/resized":
			w.Header().Set("Content-Type", "image/png")
			w.Write(resized)
		case strings.HasPrefix(r.URL.Path, "/api/items/"):
			id := strings.TrimPrefix(r.URL.Path, "/api/items/")
			doc := map[string]any{"id": id, "name": "clip-" + id, "width": 640, "height": 480,
				"tags": []string{"a", "b"}, "meta": map[string]any{"codec": "h264"}}
			w.Header().Set("X-Api-Version", "1")
			if isNew {
				doc["height"] = 360
				doc["tags"] = []string{"a", "c"}
				doc["meta"] = map[string]any{"codec": "h265", "bitrate": 900}
				w.Header().Set("X-Api-Version", "2")
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(doc)
		default:
			http.NotFound(w, r)
		}
	})
}

// sendAs sends GET path through the proxy as user (the X-User-Id sticky
// key).
func (p *inproc) sendAs(path, user string) {
	p.t.Helper()
	req, _ := http.NewRequest("GET", p.proxyBase+path, nil)
	req.Header.Set("X-User-Id", user)
	resp, err := p.httpClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
}

// samples lists a route's stored samples with a difference at diffPath
// ("" = any).
func (p *inproc) samples(route, diffPath string) []store.SampleSummary {
	p.t.Helper()
	q := "/api/v1/diffs?route=" + route
	if diffPath != "" {
		q += "&path=" + diffPath
	}
	st, body := p.api("GET", q, "", "", "")
	if st != 200 {
		p.t.Fatalf("GET %s: %d %s", q, st, body)
	}
	var out struct{ Diffs []store.SampleSummary }
	json.Unmarshal(body, &out)
	return out.Diffs
}

// browser is a tab of browsertest's headless Chromium, with the steps of
// e2e's UI tests.
type browser struct{ *browsertest.Browser }

// startBrowser starts Chromium at 1440×1000, saving screenshots into
// browsertest.ScreenshotDir.
func startBrowser(t *testing.T, chrome string) *browser {
	t.Helper()
	return &browser{browsertest.Start(t, chrome, browsertest.ScreenshotDir(t), 1440, 1000)}
}

// confirm fills a dialog's fields, reviews and confirms, and waits for it to
// close.
func (b *browser) confirm(dialog string, fields map[string]string) {
	b.T().Helper()
	sel := fmt.Sprintf(`dialog[data-dialog=%q]`, dialog)
	b.Wait(`document.querySelector('` + sel + `[open]') !== null`)
	var steps []chromedp.Action[chromedp.Void]
	for name, v := range fields {
		steps = append(steps, chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`%s input[name=%q]`, sel, name)), v))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS(sel+` button[data-action="review"]`)))
	b.Do("fill the "+dialog+" dialog", steps...)
	b.Wait(`document.querySelector('` + sel + ` [data-step="confirm"]') !== null`)
	b.Shot(dialog + "-confirm")
	b.Do("confirm "+dialog, chromedp.Click(chromedp.CSS(sel+` button[data-action="confirm"]`)))
	b.Wait(`document.querySelector('` + sel + `') === null`)
}

// compareOverview checks every route row against GET /api/v1/routes. The
// page polls on its own, so a mismatch is retried until a poll has caught
// up.
func (b *browser) compareOverview(p *inproc) {
	b.T().Helper()
	type row struct {
		Name                       string
		ServeNew, Mirror, DiffRate float64
		Requests, Compared         int64
		ServedErrors               int64
		RequestsText, DiffRateText string
		Breakers, Ramp             string
	}
	var problems []string
	for try := 0; try < 30; try++ {
		var rs struct{ Routes []admin.RouteStatus }
		_, body := p.api("GET", "/api/v1/routes", "", "", "")
		json.Unmarshal(body, &rs)
		// The window's numbers are the report's (the default window, the
		// last hour, holds all of this test's traffic).
		var reps struct{ Routes []store.RouteReport }
		_, body = p.api("GET", "/api/v1/report?since="+url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)), "", "", "")
		json.Unmarshal(body, &reps)
		report := map[string]store.RouteReport{}
		for _, r := range reps.Routes {
			report[r.Route] = r
		}
		rows := browsertest.Eval[[]row](b, `[...document.querySelectorAll("#routes-table tr[data-route]")].map(tr => {
			const f = n => tr.querySelector('[data-field="' + n + '"]');
			return {Name: tr.dataset.route, ServeNew: +f("serve_new").dataset.value, Mirror: +f("mirror").dataset.value,
				DiffRate: +f("diff_rate").dataset.value, Requests: +f("requests").dataset.value, Compared: +f("compared").dataset.value,
				ServedErrors: f("served_errors") ? +f("served_errors").dataset.value : 0,
				RequestsText: f("requests").firstChild.textContent, DiffRateText: f("diff_rate").querySelector(".rate").textContent,
				Breakers: f("breakers").textContent, Ramp: f("ramp").textContent};
		})`)
		problems = problems[:0]
		if len(rows) != len(rs.Routes) {
			problems = append(problems, fmt.Sprintf("%d rows, API has %d routes", len(rows), len(rs.Routes)))
		}
		for i := 0; i < len(rows) && i < len(rs.Routes); i++ {
			got, want := rows[i], rs.Routes[i]
			wr := report[want.Name]
			if got.Name != want.Name || got.ServeNew != want.ServeNew || got.Mirror != want.Mirror || got.DiffRate != wr.DiffRate ||
				got.Requests != wr.Requests || got.Compared != wr.Compared || got.ServedErrors != wr.ServedErrors.Total() {
				problems = append(problems, fmt.Sprintf("row %+v, API %+v, report %+v", got, want, wr))
				continue
			}
			if got.RequestsText != fmt.Sprint(wr.Requests) {
				problems = append(problems, fmt.Sprintf("%s: requests text %q, want %d", got.Name, got.RequestsText, wr.Requests))
			}
			// The rate shown is the report's (noise applied when read).
			if wantRate := fmt.Sprintf("%.2f%%", wr.DiffRate*100); got.DiffRateText != wantRate {
				problems = append(problems, fmt.Sprintf("%s: diff rate text %q, want %q", got.Name, got.DiffRateText, wantRate))
			}
			for backend, state := range want.Breakers {
				if !strings.Contains(got.Breakers, state+" "+backend) {
					problems = append(problems, fmt.Sprintf("%s: breakers %q lack %s %s", got.Name, got.Breakers, state, backend))
				}
			}
			if want.Ramp != nil && !strings.Contains(got.Ramp, "next 25%") {
				problems = append(problems, fmt.Sprintf("%s: ramp cell %q lacks the next step", got.Name, got.Ramp))
			}
		}
		if len(problems) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond) // the page polls every 3 s
	}
	b.T().Errorf("overview differs from /api/v1/routes:\n%s", strings.Join(problems, "\n"))
}

// checkComparisons checks the request view of id against GET
// /api/v1/comparisons: one row per comparison, in order, showing what the
// API says (against, outcome, each differing path with its noise mark), and
// a link to sampleID on the row that has it.
func (b *browser) checkComparisons(p *inproc, id, sampleID string) {
	b.T().Helper()
	st, body := p.api("GET", "/api/v1/comparisons?request_id="+url.QueryEscape(id), "", "", "")
	var want struct{ Comparisons []store.Comparison }
	if err := json.Unmarshal(body, &want); st != 200 || err != nil {
		b.T().Fatalf("GET comparisons of %s: %d %v %s", id, st, err, body)
	}
	if len(want.Comparisons) == 0 {
		b.T().Fatalf("the API has no comparisons for request %s, which has sample %s", id, sampleID)
	}
	type row struct {
		Against, Outcome, Route, Sample string
		Pairs                           []string
	}
	rows := browsertest.Eval[[]row](b, `[...document.querySelectorAll("#comparisons tbody tr")].map(tr => {
		const f = n => tr.querySelector('[data-field="' + n + '"]');
		const a = f("sample").querySelector("a");
		return {Against: f("against").innerText, Outcome: f("outcome").innerText, Route: tr.children[1].innerText,
			Sample: a ? a.getAttribute("href") : "", Pairs: [...f("diffs").querySelectorAll("li")].map(li => li.innerText.replace(/\s+/g, " "))};
	})`)
	if h1 := browsertest.Eval[string](b, `document.querySelector(".view-head h1").innerText`); !strings.Contains(h1, id) {
		b.T().Errorf("request view heading %q lacks %s", h1, id)
	}
	if len(rows) != len(want.Comparisons) {
		b.T().Fatalf("request %s: %d rows on the page, the API has %d comparisons", id, len(rows), len(want.Comparisons))
	}
	sampleLinked := false
	for i, c := range want.Comparisons {
		got := rows[i]
		var pairs []string
		for _, d := range c.Diffs {
			s := string(d.Kind) + " " + d.Path
			if d.Noise {
				s += " noise"
			}
			pairs = append(pairs, s)
		}
		if got.Against != "legacy → "+c.Against || got.Outcome != string(c.Outcome) || got.Route != c.Route ||
			strings.Join(got.Pairs, "|") != strings.Join(pairs, "|") {
			b.T().Errorf("request %s row %d: %+v, the API says %+v (pairs %q)", id, i, got, c, pairs)
		}
		if c.SampleID != "" && got.Sample != "#/sample/"+url.PathEscape(c.SampleID) {
			b.T().Errorf("request %s row %d: sample link %q, want one to %s", id, i, got.Sample, c.SampleID)
		}
		sampleLinked = sampleLinked || c.SampleID == sampleID
	}
	if !sampleLinked {
		b.T().Errorf("request %s: no comparison names its sample %s", id, sampleID)
	}
}

// uiRampConfig has one route with a ramp at 0% whose gates have numbers
// after a dozen requests: every comparison differs, so the diff-rate gate
// fails (and the ramp holds at 0%, never rolling back before its first
// step); the error-rate and latency gates pass.
const uiRampConfig = `
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
backends:
  legacy: {url: "%s"}
  new: {url: "%s"}
routes:
  - name: api
    match: {path_prefix: /api}
    legacy: legacy
    new: new
    sticky: header:X-User-Id
    ramp: {steps: [5, 25, 50, 100], hold: 10m, min_compared: 5, max_diff_rate: 0.01, max_error_rate: 0.5, max_latency_ratio: 100}
`

// A person sees each ramp gate beside the Promote button, on the overview
// and on the route's page: its state, value, bound and limit, and its
// samples, as GET /api/v1/routes gives them.
func TestUIRampGatesBesidePromote(t *testing.T) {
	chrome := browsertest.Chromium(t)
	p := startUIProxy(t, uiRampConfig)
	for i := 0; i < 12; i++ {
		p.sendAs(fmt.Sprintf("/api/items/%d", i), fmt.Sprint("u", i))
	}
	var gates []ramp.Gate
	var last []byte
	defer func() {
		if t.Failed() && gates == nil {
			t.Logf("last GET /api/v1/routes: %s", last)
		}
	}()
	waitFor(t, func() bool {
		var v rampView
		_, body := p.api("GET", "/api/v1/routes", "", "", "")
		last = body
		json.Unmarshal(body, &v)
		if len(v.Routes) != 1 || v.Routes[0].Ramp == nil || len(v.Routes[0].Ramp.Gates) != 3 || v.Routes[0].Ramp.Gates[0].Samples != 12 {
			return false
		}
		gates = v.Routes[0].Ramp.Gates
		return true
	})
	if gates[0].State != ramp.GateFail || gates[1].State != ramp.GatePass || gates[2].State != ramp.GatePass {
		t.Fatalf("gates %+v; want diff_rate fail, the others pass", gates)
	}

	b := startBrowser(t, chrome)
	b.Do("open /ui/", chromedp.Navigate(p.apiBase+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	b.Do("enter the token", chromedp.SetValue(chromedp.ID("token"), p.run.Token()), chromedp.Click(chromedp.ID("boot-submit")))
	b.WaitView("overview")

	// What the UI prints: rates as percentages, the latency ratio as N.NN×.
	show := func(name string, v float64) string {
		if name == ramp.GateLatencyRatio {
			return fmt.Sprintf("%.2f×", v)
		}
		return strconv.FormatFloat(math.Round(v*10000)/100, 'f', -1, 64) + "%"
	}
	type seen struct {
		Name, State, Text          string
		Visible, Beside, Unclipped bool
	}
	check := func(where, scope string) {
		t.Helper()
		b.Wait(`document.querySelectorAll('` + scope + ` .actions [data-field="gates"] [data-gate]').length === 3`)
		got := browsertest.Eval[[]seen](b, `(() => {
			const scope = document.querySelector('`+scope+`');
			const btn = scope.querySelector('.actions button[data-action="promote"]').getBoundingClientRect();
			const below = Math.max(...[...scope.querySelectorAll('.actions button')].map(b => b.getBoundingClientRect().bottom));
			return [...scope.querySelectorAll('.actions [data-field="gates"] [data-gate]')].map(el => {
				const r = el.getBoundingClientRect();
				const list = el.closest('[data-field="gates"]').getBoundingClientRect();
				const cs = getComputedStyle(el);
				return {Name: el.dataset.gate, State: el.dataset.state, Text: el.innerText,
					Visible: r.width > 0 && r.height > 0 && cs.visibility !== "hidden" && cs.display !== "none",
					// the list of gates starts right below the buttons, in
					// the Promote button's column, or right of the buttons,
					// level with them
					Beside: (list.top >= below - 1 && list.top - below < 30 && Math.abs(list.left - btn.left) < 40) ||
						(list.left >= btn.right - 1 && list.left - btn.right < 160 && list.top < btn.bottom && list.bottom > btn.top),
					Unclipped: r.right <= window.innerWidth && r.left >= 0 && r.bottom <= document.documentElement.scrollHeight};
			});
		})()`)
		if len(got) != len(gates) {
			t.Fatalf("%s: %d gates shown, API has %d", where, len(got), len(gates))
		}
		for i, g := range gates {
			s := got[i]
			want := fmt.Sprintf("%s %s · bound %s · limit %s · n %d/%d", map[string]string{
				ramp.GateDiffRate: "Diff rate", ramp.GateErrorRate: "Error rate", ramp.GateLatencyRatio: "Latency ratio"}[g.Name],
				show(g.Name, g.Value), show(g.Name, g.Bound), show(g.Name, g.Limit), g.Samples, g.MinSamples)
			if s.Name != g.Name || s.State != string(g.State) || !strings.Contains(s.Text, want) || !strings.HasPrefix(strings.TrimSpace(s.Text), string(g.State)) {
				t.Errorf("%s: gate %d shows %+v; want %s %q", where, i, s, g.State, want)
			}
			if !s.Visible || !s.Beside || !s.Unclipped {
				t.Errorf("%s: gate %s not visible beside the Promote button: %+v", where, g.Name, s)
			}
		}
	}
	check("overview", `tr[data-route="api"]`)
	b.Shot("ramp-gates-overview")
	b.Do("open the api route", chromedp.Click(chromedp.CSS(`tr[data-route="api"] td.name a`)))
	b.WaitView("route")
	check("route view", `main#view`)
	b.Shot("ramp-gates-route")
	b.CheckConsole()
}
