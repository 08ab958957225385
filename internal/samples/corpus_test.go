package samples

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-proxy/tandem/internal/imagefmt"
	"golang.org/x/image/webp"
)

func TestCorpusDeterministic(t *testing.T) {
	a, b := testCorpus(), Corpus(CorpusOptions{Seed: 1})
	if len(a) != len(b) {
		t.Fatalf("%d items, then %d", len(a), len(b))
	}
	other := Corpus(CorpusOptions{Seed: 2})
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Body, b[i].Body) || a[i].Kind != b[i].Kind {
			t.Errorf("item %d (%s): differs between two runs with the same seed", i, a[i].Name)
		}
		if a[i].Name != other[i].Name {
			t.Errorf("item %d: named %q for seed 1, %q for seed 2: names should not depend on the seed", i, a[i].Name, other[i].Name)
		}
		fixed := a[i].Name == "broken-empty.jpg" || a[i].Name == "broken-not-an-image.jpg"
		if !fixed && bytes.Equal(a[i].Body, other[i].Body) {
			t.Errorf("%s: the same bytes for seeds 1 and 2", a[i].Name)
		}
	}
}

func TestCorpusContents(t *testing.T) {
	items := testCorpus()
	names := map[string]bool{}
	kinds := map[string]int{}
	minSize, maxSize := int(^uint(0)>>1), 0
	for _, it := range items {
		if names[it.Name] {
			t.Errorf("duplicate name %q", it.Name)
		}
		names[it.Name] = true
		kinds[it.Kind]++
		minSize, maxSize = min(minSize, len(it.Body)), max(maxSize, len(it.Body))
		if it.Kind == KindBroken {
			continue
		}
		format, cfg, rerr := checkHeader(it.Body)
		if rerr != nil {
			t.Errorf("%s: %v", it.Name, rerr)
			continue
		}
		if it.ContentType != "image/"+format {
			t.Errorf("%s: Content-Type %q, but the bytes are %s", it.Name, it.ContentType, format)
		}
		o := jpegOrientation(it.Body)
		if o != it.Orientation && !(o == 0 && it.Orientation == 0) {
			t.Errorf("%s: EXIF orientation %d, item says %d", it.Name, o, it.Orientation)
		}
		if w, h := orientedSize(cfg.Width, cfg.Height, o); w != it.Width || h != it.Height {
			t.Errorf("%s: %dx%d shown, item says %dx%d", it.Name, w, h, it.Width, it.Height)
		}
		if (it.Kind == KindRotated) != (o > 1) {
			t.Errorf("%s: kind %s with orientation %d", it.Name, it.Kind, o)
		}
		img, err := codecs[format].Decode(it.Body)
		if err != nil {
			t.Errorf("%s: %v", it.Name, err)
			continue
		}
		if alpha := hasAlpha(img); alpha != (it.Kind == KindAlpha) {
			t.Errorf("%s: kind %s, has alpha %v", it.Name, it.Kind, alpha)
		}
		if it.Kind == KindAnimated {
			g, err := gif.DecodeAll(bytes.NewReader(it.Body))
			if err != nil || len(g.Image) < 2 {
				t.Errorf("%s: not an animated GIF (%v)", it.Name, err)
			}
		}
	}
	for _, k := range []string{KindPhoto, KindRotated, KindAlpha, KindAnimated, KindBroken} {
		if kinds[k] == 0 {
			t.Errorf("no %s item", k)
		}
	}
	for _, name := range []string{"broken-empty.jpg", "broken-truncated.jpg", "broken-not-an-image.jpg", "photo.webp", "alpha.webp", "rotated-6.jpg"} {
		if !names[name] {
			t.Errorf("no %s", name)
		}
	}
	if minSize != 0 || maxSize < 256<<10 {
		t.Errorf("sizes %d..%d bytes: want an empty file and some of hundreds of KiB", minSize, maxSize)
	}
}

// TestLargeCorpus: the large option adds files of several MiB that both
// flavours process.
func TestLargeCorpus(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("large corpus: slow (about 30 s under the race detector); run without -short and -race")
	}
	items := Corpus(CorpusOptions{Seed: 1, Large: true})
	if len(items) <= len(testCorpus()) {
		t.Fatalf("Large added no items")
	}
	legacy, new := startPair(t)
	for _, it := range items[len(testCorpus()):] {
		if len(it.Body) < 2<<20 || len(it.Body) > MaxUploadBytes {
			t.Errorf("%s: %d bytes, want several MiB under the upload limit", it.Name, len(it.Body))
		}
		l, n := doUpload(t, legacy.URL(), it), doUpload(t, new.URL(), it)
		if l.status != http.StatusOK || n.status != http.StatusOK {
			t.Errorf("%s: status legacy %d, new %d (%s / %s)", it.Name, l.status, n.status, l.raw, n.raw)
			continue
		}
		if l.ok.Width != n.ok.Width || l.ok.Height != n.ok.Height || l.ok.Width != ThumbSide {
			t.Errorf("%s: legacy %dx%d, new %dx%d", it.Name, l.ok.Width, l.ok.Height, n.ok.Width, n.ok.Height)
		}
	}
}

func TestWriteCorpus(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "corpus")
	if err := WriteCorpus(dir, CorpusOptions{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	for _, it := range testCorpus() {
		b, err := os.ReadFile(filepath.Join(dir, it.Name))
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.Equal(b, it.Body) {
			t.Errorf("%s: file differs from the item", it.Name)
		}
	}
	// The expectation file names every broken item with 400, then * 200.
	expect, err := os.ReadFile(filepath.Join(dir, ExpectFile))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, it := range testCorpus() {
		if it.Kind == KindBroken {
			want = append(want, it.Name+" 400")
		}
	}
	want = append(want, "* 200")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(expect)), "\n") {
		if !strings.HasPrefix(l, "#") {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(want) < 2 {
		t.Errorf("%s:\n%s\nwant the rules\n%s", ExpectFile, expect, strings.Join(want, "\n"))
	}
	if err := WriteCorpus(filepath.Join(dir, "photo-small.jpg", "x"), CorpusOptions{}); err == nil {
		t.Errorf("WriteCorpus under a file: no error")
	}
}

// TestWebPRoundTrip: the lossless writer's files decode to the same pixels.
func TestWebPRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	noisy := image.NewNRGBA(image.Rect(0, 0, 37, 23))
	for i := range noisy.Pix {
		noisy.Pix[i] = uint8(r.Uint32())
	}
	opaque := image.NewNRGBA(image.Rect(0, 0, 64, 1))
	for x := range 64 {
		opaque.SetNRGBA(x, 0, color.NRGBA{uint8(4 * x), 7, uint8(255 - x), 255})
	}
	one := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	one.SetNRGBA(0, 0, color.NRGBA{1, 2, 3, 4})
	for name, m := range map[string]*image.NRGBA{"noisy": noisy, "opaque": opaque, "one pixel": one} {
		b, err := imagefmt.EncodeWebP(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := webp.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n, ok := got.(*image.NRGBA)
		if !ok || n.Bounds() != m.Bounds() {
			t.Fatalf("%s: decoded %T %v", name, got, got.Bounds())
		}
		for y := 0; y < m.Rect.Dy(); y++ {
			if !bytes.Equal(n.Pix[y*n.Stride:y*n.Stride+4*m.Rect.Dx()], m.Pix[y*m.Stride:y*m.Stride+4*m.Rect.Dx()]) {
				t.Fatalf("%s: row %d differs after the round trip", name, y)
			}
		}
	}
	if _, err := imagefmt.EncodeWebP(image.NewNRGBA(image.Rect(0, 0, 1<<14+1, 1))); err == nil {
		t.Errorf("encodeWebP accepted a width over 16384")
	}
}

func TestOrient(t *testing.T) {
	// A 3×2 image whose pixels are numbered 0..5; want[o] lists them as
	// shown under orientation o, row by row.
	src := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for i := range 6 {
		src.Pix[4*i] = uint8(i)
	}
	want := map[int][]uint8{
		1: {0, 1, 2, 3, 4, 5},
		2: {2, 1, 0, 5, 4, 3},
		3: {5, 4, 3, 2, 1, 0},
		4: {3, 4, 5, 0, 1, 2},
		5: {0, 3, 1, 4, 2, 5},
		6: {3, 0, 4, 1, 5, 2},
		7: {5, 2, 4, 1, 3, 0},
		8: {2, 5, 1, 4, 0, 3},
	}
	for o := 1; o <= 8; o++ {
		got := orient(src, o)
		var px []uint8
		for i := 0; i < len(got.Pix); i += 4 {
			px = append(px, got.Pix[i])
		}
		if !bytes.Equal(px, want[o]) {
			t.Errorf("orientation %d: %v, want %v", o, px, want[o])
		}
		if w, h := orientedSize(3, 2, o); got.Rect.Dx() != w || got.Rect.Dy() != h {
			t.Errorf("orientation %d: %v, orientedSize says %dx%d", o, got.Rect, w, h)
		}
		if back := orient(got, inverseOrientation(o)); !bytes.Equal(back.Pix, src.Pix) {
			t.Errorf("orientation %d: inverse %d does not undo it", o, inverseOrientation(o))
		}
	}
}

func TestJPEGOrientation(t *testing.T) {
	j := corpusItem(t, "photo-small.jpg").Body
	if o := jpegOrientation(j); o != 0 {
		t.Errorf("no Exif: orientation %d, want 0", o)
	}
	for o := uint16(1); o <= 8; o++ {
		for _, be := range []bool{false, true} {
			b := withOrientation(j, o, be)
			if got := jpegOrientation(b); got != int(o) {
				t.Errorf("orientation %d (big-endian %v): read %d", o, be, got)
			}
			if _, err := codecs[formatJPEG].Decode(b); err != nil {
				t.Errorf("orientation %d: the JPEG no longer decodes: %v", o, err)
			}
		}
	}
	bad := withOrientation(j, 9, false)
	if got := jpegOrientation(bad); got != 0 {
		t.Errorf("orientation 9: read %d, want 0", got)
	}
	// Every prefix of an Exif JPEG, and mangled bytes, read without panic.
	b := withOrientation(j, 6, true)
	for n := range 200 {
		jpegOrientation(b[:n])
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		m := append([]byte(nil), b[:120]...)
		m[2+r.IntN(118)] = uint8(r.Uint32())
		if o := jpegOrientation(m); o < 0 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	}
}
