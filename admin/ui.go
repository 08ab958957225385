package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/tandem-proxy/tandem/compare"
)

// The web UI under /ui/ is plain HTML, CSS and JavaScript embedded in the
// binary: no build step, no CDN, works offline.
//
// A browser cannot send a bearer token when it navigates, so every /ui/
// request without a valid token or session is answered 401 with the
// bootstrap page (ui/index.html, no data in it). The page asks GET
// /ui/session whether this browser is signed in; if not, it asks for the
// token once and posts it to POST /ui/session, which sets the session
// cookie (session.go). It then fetches /ui/app.js and /ui/app.css with the
// cookie, inserts them inline, and the app calls the JSON API with the
// cookie; the token is kept nowhere in the page. The Content-Security-Policy
// of the page allows exactly those four inline texts (by hash), same-origin
// fetches, and blob: images (response bodies and heat maps, fetched by the
// app).
//
// With a valid token or session the same paths answer 200 (the bootstrap
// page, which then finds the session), so scripts can fetch the assets
// too.

//go:embed ui
var uiFiles embed.FS

// uiAsset is one embedded file as served.
type uiAsset struct {
	body  []byte
	ctype string
}

var (
	uiBootstrap []byte             // ui/index.html
	uiAssets    map[string]uiAsset // by request path
	uiCSP       string             // Content-Security-Policy of the bootstrap page
)

// heatMapSide is the longest side of the heat maps the API draws.
const heatMapSide = 512

func init() {
	read := func(name string) []byte {
		b, err := uiFiles.ReadFile("ui/" + name)
		if err != nil {
			panic("BUG: embedded UI file missing: " + err.Error())
		}
		return b
	}
	uiBootstrap = read("index.html")
	js, css := read("app.js"), read("app.css")
	uiAssets = map[string]uiAsset{
		"/ui/app.js":  {js, "text/javascript; charset=utf-8"},
		"/ui/app.css": {css, "text/css; charset=utf-8"},
	}
	scripts := inlineHashes(uiBootstrap, "script")
	styles := inlineHashes(uiBootstrap, "style")
	if len(scripts) != 1 || len(styles) != 1 {
		panic("BUG: ui/index.html must have exactly one inline <script> and one <style>")
	}
	uiCSP = strings.Join([]string{
		"default-src 'none'",
		"script-src " + scripts[0] + " " + cspHash(js),
		"style-src " + styles[0] + " " + cspHash(css),
		"img-src blob:",
		"connect-src 'self'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

func cspHash(b []byte) string {
	sum := sha256.Sum256(b)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// inlineHashes returns the CSP hashes of the contents of every <tag> element
// in page.
func inlineHashes(page []byte, tag string) []string {
	re := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`)
	var out []string
	for _, m := range re.FindAllSubmatch(page, -1) {
		out = append(out, cspHash(m[1]))
	}
	return out
}

// isUIPath reports whether path belongs to the web UI.
func isUIPath(path string) bool { return path == "/ui" || strings.HasPrefix(path, "/ui/") }

// uiSecurityHeaders are set on every UI answer.
func uiSecurityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// uiUnauthorized answers a /ui/ request without a valid token: 401 with the
// bootstrap page, which holds no data.
func uiUnauthorized(w http.ResponseWriter) {
	uiSecurityHeaders(w)
	w.Header().Set("WWW-Authenticate", `Bearer realm="tandem"`)
	writeBody(w, http.StatusUnauthorized, "text/html; charset=utf-8", uiBootstrap)
}

// uiPage serves the bootstrap page (GET /ui, /ui/, /ui/index.html) to a
// caller with the token.
func (s *Server) uiPage(w http.ResponseWriter, r *http.Request) {
	uiSecurityHeaders(w)
	writeBody(w, http.StatusOK, "text/html; charset=utf-8", uiBootstrap)
}

// uiAsset serves /ui/app.js and /ui/app.css.
func (s *Server) uiAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := uiAssets[r.URL.Path]
	if !ok { // BUG: routes registers exactly the paths of uiAssets
		fail(w, http.StatusNotFound, "no such UI file: %s", r.URL.Path)
		return
	}
	uiSecurityHeaders(w)
	writeBody(w, http.StatusOK, a.ctype, a.body)
}

// writeBody answers status with a body of the given type.
func writeBody(w http.ResponseWriter, status int, ctype string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// getDiffBody serves GET /api/v1/diffs/{id}/body/{legacy|new}: the stored
// body bytes (at most the store's sample_body_max). A stored body is
// untrusted: it is served as an image only when its bytes are a raster
// image, as text/plain when its stored type is textual, else as
// application/octet-stream; never as HTML, never sniffed, and everything
// but images as an attachment.
func (s *Server) getDiffBody(w http.ResponseWriter, r *http.Request) {
	id, side := r.PathValue("id"), r.PathValue("side")
	if side != "legacy" && side != "new" {
		fail(w, http.StatusNotFound, "no such side %q (legacy or new)", side)
		return
	}
	d := s.sample(w, id)
	if d == nil {
		return
	}
	ss := &d.Legacy
	if side == "new" {
		ss = &d.New
	}
	if ss.Err != "" && len(ss.Body) == 0 {
		fail(w, http.StatusNotFound, "no %s body: the request failed: %s", side, ss.Err)
		return
	}
	ctype, inline := bodyContentType(storedContentType(ss.Header), ss.Body)
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("X-Tandem-Body-Truncated", fmt.Sprint(ss.BodyTruncated))
	if !inline {
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s%s"`, safeName(id), side, bodyExt(ctype)))
	}
	writeBody(w, http.StatusOK, ctype, ss.Body)
}

// getHeatMap serves GET /api/v1/diffs/{id}/heatmap.png: where the two
// images differ (compare.HeatMap), 404 when either side is not a whole,
// decodable image, 503 with Retry-After when decoding them does not fit the
// decode budget shared with the comparisons.
func (s *Server) getHeatMap(w http.ResponseWriter, r *http.Request) {
	d := s.sample(w, r.PathValue("id"))
	if d == nil {
		return
	}
	if d.Legacy.BodyTruncated || d.New.BodyTruncated {
		fail(w, http.StatusNotFound, "no heat map: a body was stored only in part (sample_body_max)")
		return
	}
	img, err := compare.HeatMap(d.Legacy.Body, d.New.Body, heatMapSide, s.deps.DecodeBudget)
	if errors.Is(err, compare.ErrDecodeBudget) {
		// Comparisons and other heat maps hold the decode memory: try later.
		w.Header().Set("Retry-After", "5")
		fail(w, http.StatusServiceUnavailable, "no heat map now: %v", err)
		return
	}
	if err != nil {
		fail(w, http.StatusNotFound, "no heat map: %v", err)
		return
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&b, img); err != nil {
		fail(w, http.StatusInternalServerError, "cannot encode heat map: %v", err)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, http.StatusOK, "image/png", b.Bytes())
}

// storedContentType is the Content-Type a side's stored headers name.
func storedContentType(h []compare.HeaderField) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, "Content-Type") {
			return f.Value
		}
	}
	return ""
}

// rasterTypes are the image types served as images: formats browsers
// render as pictures only (no SVG: it can carry script).
var rasterTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true, "image/bmp": true,
}

// bodyContentType decides how a stored body is served: the type to send and
// whether it may be shown inline. Images are recognised by their bytes; the
// stored type is kept when it agrees with them.
func bodyContentType(stored string, body []byte) (ctype string, inline bool) {
	mt, _, err := mime.ParseMediaType(stored)
	if err != nil {
		mt = ""
	}
	if sniffed := http.DetectContentType(body); rasterTypes[sniffed] {
		if mt == sniffed {
			return mt, true
		}
		return sniffed, true
	}
	if textual(mt) {
		return "text/plain; charset=utf-8", false
	}
	return "application/octet-stream", false
}

// textual reports whether a media type is text a person can read.
func textual(mt string) bool {
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"),
		mt == "application/json", mt == "application/xml", mt == "application/javascript",
		mt == "application/x-www-form-urlencoded", mt == "application/yaml", mt == "application/x-ndjson":
		return true
	}
	return false
}

func bodyExt(ctype string) string {
	if strings.HasPrefix(ctype, "text/plain") {
		return ".txt"
	}
	return ".bin"
}

// safeName keeps the characters of a sample id that are safe in a file name.
func safeName(id string) string {
	var b strings.Builder
	for _, r := range id {
		if r < 128 && (r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "sample"
	}
	return b.String()
}
