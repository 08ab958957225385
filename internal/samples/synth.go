package samples

import (
	"image"
	"image/color"
	"image/color/palette"
	"math"
	"math/rand/v2"

	"golang.org/x/image/draw"
)

// Synthetic, photo-like pictures: a sky-and-ground gradient, a sun, a few
// shapes and sensor grain, all drawn from a seeded generator so that the
// same seed gives the same pixels.

// scene describes what paint draws.
type scene struct {
	w, h   int
	shapes int  // number of shapes over the background
	grain  int  // ± amplitude of per-pixel noise, in levels
	flat   bool // one background colour instead of gradients (compresses well)
	// transparent leaves the background fully transparent; shapes then
	// carry alpha (opaque, half transparent, soft-edged).
	transparent bool
	// marker paints a pure red square in the top-left corner (and a blue
	// one in the bottom-right), so that orientation can be checked.
	marker bool
}

// shape is one ellipse or rectangle.
type shape struct {
	ellipse        bool
	cx, cy, rx, ry float64
	col            [3]float64
	alpha          float64 // 0..1
	soft           bool    // alpha falls off towards the edge
}

// paint draws s with randomness from r.
func paint(s scene, r *rand.Rand) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, s.w, s.h))
	w, h := float64(s.w), float64(s.h)
	sky0, sky1 := randColour(r, 90, 200), randColour(r, 150, 250)
	ground0, ground1 := randColour(r, 30, 140), randColour(r, 10, 90)
	horizon := h * (0.4 + 0.3*r.Float64())
	wave := 0.02 + 0.05*r.Float64() // horizon undulation, as a share of h
	sun := shape{ellipse: true, cx: w * r.Float64(), cy: horizon * 0.5 * r.Float64(),
		col: [3]float64{255, 240, 200}, alpha: 1, soft: true}
	sun.rx = math.Min(w, h) * (0.06 + 0.06*r.Float64())
	sun.ry = sun.rx
	shapes := make([]shape, s.shapes)
	for i := range shapes {
		sh := &shapes[i]
		sh.ellipse = r.IntN(2) == 0
		sh.cx, sh.cy = w*r.Float64(), h*(0.2+0.8*r.Float64())
		sh.rx, sh.ry = w*(0.05+0.2*r.Float64()), h*(0.05+0.2*r.Float64())
		sh.col = randColour(r, 0, 255)
		sh.alpha = 1
		if s.transparent {
			switch i % 3 {
			case 1:
				sh.alpha = 0.5
			case 2:
				sh.soft = true
			}
		}
	}
	if s.transparent {
		// The first shape anchors the picture in the middle, as a logo does.
		shapes = append([]shape{{ellipse: true, cx: w / 2, cy: h / 2, rx: w * 0.3, ry: h * 0.3,
			col: randColour(r, 40, 220), alpha: 1}}, shapes...)
	}
	flatCol := randColour(r, 60, 220)
	mark := math.Max(4, math.Round(math.Min(w, h)/6))
	horizons := make([]float64, s.w) // the horizon undulates along x
	for x := range horizons {
		horizons[x] = horizon + h*wave*math.Sin((float64(x)+0.5)/w*2*math.Pi*1.5)
	}
	span := uint64(2*s.grain + 1)
	for y := 0; y < s.h; y++ {
		fy := float64(y) + 0.5
		row := img.Pix[y*img.Stride : y*img.Stride+4*s.w]
		for x := 0; x < s.w; x++ {
			fx := float64(x) + 0.5
			var c [3]float64
			a := 1.0
			switch {
			case s.transparent:
				a = 0
			case s.flat:
				c = flatCol
			default:
				if hz := horizons[x]; fy < hz {
					c = mix(sky0, sky1, fy/hz)
				} else {
					c = mix(ground0, ground1, (fy-hz)/(h-hz))
				}
				if cov := sun.coverage(fx, fy); cov > 0 {
					c = mix(c, sun.col, cov)
				}
			}
			for i := range shapes {
				cov := shapes[i].coverage(fx, fy)
				if cov <= 0 {
					continue
				}
				// Porter-Duff "over" in straight alpha.
				oa := cov + a*(1-cov)
				for k := range c {
					c[k] = (shapes[i].col[k]*cov + c[k]*a*(1-cov)) / oa
				}
				a = oa
			}
			if s.marker {
				switch {
				case fx < mark && fy < mark:
					c, a = [3]float64{255, 0, 0}, 1
				case fx > w-mark && fy > h-mark:
					c, a = [3]float64{0, 0, 255}, 1
				}
			}
			if s.grain > 0 && a > 0 {
				// One draw gives the grain of all three channels.
				n := r.Uint64()
				for k := range c {
					c[k] += float64(int((n>>(16*k)&0xffff)%span) - s.grain)
				}
			}
			row[4*x] = clamp8(c[0])
			row[4*x+1] = clamp8(c[1])
			row[4*x+2] = clamp8(c[2])
			row[4*x+3] = clamp8(a * 255)
		}
	}
	return img
}

// coverage returns how much of the pixel centred on (x, y) sh covers,
// times its alpha, in 0..1.
func (sh *shape) coverage(x, y float64) float64 {
	if x <= sh.cx-sh.rx || x >= sh.cx+sh.rx || y <= sh.cy-sh.ry || y >= sh.cy+sh.ry {
		return 0
	}
	dx, dy := (x-sh.cx)/sh.rx, (y-sh.cy)/sh.ry
	var d float64 // 0 at the centre, 1 on the edge
	if sh.ellipse {
		d = math.Sqrt(dx*dx + dy*dy)
	} else {
		d = math.Max(math.Abs(dx), math.Abs(dy))
	}
	if d >= 1 {
		return 0
	}
	if sh.soft {
		return sh.alpha * (1 - d*d)
	}
	return sh.alpha
}

func randColour(r *rand.Rand, lo, hi int) [3]float64 {
	var c [3]float64
	for k := range c {
		c[k] = float64(lo + r.IntN(hi-lo+1))
	}
	return c
}

func mix(a, b [3]float64, t float64) [3]float64 {
	return [3]float64{a[0] + (b[0]-a[0])*t, a[1] + (b[1]-a[1])*t, a[2] + (b[2]-a[2])*t}
}

func clamp8(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// asRGBA views an opaque NRGBA image as RGBA (the same bytes when every
// pixel is opaque), which image/jpeg encodes on its fast path.
func asRGBA(m *image.NRGBA) *image.RGBA {
	return &image.RGBA{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}
}

// orientNRGBA returns m transformed as EXIF orientation o prescribes.
func orientNRGBA(m *image.NRGBA, o int) *image.NRGBA {
	r := orient(&image.RGBA{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}, o)
	return &image.NRGBA{Pix: r.Pix, Stride: r.Stride, Rect: r.Rect}
}

// animation returns frames of a ball bouncing over a gradient, dithered to
// the web-safe palette.
func animation(w, h, frames int, r *rand.Rand) []*image.Paletted {
	bg := paint(scene{w: w, h: h, shapes: 2}, r)
	ball := randColour(r, 0, 255)
	rad := float64(min(w, h)) / 6
	out := make([]*image.Paletted, frames)
	for i := range out {
		frame := image.NewNRGBA(bg.Rect)
		copy(frame.Pix, bg.Pix)
		t := float64(i) / float64(frames)
		cx := rad + (float64(w)-2*rad)*t
		cy := float64(h) - rad - (float64(h)-2*rad)*math.Abs(math.Sin(t*math.Pi))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
				if dx*dx+dy*dy < rad*rad {
					frame.SetNRGBA(x, y, color.NRGBA{clamp8(ball[0]), clamp8(ball[1]), clamp8(ball[2]), 255})
				}
			}
		}
		p := image.NewPaletted(bg.Rect, palette.WebSafe)
		draw.FloydSteinberg.Draw(p, p.Rect, frame, image.Point{})
		out[i] = p
	}
	return out
}
