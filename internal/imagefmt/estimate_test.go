package imagefmt

import (
	"bytes"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// noise fills an image with random pixels (so that nothing compresses and
// every decoder does its full work).
func noise(w, h int) *image.NRGBA64 {
	r := rand.New(rand.NewPCG(1, 2))
	m := image.NewNRGBA64(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = byte(r.Uint32())
	}
	for i := 7; i < len(m.Pix); i += 8 { // opaque
		m.Pix[i-1], m.Pix[i] = 0xff, 0xff
	}
	return m
}

func to8(m image.Image) *image.NRGBA {
	b := m.Bounds()
	out := image.NewNRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(x, y, m.At(x, y))
		}
	}
	return out
}

func toGray16(m image.Image) *image.Gray16 {
	b := m.Bounds()
	out := image.NewGray16(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(x, y, m.At(x, y))
		}
	}
	return out
}

func toPaletted(m image.Image) *image.Paletted {
	b := m.Bounds()
	out := image.NewPaletted(b, palette.Plan9)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(x, y, m.At(x, y))
		}
	}
	return out
}

func encode(t *testing.T, f func(*bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// magick converts a PNG with ImageMagick's convert and the given options,
// or skips when convert is missing (and CI is not set).
func magick(t *testing.T, src []byte, ext string, args ...string) []byte {
	t.Helper()
	path, err := exec.LookPath("convert")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ImageMagick convert is required in CI")
		}
		t.Skip("ImageMagick convert not installed")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.png"), filepath.Join(dir, "out."+ext)
	if err := os.WriteFile(in, src, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, append(append([]string{in}, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("convert %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cwebp encodes a PNG with libwebp's cwebp, or skips when cwebp is missing
// (and CI is not set).
func cwebp(t *testing.T, src []byte, args ...string) []byte {
	t.Helper()
	path := needTool(t, "cwebp")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.png"), filepath.Join(dir, "out.webp")
	if err := os.WriteFile(in, src, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, append(append([]string{"-quiet"}, args...), in, "-o", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cwebp %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// DecodedBytes, read from the header, is at least what decoding allocates
// in all (garbage included), for every format and layout the decoders take
// that costs more than its model: 16-bit TIFF, progressive and CMYK JPEG,
// interlaced PNG, lossless WebP.
// (Under the race detector, where sync.Pool drops items at random and
// decompressors are not reused, it only logs the measurements.)
func TestDecodedBytesCoversDecode(t *testing.T) {
	const w, h = 640, 480
	n16 := noise(w, h)
	n8 := to8(n16)
	src := encode(t, func(b *bytes.Buffer) error { return png.Encode(b, n8) })
	webp, err := EncodeWebP(n8)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		body func(t *testing.T) []byte
	}{
		{"png rgba", func(*testing.T) []byte { return src }},
		{"png 16-bit", func(t *testing.T) []byte { return encode(t, func(b *bytes.Buffer) error { return png.Encode(b, n16) }) }},
		{"png paletted", func(t *testing.T) []byte {
			return encode(t, func(b *bytes.Buffer) error { return png.Encode(b, toPaletted(n8)) })
		}},
		{"png gray16", func(t *testing.T) []byte {
			return encode(t, func(b *bytes.Buffer) error { return png.Encode(b, toGray16(n16)) })
		}},
		{"png interlaced", func(t *testing.T) []byte { return magick(t, src, "png", "-interlace", "PNG") }},
		{"png interlaced 16-bit", func(t *testing.T) []byte {
			return magick(t, encode(t, func(b *bytes.Buffer) error { return png.Encode(b, n16) }), "png", "-interlace", "PNG", "-depth", "16")
		}},
		{"jpeg baseline", func(t *testing.T) []byte {
			return encode(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, n8, nil) })
		}},
		{"jpeg progressive 4:4:4", func(t *testing.T) []byte {
			return magick(t, src, "jpg", "-interlace", "JPEG", "-sampling-factor", "1x1")
		}},
		{"jpeg cmyk", func(t *testing.T) []byte { return magick(t, src, "jpg", "-colorspace", "CMYK") }},
		{"jpeg progressive cmyk", func(t *testing.T) []byte {
			return magick(t, src, "jpg", "-colorspace", "CMYK", "-interlace", "JPEG")
		}},
		{"jpeg gray", func(t *testing.T) []byte { return magick(t, src, "jpg", "-colorspace", "Gray") }},
		{"jpeg 4:2:2", func(t *testing.T) []byte { return magick(t, src, "jpg", "-sampling-factor", "2x1") }},
		{"jpeg progressive 4:2:0", func(t *testing.T) []byte {
			return magick(t, src, "jpg", "-interlace", "JPEG", "-sampling-factor", "2x2")
		}},
		{"gif", func(t *testing.T) []byte {
			return encode(t, func(b *bytes.Buffer) error { return gif.Encode(b, n8, nil) })
		}},
		{"bmp", func(t *testing.T) []byte { return encode(t, func(b *bytes.Buffer) error { return bmp.Encode(b, n8) }) }},
		{"webp lossless", func(*testing.T) []byte { return webp }},
		{"webp lossy (cwebp)", func(t *testing.T) []byte { return cwebp(t, src, "-q", "80") }},
		{"webp lossy with alpha (cwebp)", func(t *testing.T) []byte {
			alpha := to8(n16)
			for i := 3; i < len(alpha.Pix); i += 4 {
				alpha.Pix[i] = uint8(i / 4 % 251)
			}
			return cwebp(t, encode(t, func(b *bytes.Buffer) error { return png.Encode(b, alpha) }), "-q", "80")
		}},
		{"webp lossless flat (a bomb's layout)", func(t *testing.T) []byte {
			b, err := EncodeWebP(image.NewNRGBA(image.Rect(0, 0, 2000, 1500)))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"tiff 16-bit deflate", func(t *testing.T) []byte {
			return encode(t, func(b *bytes.Buffer) error {
				return tiff.Encode(b, n16, &tiff.Options{Compression: tiff.Deflate})
			})
		}},
		{"tiff 16-bit raw", func(t *testing.T) []byte {
			return encode(t, func(b *bytes.Buffer) error { return tiff.Encode(b, n16, nil) })
		}},
		{"tiff 8-bit lzw", func(t *testing.T) []byte { return magick(t, src, "tif", "-compress", "LZW") }},
		{"tiff 16-bit zip (ImageMagick)", func(t *testing.T) []byte {
			return magick(t, encode(t, func(b *bytes.Buffer) error { return png.Encode(b, n16) }), "tif", "-depth", "16", "-compress", "Zip")
		}},
		{"tiff 16-bit gray", func(t *testing.T) []byte {
			return encode(t, func(b *bytes.Buffer) error {
				return tiff.Encode(b, toGray16(n16), &tiff.Options{Compression: tiff.Deflate})
			})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.body(t)
			format := Sniff(b)
			c := Codecs[format]
			cfg, err := c.Config(b)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			denoms := []int{1}
			if format == JPEG || format == WebP {
				denoms = []int{1, 2, 4, 8}
			}
			for _, denom := range denoms {
				est := DecodedBytesScaled(b, format, cfg, denom)
				var derr error
				got := allocated(func() { _, derr = DecodeScaled(b, format, denom) })
				if derr != nil {
					t.Fatalf("decode %s at 1/%d: %v", format, denom, derr)
				}
				px := float64(cfg.Width * cfg.Height)
				t.Logf("%s %dx%d %T at 1/%d: estimate %.2f B/px, allocated %.2f B/px", format, cfg.Width, cfg.Height, cfg.ColorModel,
					denom, float64(est)/px, float64(got)/px)
				if raceEnabled {
					continue
				}
				if uint64(est) < got {
					t.Errorf("1/%d: estimate %d bytes < %d allocated by decoding", denom, est, got)
				}
				if est > 4*int64(got)+1<<20 {
					t.Errorf("1/%d: estimate %d bytes is over 4× the %d allocated: it refuses images that fit", denom, est, got)
				}
			}
			if est := DecodedBytes(b, format, cfg); est != DecodedBytesScaled(b, format, cfg, 1) {
				t.Errorf("DecodedBytes %d differs from DecodedBytesScaled at 1/1", est)
			}
		})
	}
}

var _ = color.RGBAModel
