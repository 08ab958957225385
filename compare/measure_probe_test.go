package compare

import (
	"math"
	"testing"
)

func TestProbeMeasures(t *testing.T) {
	for _, tc := range corpus(t) {
		lf, nf := sniffImage(tc.legacy.Body), sniffImage(tc.new.Body)
		if lf == "" || nf == "" {
			continue
		}
		l, n := readHeader(tc.legacy.Body, lf), readHeader(tc.new.Body, nf)
		if l.err != nil || n.err != nil {
			continue
		}
		l.decode(tc.legacy.Body)
		n.decode(tc.new.Body)
		if l.err != nil || n.err != nil {
			continue
		}
		lb := l.img.Bounds()
		w, h := fit((lb.Dx()+1)/2, (lb.Dy()+1)/2, imageCompareSide)
		a, b := reduce(l.img, w, h), reduce(n.img, w, h)
		m := measureReduced(a, b)
		px := meanDeltaE(a, b, 1, nil)
		glob := meanDeltaE(a, b, max(w, h), nil)
		t4 := meanDeltaE(a, b, 4, nil)
		t16 := meanDeltaE(a, b, 16, nil)
		_ = math.Inf
		t.Logf("%-44s %-8s psnr %6.2f ssim %.4f dE8 %5.2f dEpx %5.2f dEglob %5.2f dE4 %5.2f dE16 %5.2f %s", tc.name, tc.want, m.psnr, m.ssim, m.deltaE, px, glob, t4, t16, m.shiftString())
	}
}
