package admin

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/store"
)

const uiTestToken = "ui-test-token-0123456789"

// fakeReports serves fixed samples.
type fakeReports struct{ samples map[string]*store.Sample }

func (f fakeReports) Report(string, time.Time) ([]store.RouteReport, error) { return nil, nil }
func (f fakeReports) Samples(store.SampleFilter) ([]store.SampleSummary, error) {
	return []store.SampleSummary{}, nil
}
func (f fakeReports) Sample(id string) (*store.Sample, error) {
	if s, ok := f.samples[id]; ok {
		return s, nil
	}
	return nil, store.ErrNotFound
}

func (f fakeReports) Comparisons(string) ([]store.Comparison, error) { return nil, nil }
func (f fakeReports) Series(string, time.Time, time.Duration) ([]store.RouteSeries, error) {
	return nil, nil
}

var _ Reports = fakeReports{}

// startUIServer runs an admin server on 127.0.0.1 with fake deps and returns
// its base URL.
func startUIServer(t *testing.T, samples map[string]*store.Sample) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Deps{
		Token:   uiTestToken,
		Reports: fakeReports{samples},
		Routes:  func() []RouteStatus { return []RouteStatus{{Name: "secret-route-name"}} },
	})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() {
		s.Shutdown()
		<-done
	})
	return "http://" + ln.Addr().String()
}

type uiResp struct {
	status int
	header http.Header
	body   []byte
}

func uiGet(t *testing.T, method, url, auth string) uiResp {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return uiResp{resp.StatusCode, resp.Header, b}
}

func testPicture(w, h int, shift uint8) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(40+150*x/w) + shift, uint8(30 + 180*y/h), 120, 255})
		}
	}
	return img
}

func pngBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func side(ctype string, body []byte) store.SideSample {
	ss := store.SideSample{Status: 200, Body: body, Size: int64(len(body))}
	if ctype != "" {
		ss.Header = []compare.HeaderField{{Name: "Content-Type", Value: ctype}}
	}
	return ss
}

// Without a valid token every /ui/ path answers 401 with the bootstrap page,
// which holds no data and asks for the token.
func TestUIWithoutTokenGetsBootstrap(t *testing.T) {
	base := startUIServer(t, nil)
	for _, path := range []string{"/ui", "/ui/", "/ui/index.html", "/ui/app.js", "/ui/app.css", "/ui/no-such-file"} {
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + uiTestToken, uiTestToken} {
			r := uiGet(t, "GET", base+path, auth)
			if r.status != 401 {
				t.Errorf("%s with %q: status %d, want 401", path, auth, r.status)
				continue
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("%s: Content-Type %q, want the HTML bootstrap", path, ct)
			}
			if !bytes.Equal(r.body, uiBootstrap) {
				t.Errorf("%s: body is not the bootstrap page", path)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", path, got)
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("%s: security headers missing: %v", path, r.header)
			}
		}
	}
	r := uiGet(t, "GET", base+"/ui/", "")
	for _, want := range []string{`id="token"`, `"/ui/session"`, "/ui/app.js", "Authorization"} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("bootstrap page lacks %q", want)
		}
	}
	// No data, no app code in it; the token is not kept by the page.
	for _, leak := range []string{"secret-route-name", "tandemStart = function", "/api/v1/diffs", "sessionStorage", "localStorage"} {
		if bytes.Contains(r.body, []byte(leak)) {
			t.Errorf("bootstrap page contains %q", leak)
		}
	}
	// The API itself still answers 401 in JSON.
	if r := uiGet(t, "GET", base+"/api/v1/routes", ""); r.status != 401 || !strings.Contains(r.header.Get("Content-Type"), "json") {
		t.Errorf("API without token: %d %s", r.status, r.header.Get("Content-Type"))
	}
}

// With the token the assets are served; the page's CSP allows exactly the
// inline texts the bootstrap inserts.
func TestUIAssetsWithToken(t *testing.T) {
	base := startUIServer(t, nil)
	auth := "Bearer " + uiTestToken
	cases := []struct {
		path, ctype string
		want        int
		file        string // embedded file the body must equal; "" = don't check
	}{
		{"/ui/", "text/html", 200, "index.html"},
		{"/ui", "text/html", 200, "index.html"},
		{"/ui/app.js", "text/javascript", 200, "app.js"},
		{"/ui/app.css", "text/css", 200, "app.css"},
		{"/ui/nope.js", "application/json", 404, ""},
	}
	for _, c := range cases {
		r := uiGet(t, "GET", base+c.path, auth)
		if r.status != c.want || !strings.HasPrefix(r.header.Get("Content-Type"), c.ctype) {
			t.Errorf("%s: %d %q, want %d %q", c.path, r.status, r.header.Get("Content-Type"), c.want, c.ctype)
		}
		if c.file != "" {
			want, _ := uiFiles.ReadFile("ui/" + c.file)
			if !bytes.Equal(r.body, want) {
				t.Errorf("%s: body differs from ui/%s", c.path, c.file)
			}
		}
	}
	if r := uiGet(t, "POST", base+"/ui/app.js", auth); r.status != 405 {
		t.Errorf("POST /ui/app.js: %d, want 405", r.status)
	}
	csp := uiGet(t, "GET", base+"/ui/", auth).header.Get("Content-Security-Policy")
	js, _ := uiFiles.ReadFile("ui/app.js")
	css, _ := uiFiles.ReadFile("ui/app.css")
	inline := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindSubmatch(uiBootstrap)
	for name, b := range map[string][]byte{"app.js": js, "app.css": css, "inline script": inline[1]} {
		if !strings.Contains(csp, cspHash(b)) {
			t.Errorf("CSP %q lacks the hash of %s", csp, name)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows unsafe sources: %s", csp)
	}
}

// Stored bodies are served as images only when their bytes are images, as
// attachments otherwise, never as HTML, always with nosniff.
func TestDiffBodyContentTypes(t *testing.T) {
	pic := testPicture(32, 24, 0)
	pngb, jpgb := pngBytes(t, pic), jpegBytes(t, pic)
	html := []byte("<html><script>alert(1)</script></html>")
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
	samples := map[string]*store.Sample{
		"img":  {ID: "img", Legacy: side("image/png", pngb), New: side("image/png", jpgb)},
		"html": {ID: "html", Legacy: side("text/html; charset=utf-8", html), New: side("image/svg+xml", svg)},
		"json": {ID: "json", Legacy: side("application/json", []byte(`{"a":1}`)), New: side("", []byte{0, 1, 2, 3})},
		"fail": {ID: "fail", Legacy: side("text/plain", []byte("ok")), New: store.SideSample{Err: "connection refused"}},
	}
	base := startUIServer(t, samples)
	auth := "Bearer " + uiTestToken
	cases := []struct {
		why, path  string
		status     int
		ctype      string // prefix
		attachment bool
		body       []byte
	}{
		{"a PNG stored as image/png is served as it is", "/api/v1/diffs/img/body/legacy", 200, "image/png", false, pngb},
		{"a JPEG stored as image/png is served as what it is", "/api/v1/diffs/img/body/new", 200, "image/jpeg", false, jpgb},
		{"HTML is never served as HTML", "/api/v1/diffs/html/body/legacy", 200, "text/plain", true, html},
		{"SVG can carry script: text, not an image", "/api/v1/diffs/html/body/new", 200, "text/plain", true, svg},
		{"JSON is text, as an attachment", "/api/v1/diffs/json/body/legacy", 200, "text/plain", true, []byte(`{"a":1}`)},
		{"unknown bytes are octet-stream", "/api/v1/diffs/json/body/new", 200, "application/octet-stream", true, []byte{0, 1, 2, 3}},
		{"a side that failed has no body", "/api/v1/diffs/fail/body/new", 404, "application/json", false, nil},
		{"no such side", "/api/v1/diffs/img/body/secondary", 404, "application/json", false, nil},
		{"no such sample", "/api/v1/diffs/nope/body/legacy", 404, "application/json", false, nil},
	}
	for _, c := range cases {
		r := uiGet(t, "GET", base+c.path, auth)
		if r.status != c.status || !strings.HasPrefix(r.header.Get("Content-Type"), c.ctype) {
			t.Errorf("%s: %d %q, want %d %q", c.why, r.status, r.header.Get("Content-Type"), c.status, c.ctype)
			continue
		}
		if c.status != 200 {
			continue
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", c.why)
		}
		if cd := r.header.Get("Content-Disposition"); strings.HasPrefix(cd, "attachment") != c.attachment {
			t.Errorf("%s: Content-Disposition %q", c.why, cd)
		}
		if !bytes.Equal(r.body, c.body) {
			t.Errorf("%s: body differs", c.why)
		}
	}
	if r := uiGet(t, "GET", base+"/api/v1/diffs/img/body/legacy", ""); r.status != 401 {
		t.Errorf("body without token: %d", r.status)
	}
	if r := uiGet(t, "POST", base+"/api/v1/diffs/img/body/legacy", auth); r.status != 405 {
		t.Errorf("POST body: %d, want 405", r.status)
	}
}

// The heat map is a PNG for two images and 404 when a side is not a whole,
// decodable image.
func TestHeatMapEndpoint(t *testing.T) {
	a, b := pngBytes(t, testPicture(64, 48, 0)), jpegBytes(t, testPicture(64, 48, 40))
	trunc := side("image/png", a[:len(a)/2])
	trunc.Size, trunc.BodyTruncated = int64(len(a)), true
	samples := map[string]*store.Sample{
		"img":   {ID: "img", Legacy: side("image/png", a), New: side("image/jpeg", b)},
		"json":  {ID: "json", Legacy: side("application/json", []byte(`{"a":1}`)), New: side("application/json", []byte(`{"a":2}`))},
		"half":  {ID: "half", Legacy: side("image/png", a), New: side("image/png", []byte("not an image"))},
		"trunc": {ID: "trunc", Legacy: side("image/png", a), New: trunc},
	}
	base := startUIServer(t, samples)
	auth := "Bearer " + uiTestToken
	r := uiGet(t, "GET", base+"/api/v1/diffs/img/heatmap.png", auth)
	if r.status != 200 || r.header.Get("Content-Type") != "image/png" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("heat map: %d %v %s", r.status, r.header, r.body)
	}
	img, err := png.Decode(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got != image.Pt(64, 48) {
		t.Errorf("heat map size %v, want the legacy image's 64x48", got)
	}
	for _, c := range []struct{ why, id, want string }{
		{"JSON bodies are not images", "json", "not an image"},
		{"one side not an image", "half", "new: not an image"},
		{"a truncated body cannot be decoded whole", "trunc", "stored only in part"},
		{"no such sample", "nope", "no diff sample"},
	} {
		r := uiGet(t, "GET", base+"/api/v1/diffs/"+c.id+"/heatmap.png", auth)
		if r.status != 404 || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: %d %s, want 404 %q", c.why, r.status, r.body, c.want)
		}
	}
	if r := uiGet(t, "GET", base+"/api/v1/diffs/img/heatmap.png", ""); r.status != 401 {
		t.Errorf("heat map without token: %d", r.status)
	}
}

// The heat map decodes under the decode budget it is given (the proxy's):
// when the images do not fit, 503 with Retry-After, and nothing decoded.
func TestHeatMapUnderDecodeBudget(t *testing.T) {
	a, b := pngBytes(t, testPicture(640, 480, 0)), pngBytes(t, testPicture(640, 480, 40))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	budget := compare.NewDecodeBudget(1<<20, 0) // less than two 640×480 images
	s := New(Deps{
		Token:        uiTestToken,
		Reports:      fakeReports{map[string]*store.Sample{"img": {ID: "img", Legacy: side("image/png", a), New: side("image/png", b)}}},
		DecodeBudget: budget,
	})
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown() })
	r := uiGet(t, "GET", "http://"+ln.Addr().String()+"/api/v1/diffs/img/heatmap.png", "Bearer "+uiTestToken)
	if r.status != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "decode budget") {
		t.Fatalf("heat map over the budget: %d %v %s", r.status, r.header, r.body)
	}
	if budget.Peak() != 0 || budget.Refused() != 1 {
		t.Fatalf("budget peak %d refused %d; want nothing reserved, one refusal", budget.Peak(), budget.Refused())
	}
}
