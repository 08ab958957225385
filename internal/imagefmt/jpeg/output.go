package jpeg

import "image"

// This file turns the decoded component planes into the image djpeg
// (libjpeg-turbo 2.1, default options) writes: chroma upsampled as
// jdsample.c does, then the colour space converted as jdcolor.c (and, for
// CMYK, djpeg's wrppm.c) does.
//
// Derived from libjpeg-turbo; see LICENSE-libjpeg-turbo.md and README.ijg.

// Colour spaces, chosen as libjpeg's default_decompress_parms (jdapimin.c)
// guesses them.
const (
	csGray = iota
	csYCbCr
	csRGB
	csCMYK
	csYCCK
)

func (d *decoder) colorSpace() int {
	switch d.nComp {
	case 1:
		return csGray
	case 3:
		switch {
		case d.jfif:
			return csYCbCr
		case d.adobeTransformValid:
			if d.adobeTransform == adobeTransformUnknown {
				return csRGB
			}
			return csYCbCr
		case d.comp[0].c == 'R' && d.comp[1].c == 'G' && d.comp[2].c == 'B':
			return csRGB
		}
		return csYCbCr
	}
	if d.adobeTransformValid && d.adobeTransform == adobeTransformUnknown || !d.adobeTransformValid {
		return csCMYK
	}
	return csYCCK
}

// upsampler produces one component's full-resolution rows.
type upsampler struct {
	plane      []byte
	stride     int
	w, h       int // the component's samples (libjpeg's downsampled_width, _height)
	hexp, vexp int // integral expansion factors
	fancyH     bool
	fancyV     bool
	row        []byte // output buffer; nil for a full-size component
	colsum     []int32
}

func (d *decoder) newUpsampler(i int) (*upsampler, error) {
	minSS := 8 / d.scale
	maxH, maxV := d.comp[0].h, d.comp[0].v
	h, v, ss := d.comp[i].h, d.comp[i].v, d.ss[i]
	u := &upsampler{
		plane:  d.plane[i],
		stride: d.stride[i],
		w:      (d.width*h*ss + maxH*8 - 1) / (maxH * 8),
		h:      (d.height*v*ss + maxV*8 - 1) / (maxV * 8),
	}
	hIn, vIn := h*ss/minSS, v*ss/minSS
	if hIn == 0 || vIn == 0 || maxH%hIn != 0 || maxV%vIn != 0 {
		return nil, errUnsupportedSubsamplingRatio
	}
	u.hexp, u.vexp = maxH/hIn, maxV/vIn
	fancy := minSS > 1 // jdsample.c: no context rows when min_DCT_scaled_size is 1
	switch {
	case u.hexp == 1 && u.vexp == 1:
		return u, nil
	case u.hexp == 2 && u.vexp == 1:
		u.fancyH = fancy && u.w > 2
	case u.hexp == 1 && u.vexp == 2:
		u.fancyV = fancy
	case u.hexp == 2 && u.vexp == 2:
		u.fancyH = fancy && u.w > 2
		u.fancyV = u.fancyH
	}
	u.row = make([]byte, u.w*u.hexp+8)
	if u.fancyV {
		u.colsum = make([]int32, u.w)
	}
	return u, nil
}

// rowAt returns the component's samples for output row y, at least the
// output width of them.
func (u *upsampler) rowAt(y int) []byte {
	if u.row == nil {
		return u.plane[y*u.stride:]
	}
	cy := y / u.vexp
	near := u.plane[cy*u.stride : cy*u.stride+u.w]
	switch {
	case u.fancyH && u.fancyV: // h2v2_fancy_upsample
		far := u.plane[u.farRow(y, cy)*u.stride:]
		cs := u.colsum
		for x := range cs {
			cs[x] = 3*int32(near[x]) + int32(far[x])
		}
		out, n := u.row, len(cs)
		out[0] = uint8((cs[0]*4 + 8) >> 4)
		out[1] = uint8((cs[0]*3 + cs[1] + 7) >> 4)
		for c := 1; c < n-1; c++ {
			out[2*c] = uint8((cs[c]*3 + cs[c-1] + 8) >> 4)
			out[2*c+1] = uint8((cs[c]*3 + cs[c+1] + 7) >> 4)
		}
		out[2*n-2] = uint8((cs[n-1]*3 + cs[n-2] + 8) >> 4)
		out[2*n-1] = uint8((cs[n-1]*4 + 7) >> 4)
	case u.fancyH: // h2v1_fancy_upsample
		out, n := u.row, len(near)
		out[0] = near[0]
		out[1] = uint8((int32(near[0])*3 + int32(near[1]) + 2) >> 2)
		for c := 1; c < n-1; c++ {
			v := int32(near[c]) * 3
			out[2*c] = uint8((v + int32(near[c-1]) + 1) >> 2)
			out[2*c+1] = uint8((v + int32(near[c+1]) + 2) >> 2)
		}
		out[2*n-2] = uint8((int32(near[n-1])*3 + int32(near[n-2]) + 1) >> 2)
		out[2*n-1] = near[n-1]
	case u.fancyV: // h1v2_fancy_upsample
		far := u.plane[u.farRow(y, cy)*u.stride:]
		bias := int32(1) // the farther row is above
		if y%2 == 1 {
			bias = 2
		}
		for x, v := range near {
			u.row[x] = uint8((3*int32(v) + int32(far[x]) + bias) >> 2)
		}
	default: // h2v1_upsample, h2v2_upsample, int_upsample: replication
		out := u.row
		for x, v := range near {
			for k := 0; k < u.hexp; k++ {
				out[x*u.hexp+k] = v
			}
		}
	}
	return u.row
}

// farRow is the chroma row a fancy vertical filter blends with row cy for
// output row y: the one above for an even y, below for an odd one, the
// edge row itself at the top and bottom (jdmainct.c's context rows).
func (u *upsampler) farRow(y, cy int) int {
	if y%2 == 0 {
		return max(cy-1, 0)
	}
	return min(cy+1, u.h-1)
}

// YCbCr → RGB tables of jdcolor.c's build_ycc_rgb_table (SCALEBITS 16).
var crR, cbB, crG, cbG = func() (crR, cbB, crG, cbG [256]int32) {
	const half = 1 << 15
	for i := range 256 {
		x := int64(i - 128)
		crR[i] = int32((91881*x + half) >> 16)
		cbB[i] = int32((116130*x + half) >> 16)
		crG[i] = int32(-46802 * x)
		cbG[i] = int32(-22554*x + half)
	}
	return
}()

func clamp8(v int32) uint8 {
	if uint32(v) <= 255 {
		return uint8(v)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// output builds the decoded image from the planes.
func (d *decoder) output() (image.Image, error) {
	minSS := 8 / d.scale
	outW := (d.width*minSS + 7) / 8
	outH := (d.height*minSS + 7) / 8
	cs := d.colorSpace()
	if cs == csGray {
		g := &image.Gray{Pix: d.plane[0], Stride: d.stride[0], Rect: image.Rect(0, 0, d.stride[0], len(d.plane[0])/d.stride[0])}
		return g.SubImage(image.Rect(0, 0, outW, outH)), nil
	}
	var ups [maxComponents]*upsampler
	for i := 0; i < d.nComp; i++ {
		u, err := d.newUpsampler(i)
		if err != nil {
			return nil, err
		}
		ups[i] = u
	}
	img := image.NewRGBA(image.Rect(0, 0, outW, outH))
	for y := 0; y < outH; y++ {
		dst := img.Pix[y*img.Stride : y*img.Stride+4*outW]
		c0 := ups[0].rowAt(y)[:outW]
		c1 := ups[1].rowAt(y)[:outW]
		c2 := ups[2].rowAt(y)[:outW]
		switch cs {
		case csYCbCr:
			for x := range c0 {
				yy, cb, cr := int32(c0[x]), c1[x], c2[x]
				p := dst[4*x : 4*x+4 : 4*x+4]
				p[0] = clamp8(yy + crR[cr])
				p[1] = clamp8(yy + (cbG[cb]+crG[cr])>>16)
				p[2] = clamp8(yy + cbB[cb])
				p[3] = 0xff
			}
		case csRGB:
			for x := range c0 {
				p := dst[4*x : 4*x+4 : 4*x+4]
				p[0], p[1], p[2], p[3] = c0[x], c1[x], c2[x], 0xff
			}
		default: // CMYK, YCCK: djpeg's cmyk_to_rgb of the (Adobe, inverted) samples
			c3 := ups[3].rowAt(y)[:outW]
			for x := range c0 {
				c, m, ye, k := int32(c0[x]), int32(c1[x]), int32(c2[x]), int32(c3[x])
				if cs == csYCCK { // ycck_cmyk_convert
					yy, cb, cr := c, c1[x], c2[x]
					c = int32(clamp8(255 - (yy + crR[cr])))
					m = int32(clamp8(255 - (yy + (cbG[cb]+crG[cr])>>16)))
					ye = int32(clamp8(255 - (yy + cbB[cb])))
				}
				p := dst[4*x : 4*x+4 : 4*x+4]
				p[0], p[1], p[2], p[3] = mulDiv255(c, k), mulDiv255(m, k), mulDiv255(ye, k), 0xff
			}
		}
	}
	return img, nil
}

// mulDiv255 is cmyk.h's (JSAMPLE)((double)a * (double)b / 255.0 + 0.5):
// a·b/255 rounded half up, exactly, in integers.
func mulDiv255(a, b int32) uint8 { return uint8((2*a*b + 255) / 510) }
