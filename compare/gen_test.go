package compare

// Generators for the test corpus: synthetic images and the encodings and
// regressions applied to them. Everything is made here, deterministically.

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tandem-proxy/tandem/internal/imagefmt"
	"golang.org/x/image/draw"
)

// photo returns a photo-like w×h image: smooth gradients, a few soft-edged
// shapes of different colours, fine texture and grain.
func photo(w, h int, seed uint64) *image.NRGBA {
	rng := rand.New(rand.NewPCG(seed, 42))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	type blob struct {
		x, y, r float64
		c       [3]float64
	}
	blobs := make([]blob, 12)
	for i := range blobs {
		blobs[i] = blob{rng.Float64() * float64(w), rng.Float64() * float64(h),
			(0.05 + 0.2*rng.Float64()) * float64(min(w, h)),
			[3]float64{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			c := [3]float64{40 + 150*fx, 60 + 120*fy, 180 - 120*fx*fy}
			for _, b := range blobs {
				dx, dy := float64(x)-b.x, float64(y)-b.y
				if math.Abs(dx) > b.r || math.Abs(dy) > b.r {
					continue
				}
				d := math.Sqrt(dx*dx + dy*dy)
				if t := (b.r - d) / 3; t > 0 { // 3-pixel soft edge
					a := math.Min(1, t)
					for k := range c {
						c[k] = c[k]*(1-a) + b.c[k]*a
					}
				}
			}
			tex := 12 * math.Sin(float64(x)*0.35) * math.Cos(float64(y)*0.27) // fabric-like texture
			i := img.PixOffset(x, y)
			for k := range c {
				img.Pix[i+k] = clamp8(c[k] + tex + rng.NormFloat64()*4) // sensor grain
			}
			img.Pix[i+3] = 255
		}
	}
	return img
}

// noiseImage returns uniform random noise, the worst case for resamplers.
func noiseImage(w, h int, seed uint64) *image.NRGBA {
	rng := rand.New(rand.NewPCG(seed, 7))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	return img
}

// lanczos3 is the Lanczos filter with a = 3, the default of many
// thumbnailers (libvips, ImageMagick).
var lanczos3 = &draw.Kernel{Support: 3, At: func(t float64) float64 {
	switch {
	case t == 0:
		return 1
	case t >= 3:
		return 0
	}
	x := math.Pi * t
	return 3 * math.Sin(x) * math.Sin(x/3) / (x * x)
}}

func clamp8(v float64) uint8 {
	return uint8(math.Max(0, math.Min(255, math.Round(v))))
}

func resize(src image.Image, w, h int, s draw.Scaler) *image.NRGBA {
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	s.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	return dst
}

// shifted returns img with d added to R, G and B.
func shifted(img *image.NRGBA, d float64) *image.NRGBA {
	out := image.NewNRGBA(img.Rect)
	for i, v := range img.Pix {
		if i%4 == 3 {
			out.Pix[i] = v
		} else {
			out.Pix[i] = clamp8(float64(v) + d)
		}
	}
	return out
}

// rotated90 returns img turned a quarter clockwise.
func rotated90(img *image.NRGBA) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dy(), b.Dx()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			out.SetNRGBA(b.Dy()-1-y, x, img.NRGBAAt(x, y))
		}
	}
	return out
}

// cutout returns img made transparent outside an ellipse (a product shot
// with its background removed).
func cutout(img *image.NRGBA) *image.NRGBA {
	out := image.NewNRGBA(img.Rect)
	copy(out.Pix, img.Pix)
	w, h := float64(img.Rect.Dx()), float64(img.Rect.Dy())
	for y := 0; y < img.Rect.Dy(); y++ {
		for x := 0; x < img.Rect.Dx(); x++ {
			dx, dy := (float64(x)-w/2)/(w*0.4), (float64(y)-h/2)/(h*0.4)
			if dx*dx+dy*dy > 1 {
				out.Pix[out.PixOffset(x, y)+3] = 0
			}
		}
	}
	return out
}

// flattened composites img over black and drops alpha.
func flattened(img *image.NRGBA) *image.RGBA {
	out := image.NewRGBA(img.Rect)
	draw.Draw(out, out.Rect, image.NewUniform(color.Black), image.Point{}, draw.Src)
	draw.Draw(out, out.Rect, img, img.Rect.Min, draw.Over)
	return out
}

func encJPEG(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encPNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// encGIF encodes the first n frames of an animation of img sliding right.
func encGIF(t testing.TB, img image.Image, n int) []byte {
	t.Helper()
	anim := &gif.GIF{}
	b := img.Bounds()
	for i := 0; i < n; i++ {
		p := image.NewPaletted(b, palette.Plan9)
		draw.FloydSteinberg.Draw(p, b, img, b.Min.Add(image.Pt(i*4, 0)))
		anim.Image = append(anim.Image, p)
		anim.Delay = append(anim.Delay, 10)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, anim); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withTextChunk inserts a PNG tEXt chunk after IHDR (metadata only).
func withTextChunk(p []byte, key, value string) []byte {
	const ihdrEnd = 8 + 8 + 13 + 4 // signature, IHDR length+type, data, CRC
	data := append([]byte(key+"\x00"), value...)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, "tEXt"...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := append([]byte(nil), p[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, p[ihdrEnd:]...)
}

// withOrientation inserts an APP1 Exif segment holding IFD0 Orientation = o
// right after the JPEG's SOI marker. Big-endian when bigEndian, else little.
func withOrientation(j []byte, o uint16, bigEndian bool) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	tiff := []byte("II")
	if bigEndian {
		bo, tiff = binary.BigEndian, []byte("MM")
	}
	tiff = bo.AppendUint16(tiff, 42)
	tiff = bo.AppendUint32(tiff, 8) // IFD0 offset
	tiff = bo.AppendUint16(tiff, 2) // entries
	// An unrelated tag first (ImageWidth, LONG), then Orientation (SHORT).
	tiff = bo.AppendUint16(tiff, 0x0100)
	tiff = bo.AppendUint16(tiff, 4)
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint32(tiff, 640)
	tiff = bo.AppendUint16(tiff, 0x0112)
	tiff = bo.AppendUint16(tiff, 3)
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint16(tiff, o)
	tiff = bo.AppendUint16(tiff, 0)
	tiff = bo.AppendUint32(tiff, 0) // no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xFF, 0xE1}
	app1 = binary.BigEndian.AppendUint16(app1, uint16(len(seg)+2))
	app1 = append(app1, seg...)
	out := append([]byte(nil), j[:2]...)
	out = append(out, app1...)
	return append(out, j[2:]...)
}

// encWebP encodes img as lossless WebP (VP8L) with the shared encoder.
func encWebP(t testing.TB, img *image.NRGBA) []byte {
	t.Helper()
	b, err := imagefmt.EncodeWebP(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkerboard(w, h int, a, b color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if (x/8+y/8)%2 == 0 {
				img.SetNRGBA(x, y, a)
			} else {
				img.SetNRGBA(x, y, b)
			}
		}
	}
	return img
}

// resp builds a complete Response.
func resp(status int, body []byte, hdr ...string) Response {
	r := Response{Status: status}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header = append(r.Header, HeaderField{Name: hdr[i], Value: hdr[i+1]})
	}
	r.SetBody(body)
	return r
}
