package compare

import (
	"fmt"
	"image"
	"math"
)

// metrics are the pixel measurements of one image pair, made on the reduced
// images (see measure).
type metrics struct {
	psnr   float64    // dB over R, G, B (and A when either side uses it); +Inf when identical
	ssim   float64    // mean SSIM of the luma, 1 when identical
	deltaE float64    // mean CIEDE2000 of the colour tiles, 0 when identical
	shift  [3]float64 // mean new − legacy of premultiplied R, G, B, in 0..255 levels
	alpha  [2]bool    // whether legacy, new use transparency
}

func (m metrics) maxAbsShift() float64 {
	return math.Max(math.Abs(m.shift[0]), math.Max(math.Abs(m.shift[1]), math.Abs(m.shift[2])))
}

// shiftString is the New value of $.image.mean_shift: the colour difference
// judged, then the per-channel mean shift that shows its direction.
func (m metrics) shiftString() string {
	return fmt.Sprintf("ΔE00 %.2f (R%+.2f G%+.2f B%+.2f)", m.deltaE, m.shift[0], m.shift[1], m.shift[2])
}

// alphaUsedBelow is the alpha level (0..255) under which a reduced pixel
// counts as meaningfully transparent.
const alphaUsedBelow = 248

// measure reduces both images to a common size and measures them.
func measure(l, n image.Image) metrics {
	lb := l.Bounds()
	w, h := fit((lb.Dx()+1)/2, (lb.Dy()+1)/2, imageCompareSide)
	return measureReduced(reduce(l, w, h), reduce(n, w, h))
}

// measureReduced measures two premultiplied RGBA images of the same size.
// It allocates nothing.
func measureReduced(a, b *image.RGBA) metrics {
	var m metrics
	m.alpha = [2]bool{usesAlpha(a), usesAlpha(b)}
	channels := 3
	if m.alpha[0] || m.alpha[1] {
		channels = 4
	}
	var sq int64
	var sum [3]int64
	for i := 0; i < len(a.Pix); i += 4 {
		for ch := 0; ch < channels; ch++ {
			d := int64(b.Pix[i+ch]) - int64(a.Pix[i+ch])
			sq += d * d
			if ch < 3 {
				sum[ch] += d
			}
		}
	}
	w, h := a.Rect.Dx(), a.Rect.Dy()
	px := float64(w * h)
	for ch := range sum {
		m.shift[ch] = float64(sum[ch]) / px
	}
	if mse := float64(sq) / (px * float64(channels)); mse == 0 {
		m.psnr = math.Inf(1)
	} else {
		m.psnr = 10 * math.Log10(255*255/mse)
	}
	m.ssim = ssim(a, b, ssimWindow, nil)
	m.deltaE = meanDeltaE(a, b, deltaETile, nil)
	return m
}

// usesAlpha reports whether any pixel of img is meaningfully transparent.
func usesAlpha(img *image.RGBA) bool {
	for i := 3; i < len(img.Pix); i += 4 {
		if img.Pix[i] < alphaUsedBelow {
			return true
		}
	}
	return false
}
