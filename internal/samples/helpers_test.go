package samples

import (
	"bytes"
	"encoding/json"
	"image"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// testCorpus is the default corpus for seed 1, made once per test binary.
var testCorpus = sync.OnceValue(func() []Item { return Corpus(CorpusOptions{Seed: 1}) })

func corpusItem(t testing.TB, name string) Item {
	t.Helper()
	for _, it := range testCorpus() {
		if it.Name == name {
			return it
		}
	}
	t.Fatalf("no corpus item %q", name)
	return Item{}
}

var client = &http.Client{Timeout: 60 * time.Second}

// startPair starts a legacy and a new service on loopback ports.
func startPair(t testing.TB) (legacy, new *Server) {
	t.Helper()
	return start(t, Legacy), start(t, New)
}

func start(t testing.TB, f Flavour) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// upload is one upload's answer.
type upload struct {
	status int
	header http.Header
	raw    []byte
	ok     UploadResponse // when status is 200
	err    ErrorResponse  // otherwise
}

func doUpload(t testing.TB, base string, it Item) upload {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/upload", bytes.NewReader(it.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", it.ContentType)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("upload %s: %v", it.Name, err)
	}
	defer resp.Body.Close()
	u := upload{status: resp.StatusCode, header: resp.Header}
	if u.raw, err = io.ReadAll(resp.Body); err != nil {
		t.Fatalf("upload %s: reading answer: %v", it.Name, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("upload %s: Content-Type %q, want application/json", it.Name, ct)
	}
	var target any = &u.err
	if u.status == http.StatusOK {
		target = &u.ok
	}
	dec := json.NewDecoder(bytes.NewReader(u.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		t.Fatalf("upload %s: answer %d %q is not the expected JSON: %v", it.Name, u.status, u.raw, err)
	}
	return u
}

// getThumb fetches /thumb/{id}: status, Content-Type and bytes.
func getThumb(t testing.TB, base, id string) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Get(base + "/thumb/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// decodeThumb decodes a thumbnail, failing the test if it does not decode
// as the format it claims.
func decodeThumb(t testing.TB, b []byte, format string) image.Image {
	t.Helper()
	if got := sniff(b); got != format {
		t.Fatalf("thumbnail sniffs as %q, JSON says %q", got, format)
	}
	img, err := codecs[format].Decode(b)
	if err != nil {
		t.Fatalf("thumbnail does not decode: %v", err)
	}
	return img
}

// rgbaAt returns the 8-bit straight RGBA colour of img at (x, y).
func rgbaAt(img image.Image, x, y int) [4]uint8 {
	r, g, b, a := img.At(img.Bounds().Min.X+x, img.Bounds().Min.Y+y).RGBA()
	if a == 0 {
		return [4]uint8{}
	}
	return [4]uint8{uint8(r * 0xffff / a >> 8), uint8(g * 0xffff / a >> 8), uint8(b * 0xffff / a >> 8), uint8(a >> 8)}
}

func isRed(c [4]uint8) bool  { return c[0] > 180 && c[1] < 80 && c[2] < 80 }
func isBlue(c [4]uint8) bool { return c[2] > 180 && c[0] < 80 && c[1] < 80 }

func decodeJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
}
