package imagefmt

import (
	"bytes"
	"fmt"
	"image"

	"golang.org/x/image/webp"
)

// decodeWebP decodes a WebP file to the pixels libwebp's dwebp writes.
//
// golang.org/x/image/webp decodes lossy (VP8) files to their Y'CbCr planes
// and returns them as *image.YCbCr or, with alpha, *image.NYCbCrA, which Go
// converts to RGB with the JFIF full-range formulas and nearest-neighbour
// chroma. VP8 is BT.601 limited range (Y in 16..235) and libwebp
// upsamples its 4:2:0 chroma with a bilinear ("fancy") filter, so those
// colours are off by up to several levels (R of a typical photo reads about
// 4 levels too bright). A lossy file is therefore converted here to
// non-premultiplied RGBA exactly as libwebp does by default (yuvToNRGBA):
// an *image.NRGBA with alpha, an (opaque) *image.RGBA without. Lossless
// (VP8L) files decode to *image.NRGBA already.
func decodeWebP(b []byte) (image.Image, error) {
	m, err := webp.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	switch m := m.(type) {
	case *image.YCbCr:
		// Opaque: the same bytes are premultiplied RGBA, which readers
		// take without converting.
		n := yuvToNRGBA(m, nil, 0)
		return &image.RGBA{Pix: n.Pix, Stride: n.Stride, Rect: n.Rect}, nil
	case *image.NYCbCrA:
		return yuvToNRGBA(&m.YCbCr, m.A, m.AStride), nil
	case *image.NRGBA:
		return m, nil
	}
	return nil, fmt.Errorf("webp: unexpected decoded image %T", m)
}

// yuvToNRGBA converts VP8's 4:2:0 planes (and an alpha plane, nil for
// opaque) to NRGBA as libwebp 1.x does for its default output: chroma
// upsampled by UpsampleRgbaLinePair (src/dsp/upsampling.c, the "fancy"
// upsampler: each output sample is (9·near + 3·side + 3·other row + 1·far
// diagonal)/16, computed in two rounded steps, with the first and last
// rows and columns mirrored as EmitFancyRGB in src/dec/io_dec.c pairs
// them), then VP8YUVToR/G/B (src/dsp/yuv.h: 14-bit fixed point with
// _mm_mulhi_epu16 semantics). Alpha is copied unchanged, as dwebp writes
// RGBA: not premultiplied.
func yuvToNRGBA(m *image.YCbCr, alpha []byte, astride int) *image.NRGBA {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	c := newYUVConverter(m, alpha, astride)
	for r := 0; r < h; r++ {
		c.row(r, out.Pix[r*out.Stride:r*out.Stride+4*w])
	}
	return out
}

// yuvConverter converts one row of VP8 planes at a time (yuvToNRGBA).
type yuvConverter struct {
	m          *image.YCbCr
	alpha      []byte
	astride    int
	uvw, crows int
	y0, c0     int
	u, v       []uint8 // one output row's upsampled chroma
}

func newYUVConverter(m *image.YCbCr, alpha []byte, astride int) *yuvConverter {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	return &yuvConverter{
		m: m, alpha: alpha, astride: astride,
		uvw: (w + 1) / 2, crows: (h + 1) / 2,
		y0: m.YOffset(m.Rect.Min.X, m.Rect.Min.Y), c0: m.COffset(m.Rect.Min.X, m.Rect.Min.Y),
		u: make([]uint8, w), v: make([]uint8, w),
	}
}

// row writes row r as NRGBA into dst (4 bytes a pixel, the image's width).
func (c *yuvConverter) row(r int, dst []byte) {
	m, w := c.m, len(c.u)
	// The chroma row nearest to luma row r, and the other one it is
	// interpolated with (the same row at the picture's edges).
	near, far := r/2, r/2-1
	if r&1 == 1 {
		near, far = (r-1)/2, (r+1)/2
	}
	far = min(max(far, 0), c.crows-1)
	nrow, frow := c.c0+near*m.CStride, c.c0+far*m.CStride
	upsampleRow(c.u, m.Cb[nrow:nrow+c.uvw], m.Cb[frow:frow+c.uvw])
	upsampleRow(c.v, m.Cr[nrow:nrow+c.uvw], m.Cr[frow:frow+c.uvw])
	yrow := m.Y[c.y0+r*m.YStride : c.y0+r*m.YStride+w]
	dst = dst[:4*w]
	u, v := c.u[:w], c.v[:w]
	for x, yy := range yrow {
		d := dst[4*x : 4*x+4 : 4*x+4]
		yv, uu, vv := multHi(int(yy), 19077), int(u[x]), int(v[x])
		d[0] = vp8Clip8(yv + multHi(vv, 26149) - 14234)
		d[1] = vp8Clip8(yv - multHi(uu, 6419) - multHi(vv, 13320) + 8708)
		d[2] = vp8Clip8(yv + multHi(uu, 33050) - 17685)
		d[3] = 0xff
	}
	if c.alpha != nil {
		arow := c.alpha[r*c.astride : r*c.astride+w]
		for x, a := range arow {
			dst[4*x+3] = a
		}
	}
}

// upsampleRow writes len(dst) horizontally upsampled chroma samples of one
// output row from the nearer chroma row n and the farther one f, as
// libwebp's UPSAMPLE_FUNC does for one of its two output rows.
func upsampleRow(dst, n, f []uint8) {
	w := len(dst)
	dst[0] = uint8((3*uint32(n[0]) + uint32(f[0]) + 2) >> 2)
	last := (w - 1) >> 1
	for x := 1; x <= last; x++ {
		n0, n1, f0, f1 := uint32(n[x-1]), uint32(n[x]), uint32(f[x-1]), uint32(f[x])
		avg := n0 + n1 + f0 + f1 + 8
		dst[2*x-1] = uint8((((avg + 2*(n1+f0)) >> 3) + n0) >> 1)
		dst[2*x] = uint8((((avg + 2*(n0+f1)) >> 3) + n1) >> 1)
	}
	if w&1 == 0 {
		dst[w-1] = uint8((3*uint32(n[last]) + uint32(f[last]) + 2) >> 2)
	}
}

// multHi is libwebp's MultHi: (v·coeff) >> 8, the _mm_mulhi_epu16 of v<<8.
func multHi(v, coeff int) int { return (v * coeff) >> 8 }

// vp8Clip8 is libwebp's VP8Clip8: descale by 6 bits, clamped to 0..255.
func vp8Clip8(v int) uint8 {
	const mask = (256 << 6) - 1
	if v&^mask == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// decodeWebPScaled decodes a WebP file to the means of each denom×denom
// block of the pixels decodeWebP gives, premultiplied (*image.RGBA); a
// remainder of fewer than denom rows or columns is dropped. (dwebp has no
// scaled decoding: these are its pixels, box-filtered.) A lossy file is
// converted a row at a time, so its full-size RGBA never exists.
func decodeWebPScaled(b []byte, denom int) (*image.RGBA, error) {
	m, err := webp.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var row func(r int, dst []byte)
	switch m := m.(type) {
	case *image.YCbCr:
		row = newYUVConverter(m, nil, 0).row
	case *image.NYCbCrA:
		row = newYUVConverter(&m.YCbCr, m.A, m.AStride).row
	case *image.NRGBA:
		row = func(r int, dst []byte) { copy(dst, m.Pix[m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y+r):]) }
	default:
		return nil, fmt.Errorf("webp: unexpected decoded image %T", m)
	}
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	if w < denom || h < denom {
		return nil, fmt.Errorf("webp: %dx%d is too small for 1/%d", w, h, denom)
	}
	return boxPremultiplied(w, h, denom, row), nil
}

// boxPremultiplied averages each k×k block of a w×h NRGBA image, read a
// row at a time, into premultiplied RGBA: each pixel premultiplied and
// rounded ((v·a + 127) / 255, exact when opaque), the block's sums rounded
// to the nearest level.
func boxPremultiplied(w, h, k int, row func(r int, dst []byte)) *image.RGBA {
	ow, oh := w/k, h/k
	out := image.NewRGBA(image.Rect(0, 0, ow, oh))
	line := make([]byte, 4*w)
	sums := make([]uint32, 4*ow)
	n := uint32(k * k)
	for oy := 0; oy < oh; oy++ {
		clear(sums)
		for r := oy * k; r < oy*k+k; r++ {
			row(r, line)
			for ox := 0; ox < ow; ox++ {
				s := sums[4*ox : 4*ox+4 : 4*ox+4]
				block := line[4*ox*k : 4*(ox+1)*k]
				for i := 0; i < len(block); i += 4 {
					p := block[i : i+4 : i+4]
					if a := uint32(p[3]); a == 0xff {
						s[0] += uint32(p[0])
						s[1] += uint32(p[1])
						s[2] += uint32(p[2])
						s[3] += 0xff
					} else {
						s[0] += (uint32(p[0])*a + 127) / 255
						s[1] += (uint32(p[1])*a + 127) / 255
						s[2] += (uint32(p[2])*a + 127) / 255
						s[3] += a
					}
				}
			}
		}
		dst := out.Pix[oy*out.Stride : oy*out.Stride+4*ow]
		for i, v := range sums {
			dst[i] = uint8((v + n/2) / n)
		}
	}
	return out
}
