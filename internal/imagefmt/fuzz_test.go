package imagefmt

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds every codec (and JPEG and WebP at every scale) arbitrary bytes,
// seeded with the reference corpus: no decoder panics; a decoded image has
// the size its header gives (ScaledSize at 1/N); a JPEG that Go's own
// image/jpeg decodes is decoded by the fork too. (Images over 64 Ki pixels
// are left out: a progressive file of many scans over a large frame takes
// seconds in any decoder, and the fuzzer has no time limit per input.)
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/ref/*")
	for _, p := range files {
		if filepath.Ext(p) == ".sh" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) <= 12<<10 { // large seeds make the mutator crawl
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		format := Sniff(b)
		if format == "" {
			return
		}
		c := Codecs[format]
		cfg, err := c.Config(b)
		if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > 1<<16 {
			return
		}
		denoms := []int{1}
		if format == JPEG || format == WebP {
			denoms = []int{1, 2, 4, 8}
		}
		for _, denom := range denoms {
			img, err := DecodeScaled(b, format, denom)
			if err != nil {
				if format == JPEG && denom == 1 {
					if _, serr := jpeg.Decode(bytes.NewReader(b)); serr == nil {
						t.Fatalf("image/jpeg decodes it, the fork does not: %v", err)
					}
				}
				continue
			}
			w, h := ScaledSize(format, cfg.Width, cfg.Height, denom)
			if format == GIF || w == 0 || h == 0 { // GIF: the first frame of the logical screen
				continue
			}
			if got := img.Bounds().Size(); got.X != w || got.Y != h {
				t.Fatalf("%s at 1/%d: %v, header says %dx%d", format, denom, got, w, h)
			}
		}
	})
}
