package compare

import (
	"image"
	"math"
)

// deltaETile is the side, in reduced pixels, of the tiles whose mean
// colours are compared by meanDeltaE. See image.go for the measurements it
// was chosen from.
const deltaETile = 16

// lab is a CIELAB colour (D65 white, 2° observer).
type lab struct{ l, a, b float64 }

// srgbToLinear maps an 8-bit sRGB level to linear light in 0..1 (IEC
// 61966-2-1). It is computed once and never written.
var srgbToLinear = func() (t [256]float64) {
	for i := range t {
		c := float64(i) / 255
		if c <= 0.04045 {
			t[i] = c / 12.92
		} else {
			t[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return t
}()

// labFromLinear converts linear-light sRGB (0..1) to CIELAB: sRGB → XYZ with
// the IEC 61966-2-1 matrix, then CIE 1976 L*a*b* relative to D65.
func labFromLinear(r, g, b float64) lab {
	x := (0.4124564*r + 0.3575761*g + 0.1804375*b) / 0.95047
	y := 0.2126729*r + 0.7151522*g + 0.0721750*b
	z := (0.0193339*r + 0.1191920*g + 0.9503041*b) / 1.08883
	fx, fy, fz := labF(x), labF(y), labF(z)
	return lab{116*fy - 16, 500 * (fx - fy), 200 * (fy - fz)}
}

func labF(t float64) float64 {
	const e = 6.0 / 29
	if t > e*e*e {
		return math.Cbrt(t)
	}
	return t/(3*e*e) + 4.0/29
}

// ciede2000 returns the CIEDE2000 colour difference ΔE00 between two CIELAB
// colours, with kL = kC = kH = 1 (Sharma, Wu and Dalal 2005, eqs. 1–22).
func ciede2000(c1, c2 lab) float64 {
	const deg = math.Pi / 180
	const pow25to7 = 6103515625.0 // 25⁷
	cab1, cab2 := math.Hypot(c1.a, c1.b), math.Hypot(c2.a, c2.b)
	cbar := (cab1 + cab2) / 2
	cbar7 := math.Pow(cbar, 7)
	g := 0.5 * (1 - math.Sqrt(cbar7/(cbar7+pow25to7)))
	a1, a2 := (1+g)*c1.a, (1+g)*c2.a
	cp1, cp2 := math.Hypot(a1, c1.b), math.Hypot(a2, c2.b)
	// Hue angles in degrees. Test pairs 10 and 14 of Sharma's data are
	// exactly antipodal (|h′1 − h′2| = 180°), where rounding picks the
	// branch of h̄′: computed as (atan2 × 180) / π, as here, every one of the
	// 34 pairs takes the published branch.
	hue := func(b, a float64) float64 {
		if a == 0 && b == 0 {
			return 0
		}
		h := math.Atan2(b, a) * 180 / math.Pi
		if h < 0 {
			h += 360
		}
		return h
	}
	hp1, hp2 := hue(c1.b, a1), hue(c2.b, a2)
	dL, dC := c2.l-c1.l, cp2-cp1
	var dh float64
	if cp1*cp2 != 0 {
		dh = hp2 - hp1
		switch {
		case dh > 180:
			dh -= 360
		case dh < -180:
			dh += 360
		}
	}
	dH := 2 * math.Sqrt(cp1*cp2) * math.Sin(dh/2*deg)
	lbar, cpbar := (c1.l+c2.l)/2, (cp1+cp2)/2
	hbar := hp1 + hp2
	if cp1*cp2 != 0 {
		switch {
		case math.Abs(hp1-hp2) <= 180:
			hbar /= 2
		case hbar < 360:
			hbar = (hbar + 360) / 2
		default:
			hbar = (hbar - 360) / 2
		}
	}
	t := 1 - 0.17*math.Cos((hbar-30)*deg) + 0.24*math.Cos(2*hbar*deg) +
		0.32*math.Cos((3*hbar+6)*deg) - 0.20*math.Cos((4*hbar-63)*deg)
	dtheta := 30 * math.Exp(-((hbar-275)/25)*((hbar-275)/25))
	cpbar7 := math.Pow(cpbar, 7)
	rc := 2 * math.Sqrt(cpbar7/(cpbar7+pow25to7))
	l50 := (lbar - 50) * (lbar - 50)
	sl := 1 + 0.015*l50/math.Sqrt(20+l50)
	sc := 1 + 0.045*cpbar
	sh := 1 + 0.015*cpbar*t
	rt := -math.Sin(2*dtheta*deg) * rc
	fl, fc, fh := dL/sl, dC/sc, dH/sh
	return math.Sqrt(fl*fl + fc*fc + fh*fh + rt*fc*fh)
}

// colourSum accumulates one side's colour over a tile: alpha-weighted
// linear-light R, G, B of the straight (unpremultiplied) colour, and the
// alpha.
type colourSum struct{ r, g, b, a float64 }

// add accumulates the pixels of p, premultiplied RGBA.
func (s *colourSum) add(p []uint8) {
	var r, g, b, wa float64        // weighted by alpha
	var opR, opG, opB, opN float64 // opaque pixels, their weight 255 applied once
	for i := 0; i+3 < len(p); i += 4 {
		switch a := p[i+3]; a {
		case 0xff:
			opR += srgbToLinear[p[i]]
			opG += srgbToLinear[p[i+1]]
			opB += srgbToLinear[p[i+2]]
			opN++
		case 0:
		default:
			w := float64(a)
			r += w * srgbToLinear[unpremul(p[i], a)]
			g += w * srgbToLinear[unpremul(p[i+1], a)]
			b += w * srgbToLinear[unpremul(p[i+2], a)]
			wa += w
		}
	}
	s.r += r + 255*opR
	s.g += g + 255*opG
	s.b += b + 255*opB
	s.a += wa + 255*opN
}

func unpremul(c, a uint8) uint8 {
	return uint8(min(255, (uint32(c)*255+uint32(a)/2)/uint32(a)))
}

func (s *colourSum) lab() lab { return labFromLinear(s.r/s.a, s.g/s.a, s.b/s.a) }

// meanDeltaE returns the mean CIEDE2000 difference between the tiles' mean
// colours of two premultiplied RGBA images of the same size at the origin
// (as reduce makes them), cut into tile×tile squares (smaller at the right
// and bottom edges).
//
// A tile's colour is the mean, in linear light, of its pixels' straight
// colours weighted by their alpha (light mixes linearly: it is the colour
// the tile shows from afar), so the colour under transparent pixels does
// not count; the tile's difference is weighted by the smaller of the two
// sides' alpha sums, so colour is compared where both sides show it
// (whether one side is transparent is $.image.alpha's finding). Averaging
// within a tile cancels the per-pixel noise of resampling and re-encoding,
// which a mean of per-pixel ΔE00 counts as colour; a colour shift in one
// region, or hues swapped between regions, still shows, which one ΔE00 of
// the images' mean colours would average away. When tiles is not nil, each
// tile's difference is also recorded there (tiles.size must equal tile).
// It allocates nothing for images up to 64 tiles wide.
func meanDeltaE(a, b *image.RGBA, tile int, tiles *tileSums) float64 {
	w, h := a.Rect.Dx(), a.Rect.Dy()
	tile = max(1, tile)
	ncols := (w + tile - 1) / tile
	var stack [2 * 64]colourSum
	var sums []colourSum
	if 2*ncols <= len(stack) {
		sums = stack[:2*ncols]
	} else {
		sums = make([]colourSum, 2*ncols)
	}
	sa, sb := sums[:ncols], sums[ncols:]
	var total, weight float64
	for y0 := 0; y0 < h; y0 += tile {
		clear(sums)
		for y := y0; y < min(h, y0+tile); y++ {
			pa, pb := a.Pix[y*a.Stride:y*a.Stride+4*w], b.Pix[y*b.Stride:y*b.Stride+4*w]
			for t := range sa {
				x0, x1 := 4*t*tile, 4*min(w, (t+1)*tile)
				sa[t].add(pa[x0:x1])
				sb[t].add(pb[x0:x1])
			}
		}
		for t := range sa {
			wt := math.Min(sa[t].a, sb[t].a)
			if wt == 0 {
				continue
			}
			d := ciede2000(sa[t].lab(), sb[t].lab())
			total += d * wt
			weight += wt
			if tiles != nil {
				tiles.add(t*tile, y0, d, 1)
			}
		}
	}
	if weight == 0 {
		return 0
	}
	return total / weight
}
