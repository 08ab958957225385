package compare

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"strings"
	"testing"
)

// heatPicture is a smooth w×h test picture; shift(x, y) is added to its red
// channel.
func heatPicture(w, h int, shift func(x, y int) int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r := 60 + 120*x/w + shift(x, y)
			img.SetNRGBA(x, y, color.NRGBA{uint8(min(255, r)), uint8(40 + 150*y/h), 128, 255})
		}
	}
	return img
}

func noShift(x, y int) int { return 0 }

// pngHeaderOnly is a PNG whose IHDR claims w×h and which has no pixel data:
// a decode bomb's header.
func pngHeaderOnly(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// hot reports whether a heat map pixel shows a difference: the ramp is red
// from a third of the way up, while the grey ghost never passes 77.
func hot(c color.Color) bool {
	r, _, _, _ := c.RGBA()
	return r>>8 >= 120
}

func hotShare(img image.Image) float64 {
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if hot(img.At(x, y)) {
				n++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy())
}

func TestHeatMap(t *testing.T) {
	base := heatPicture(64, 48, noShift)
	basePNG := encPNG(t, base)
	cases := []struct {
		name        string
		why         string
		legacy, new []byte
		maxSide     int
		wantW       int
		wantH       int
		hotMin      float64 // share of hot pixels, inclusive bounds
		hotMax      float64
		check       func(t *testing.T, img image.Image)
		wantErr     string // substring; "" = no error
		wantNotImg  bool
	}{
		{name: "identical", why: "no difference draws no heat, only the grey ghost",
			legacy: basePNG, new: basePNG, wantW: 64, wantH: 48, hotMin: 0, hotMax: 0,
			check: func(t *testing.T, img image.Image) {
				r, g, b, _ := img.At(40, 30).RGBA()
				if d := int(r>>8) - int(g>>8); d < -6 || d > 6 || int(b>>8) > 90 {
					t.Errorf("identical pixel %d,%d,%d is not a dim grey", r>>8, g>>8, b>>8)
				}
			}},
		{name: "colour shift", why: "a uniform +40 red shift heats every pixel",
			legacy: basePNG, new: encPNG(t, heatPicture(64, 48, func(x, y int) int { return 40 })),
			wantW: 64, wantH: 48, hotMin: 1, hotMax: 1},
		{name: "right half changed", why: "heat is where the change is, not elsewhere (the 8-px tile at the edge holds SSIM windows that reach over it)",
			legacy: basePNG, new: encPNG(t, heatPicture(64, 48, func(x, y int) int {
				if x >= 32 {
					return 100
				}
				return 0
			})),
			wantW: 64, wantH: 48, hotMin: 0.45, hotMax: 0.65,
			check: func(t *testing.T, img image.Image) {
				if hot(img.At(5, 20)) || !hot(img.At(60, 20)) {
					t.Error("heat is not confined to the right half")
				}
			}},
		{name: "png vs jpeg", why: "re-encoding the same picture at quality 95 stays cold",
			legacy: basePNG, new: encJPEG(t, base, 95), wantW: 64, wantH: 48, hotMin: 0, hotMax: 0.02},
		{name: "new is larger", why: "the new image is scaled to the legacy size; same picture, no heat",
			legacy: basePNG, new: encPNG(t, heatPicture(128, 96, noShift)), wantW: 64, wantH: 48, hotMin: 0, hotMax: 0.02},
		{name: "fitted to maxSide", why: "a large legacy image is reduced, keeping its aspect ratio",
			legacy: encPNG(t, heatPicture(400, 200, noShift)), new: encPNG(t, heatPicture(400, 200, noShift)),
			maxSide: 100, wantW: 100, wantH: 50, hotMin: 0, hotMax: 0},
		{name: "default side", why: "maxSide 0 means DefaultHeatMapSide",
			legacy: encPNG(t, heatPicture(1024, 256, noShift)), new: encPNG(t, heatPicture(1024, 256, noShift)),
			wantW: DefaultHeatMapSide, wantH: DefaultHeatMapSide / 4, hotMin: 0, hotMax: 0},
		{name: "not an image", why: "JSON has no pixels", legacy: basePNG, new: []byte(`{"a":1}`),
			wantErr: "new: not an image", wantNotImg: true},
		{name: "legacy empty", why: "an empty body is not an image", legacy: nil, new: basePNG,
			wantErr: "legacy: not an image", wantNotImg: true},
		{name: "truncated", why: "a body cut short (sample cap) does not decode",
			legacy: basePNG, new: basePNG[:len(basePNG)/2], wantErr: "new: cannot decode png"},
		{name: "decode bomb", why: "an image over the pixel limit is refused from its header",
			legacy: pngHeaderOnly(60000, 60000), new: basePNG, wantErr: "over 50000000 pixels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, err := HeatMap(c.legacy, c.new, c.maxSide, nil)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("%s: err %v, want %q", c.why, err, c.wantErr)
				}
				if errors.Is(err, ErrNotImage) != c.wantNotImg {
					t.Fatalf("%s: errors.Is(err, ErrNotImage) = %v", c.why, !c.wantNotImg)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", c.why, err)
			}
			if b := img.Bounds(); b.Dx() != c.wantW || b.Dy() != c.wantH {
				t.Fatalf("%s: size %dx%d, want %dx%d", c.why, b.Dx(), b.Dy(), c.wantW, c.wantH)
			}
			if s := hotShare(img); s < c.hotMin || s > c.hotMax {
				t.Errorf("%s: hot share %.3f, want [%.2f, %.2f]", c.why, s, c.hotMin, c.hotMax)
			}
			if c.check != nil {
				c.check(t, img)
			}
		})
	}
}

// The ramp runs from black to pale yellow and is monotonic in brightness.
func TestHeatColourRamp(t *testing.T) {
	if c := heatColour(0); c != heatRamp[0] {
		t.Errorf("t=0: %v", c)
	}
	if c := heatColour(1); c != heatRamp[len(heatRamp)-1] {
		t.Errorf("t=1: %v", c)
	}
	prev := -1.0
	for i := 0; i <= 100; i++ {
		c := heatColour(float64(i) / 100)
		l := 0.299*c[0] + 0.587*c[1] + 0.114*c[2]
		if l < prev {
			t.Fatalf("luma falls at t=%.2f: %.1f < %.1f", float64(i)/100, l, prev)
		}
		prev = l
	}
}
