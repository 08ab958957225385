package samples

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCorpusBothFlavours uploads every corpus item to both flavours over
// real HTTP and checks each answer, and the differences the demo relies
// on: harmless for photos, real for rotated and transparent inputs.
func TestCorpusBothFlavours(t *testing.T) {
	legacy, new := startPair(t)
	for _, it := range testCorpus() {
		t.Run(it.Name, func(t *testing.T) {
			t.Parallel()
			l, n := doUpload(t, legacy.URL(), it), doUpload(t, new.URL(), it)
			if l.status != n.status {
				t.Fatalf("status legacy %d, new %d (%s / %s)", l.status, n.status, l.raw, n.raw)
			}
			if it.Kind == KindBroken {
				if l.status != http.StatusBadRequest {
					t.Fatalf("broken item: status %d, want 400 (%s)", l.status, l.raw)
				}
				if l.err.Error == "" || l.err.Error != n.err.Error {
					t.Errorf("error messages: legacy %q, new %q: want the same, non-empty", l.err.Error, n.err.Error)
				}
				return
			}
			if l.status != http.StatusOK {
				t.Fatalf("status %d, want 200 (%s)", l.status, l.raw)
			}
			limg := checkAnswer(t, legacy.URL(), l.ok)
			nimg := checkAnswer(t, new.URL(), n.ok)
			if l.ok.SHA256 == n.ok.SHA256 {
				t.Errorf("legacy and new thumbnails are the same bytes: the filters should differ")
			}
			sw, sh := it.Width, it.Height
			wantFormat := map[string]string{"image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}[it.ContentType]
			if l.ok.Source != (SourceInfo{sw, sh, wantFormat}) {
				t.Errorf("legacy source %+v, want %dx%d %s", l.ok.Source, sw, sh, wantFormat)
			}
			lw, lh := fit(sw, sh, ThumbSide)
			if l.ok.Width != lw || l.ok.Height != lh {
				t.Errorf("legacy thumbnail %dx%d, want %dx%d", l.ok.Width, l.ok.Height, lw, lh)
			}
			switch it.Kind {
			case KindPhoto, KindAnimated:
				if n.ok.Width != l.ok.Width || n.ok.Height != l.ok.Height || n.ok.Format != l.ok.Format || n.ok.Source != l.ok.Source {
					t.Errorf("legacy %+v, new %+v: want the same dimensions, format and source", l.ok, n.ok)
				}
				if l.ok.Format != formatJPEG {
					t.Errorf("opaque input: format %q, want jpeg", l.ok.Format)
				}
			case KindRotated:
				// The new flavour ignores the EXIF orientation: it sees the
				// stored pixels.
				stw, sth := orientedSize(sw, sh, inverseOrientation(it.Orientation))
				if n.ok.Source != (SourceInfo{stw, sth, formatJPEG}) {
					t.Errorf("new source %+v, want %dx%d jpeg (stored size)", n.ok.Source, stw, sth)
				}
				if it.Orientation >= 5 {
					if !(l.ok.Height > l.ok.Width) || !(n.ok.Width > n.ok.Height) {
						t.Errorf("legacy %dx%d, new %dx%d: want legacy portrait (orientation honoured), new landscape",
							l.ok.Width, l.ok.Height, n.ok.Width, n.ok.Height)
					}
				}
				// The marker squares: red top-left, blue bottom-right as shown.
				lb := limg.Bounds()
				if c := rgbaAt(limg, 1, 1); !isRed(c) {
					t.Errorf("legacy thumbnail top-left is %v, want red (upright)", c)
				}
				if c := rgbaAt(limg, lb.Dx()-2, lb.Dy()-2); !isBlue(c) {
					t.Errorf("legacy thumbnail bottom-right is %v, want blue (upright)", c)
				}
				if c := rgbaAt(nimg, 1, 1); isRed(c) {
					t.Errorf("new thumbnail top-left is red: orientation should be ignored")
				}
			case KindAlpha:
				if l.ok.Format != formatPNG || n.ok.Format != formatJPEG {
					t.Errorf("formats: legacy %q, new %q; want png (transparency kept), jpeg (flattened)", l.ok.Format, n.ok.Format)
				}
				if !hasAlpha(limg) {
					t.Errorf("legacy thumbnail lost its transparency")
				}
				if c := rgbaAt(limg, 0, 0); c[3] != 0 {
					t.Errorf("legacy thumbnail corner alpha %d, want 0 (transparent background)", c[3])
				}
				if c := rgbaAt(nimg, 0, 0); c[0] > 16 || c[1] > 16 || c[2] > 16 || c[3] != 255 {
					t.Errorf("new thumbnail corner %v, want opaque black (flattened)", c)
				}
				if n.ok.Width != l.ok.Width || n.ok.Height != l.ok.Height {
					t.Errorf("legacy %dx%d, new %dx%d: want the same dimensions", l.ok.Width, l.ok.Height, n.ok.Width, n.ok.Height)
				}
			}
		})
	}
}

// checkAnswer checks one 200 answer against the thumbnail GET /thumb/{id}
// serves, and returns the decoded thumbnail.
func checkAnswer(t *testing.T, base string, a UploadResponse) image.Image {
	t.Helper()
	if len(a.ID) != 32 {
		t.Errorf("id %q: want 32 hex digits", a.ID)
	}
	if ts, err := time.Parse(time.RFC3339Nano, a.ProcessedAt); err != nil || time.Since(ts) > time.Minute || time.Until(ts) > time.Minute {
		t.Errorf("processed_at %q: want a current RFC 3339 time (%v)", a.ProcessedAt, err)
	}
	if a.Width < 1 || a.Height < 1 || a.Width > ThumbSide || a.Height > ThumbSide {
		t.Errorf("thumbnail %dx%d: want at most %d a side", a.Width, a.Height, ThumbSide)
	}
	resp, b := getThumb(t, base, a.ID)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /thumb/%s: %d %s", a.ID, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "image/"+a.Format {
		t.Errorf("GET /thumb: Content-Type %q, want image/%s", ct, a.Format)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != a.SHA256 || len(b) != a.Bytes {
		t.Errorf("GET /thumb: %d bytes with sha256 %x; JSON says %d bytes, %s", len(b), sum, a.Bytes, a.SHA256)
	}
	img := decodeThumb(t, b, a.Format)
	if got := img.Bounds().Size(); got != image.Pt(a.Width, a.Height) {
		t.Errorf("thumbnail decodes as %v, JSON says %dx%d", got, a.Width, a.Height)
	}
	return img
}

// TestNoiseFields: id and processed_at differ on every call; everything
// else is deterministic for one flavour and input.
func TestNoiseFields(t *testing.T) {
	for _, f := range []Flavour{Legacy, New} {
		t.Run(string(f), func(t *testing.T) {
			s := start(t, f)
			it := corpusItem(t, "photo-small.jpg")
			a, b := doUpload(t, s.URL(), it), doUpload(t, s.URL(), it)
			if a.status != http.StatusOK || b.status != http.StatusOK {
				t.Fatalf("status %d, %d", a.status, b.status)
			}
			if a.ok.ID == b.ok.ID {
				t.Errorf("id %q twice", a.ok.ID)
			}
			if a.ok.ProcessedAt == b.ok.ProcessedAt {
				t.Errorf("processed_at %q twice", a.ok.ProcessedAt)
			}
			a.ok.ID, a.ok.ProcessedAt = b.ok.ID, b.ok.ProcessedAt
			if a.ok != b.ok {
				t.Errorf("same input, answers differ beyond id and processed_at:\n%+v\n%+v", a.ok, b.ok)
			}
		})
	}
}

// TestProcessedAtStrictlyIncreases: even calls within one clock tick get
// different times.
func TestProcessedAtStrictlyIncreases(t *testing.T) {
	s := NewService(Legacy).(*service)
	prev := s.now()
	for range 10000 {
		now := s.now()
		if !now.After(prev) {
			t.Fatalf("now() = %v after %v", now, prev)
		}
		prev = now
	}
}

// TestDecodeBomb: headers claiming huge images are refused from the header
// alone, before any pixel buffer is allocated.
func TestDecodeBomb(t *testing.T) {
	bombs := map[string][]byte{
		"png 100000x100000":   pngBomb(100000, 100000),
		"gif 65535x65535":     gifBomb(65535, 65535),
		"jpeg 65500x65500":    jpegBomb(t, 65500, 65500),
		"png 7000x7000 (49M)": pngBomb(7000, 7000),
	}
	for _, f := range []Flavour{Legacy, New} {
		h := NewService(f)
		for name, body := range bombs {
			var before, after runtimeMem
			before.read()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/upload", bytes.NewReader(body)))
			after.read()
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Errorf("%s %s: status %d, want 413 (%s)", f, name, rec.Code, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), "pixels") {
				t.Errorf("%s %s: error %s does not say why", f, name, rec.Body)
			}
			if d := after.total - before.total; d > 1<<20 {
				t.Errorf("%s %s: %d bytes allocated to refuse it, want < 1 MiB", f, name, d)
			}
		}
	}
	// And over the wire.
	s := start(t, New)
	u := doUpload(t, s.URL(), Item{Name: "bomb.png", ContentType: "image/png", Body: bombs["png 100000x100000"]})
	if u.status != http.StatusRequestEntityTooLarge {
		t.Errorf("over HTTP: status %d, want 413", u.status)
	}
}

func TestUploadLimits(t *testing.T) {
	s := start(t, Legacy)
	post := func(body io.Reader, length int64) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.URL()+"/upload", body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(http.NoBody, 0); code != http.StatusBadRequest || !strings.Contains(body, "empty body") {
		t.Errorf("empty body: %d %s, want 400", code, body)
	}
	// Announced too large: refused before reading.
	big := io.LimitReader(zeros{}, MaxUploadBytes+1)
	if code, body := post(big, MaxUploadBytes+1); code != http.StatusRequestEntityTooLarge {
		t.Errorf("Content-Length %d: %d %s, want 413", MaxUploadBytes+1, code, body)
	}
	// Chunked, found too large while reading.
	big = io.LimitReader(zeros{}, MaxUploadBytes+1)
	if code, body := post(io.MultiReader(big), -1); code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked %d bytes: %d %s, want 413", MaxUploadBytes+1, code, body)
	}
	// Chunked, within the limit: fine.
	it := corpusItem(t, "photo-small.jpg")
	if code, body := post(io.MultiReader(bytes.NewReader(it.Body)), -1); code != http.StatusOK {
		t.Errorf("chunked upload: %d %s, want 200", code, body)
	}
}

// zeros reads zero bytes forever.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestRoutes(t *testing.T) {
	s := start(t, Legacy)
	it := corpusItem(t, "photo-small.jpg")
	req, _ := http.NewRequest(http.MethodPut, s.URL()+"/upload/albums/42", bytes.NewReader(it.Body))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("PUT /upload/albums/42: %d, want 200", resp.StatusCode)
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/upload", http.StatusMethodNotAllowed},
		{"DELETE", "/upload/x", http.StatusMethodNotAllowed},
		{"POST", "/thumb/x", http.StatusMethodNotAllowed},
		{"GET", "/thumb/nope", http.StatusNotFound},
		{"GET", "/thumb/", http.StatusNotFound},
		{"GET", "/uploads", http.StatusNotFound},
		{"GET", "/", http.StatusNotFound},
		{"GET", "/healthz", http.StatusOK},
	} {
		req, _ := http.NewRequest(c.method, s.URL()+c.path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, b, c.status)
		}
		if c.status != http.StatusOK && !bytes.HasPrefix(b, []byte(`{"error":`)) {
			t.Errorf("%s %s: body %q, want a JSON error", c.method, c.path, b)
		}
	}
	// HEAD /thumb/{id}: headers only.
	u := doUpload(t, s.URL(), it)
	resp, err = client.Head(s.URL() + "/thumb/" + u.ok.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(u.ok.Bytes) {
		t.Errorf("HEAD /thumb: %d, length %d; want 200, %d", resp.StatusCode, resp.ContentLength, u.ok.Bytes)
	}
}

// TestConcurrentUploads exercises the store and the decode limit from many
// goroutines (run with -race).
func TestConcurrentUploads(t *testing.T) {
	s := start(t, New)
	items := []Item{corpusItem(t, "photo-small.jpg"), corpusItem(t, "alpha-logo.png"), corpusItem(t, "broken-truncated.jpg")}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 4 {
				it := items[(g+i)%len(items)]
				resp, err := client.Post(s.URL()+"/upload", it.ContentType, bytes.NewReader(it.Body))
				if err != nil {
					t.Error(err)
					return
				}
				var a UploadResponse
				err = json.NewDecoder(resp.Body).Decode(&a)
				resp.Body.Close()
				want := http.StatusOK
				if it.Kind == KindBroken {
					want = http.StatusBadRequest
				}
				if err != nil || resp.StatusCode != want {
					t.Errorf("%s: %d, %v; want %d", it.Name, resp.StatusCode, err, want)
					return
				}
				if want != http.StatusOK {
					continue
				}
				resp, err = client.Get(s.URL() + "/thumb/" + a.ID)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || len(b) != a.Bytes {
					t.Errorf("GET /thumb/%s: %d, %d bytes, %v", a.ID, resp.StatusCode, len(b), err)
				}
			}
		})
	}
	wg.Wait()
}

func TestThumbStoreLRU(t *testing.T) {
	st := newThumbStore(3)
	for i := range 3 {
		st.put(fmt.Sprint(i), []byte{byte(i)}, formatJPEG)
	}
	st.get("0") // now most recently used
	st.put("3", []byte{3}, formatPNG)
	if _, _, ok := st.get("1"); ok {
		t.Errorf("1 should have been evicted (least recently used)")
	}
	for _, id := range []string{"0", "2", "3"} {
		if _, _, ok := st.get(id); !ok {
			t.Errorf("%s evicted", id)
		}
	}
	if data, format, _ := st.get("3"); format != formatPNG || !bytes.Equal(data, []byte{3}) {
		t.Errorf("get(3) = %v %q", data, format)
	}
	if st.len() != 3 {
		t.Errorf("len %d, want 3", st.len())
	}
}

func TestListen(t *testing.T) {
	if _, err := Listen("", "beta"); err == nil {
		t.Errorf("Listen with flavour beta: no error")
	}
	if _, err := ParseFlavour("Legacy"); err == nil {
		t.Errorf("ParseFlavour is case-sensitive: Legacy should be refused")
	}
	for _, f := range []Flavour{Legacy, New} {
		if g, err := ParseFlavour(string(f)); err != nil || g != f {
			t.Errorf("ParseFlavour(%q) = %q, %v", f, g, err)
		}
	}
	s, err := Listen("", New)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || s.Flavour() != New {
		t.Errorf("URL %q, flavour %q", s.URL(), s.Flavour())
	}
	resp, err := client.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Errorf("Done not closed after Close")
	}
	if s.Err() != nil {
		t.Errorf("Err after Close: %v", s.Err())
	}
	if _, err := client.Get(s.URL() + "/healthz"); err == nil {
		t.Errorf("still answering after Close")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("NewService(\"\") did not panic")
			}
		}()
		NewService("")
	}()
}

// POST /thumbnail answers the thumbnail itself; it is the same picture that
// /upload describes.
func TestThumbnailEndpoint(t *testing.T) {
	s, err := Listen("", Legacy)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var photo Item
	for _, it := range Corpus(CorpusOptions{Seed: 1}) {
		if it.Kind == KindPhoto {
			photo = it
			break
		}
	}
	resp, err := http.Post(s.URL()+"/thumbnail", photo.ContentType, bytes.NewReader(photo.Body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/") ||
		resp.Header.Get("X-Thumb-Id") == "" || resp.Header.Get("X-Processed-At") == "" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil || max(cfg.Width, cfg.Height) != ThumbSide {
		t.Fatalf("thumbnail %dx%d: %v", cfg.Width, cfg.Height, err)
	}
}
