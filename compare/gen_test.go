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

// encWebP encodes img as lossless WebP (VP8L). To stay small, the encoder
// uses only "simple" prefix codes, so each channel of img may take at most
// two distinct values; it fails the test otherwise.
func encWebP(t testing.TB, img *image.NRGBA) []byte {
	t.Helper()
	b := img.Bounds()
	// The (at most two) values of each channel, in ARGB order of the codes:
	// green, red, blue, alpha.
	order := [4]int{1, 0, 2, 3} // offsets into NRGBA pixels
	var vals [4][]uint8
	for c, off := range order {
		for i := off; i < len(img.Pix); i += 4 {
			v := img.Pix[i]
			if len(vals[c]) > 0 && vals[c][0] == v || len(vals[c]) > 1 && vals[c][1] == v {
				continue
			}
			if len(vals[c]) == 2 {
				t.Fatalf("encWebP: channel %d has more than two values", off)
			}
			vals[c] = append(vals[c], v)
		}
	}
	var w bitWriter
	w.write(0x2f, 8)
	w.write(uint32(b.Dx()-1), 14)
	w.write(uint32(b.Dy()-1), 14)
	w.write(1, 1) // alpha hint
	w.write(0, 3) // version
	w.write(0, 1) // no transform
	w.write(0, 1) // no colour cache
	w.write(0, 1) // no meta prefix codes
	for _, vs := range vals {
		w.write(1, 1) // simple code
		w.write(uint32(len(vs)-1), 1)
		w.write(1, 1) // first symbol has 8 bits
		w.write(uint32(vs[0]), 8)
		if len(vs) == 2 {
			w.write(uint32(vs[1]), 8)
		}
	}
	w.write(1, 1) // distance code: simple, one symbol, 1 bit: 0
	w.write(0, 1)
	w.write(0, 1)
	w.write(0, 1)
	for i := 0; i < len(img.Pix); i += 4 {
		for c, off := range order {
			if len(vals[c]) == 2 {
				if img.Pix[i+off] == vals[c][0] {
					w.write(0, 1)
				} else {
					w.write(1, 1)
				}
			}
		}
	}
	payload := w.bytes()
	var out []byte
	out = append(out, "RIFF"...)
	pad := len(payload) & 1
	out = binary.LittleEndian.AppendUint32(out, uint32(4+8+len(payload)+pad))
	out = append(out, "WEBPVP8L"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(payload)))
	out = append(out, payload...)
	if pad == 1 {
		out = append(out, 0)
	}
	return out
}

// bitWriter writes bits least significant first, as VP8L reads them.
type bitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) write(v uint32, n uint) {
	w.acc |= uint64(v) << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.nbits > 0 {
		return append(w.buf, byte(w.acc))
	}
	return w.buf
}

// checkerboard returns a w×h two-colour checkerboard of 8-pixel squares.
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
