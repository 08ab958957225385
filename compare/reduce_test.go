package compare

import (
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"golang.org/x/image/draw"
)

// randomRGBA is a w×h premultiplied RGBA image of random pixels, some of
// them transparent.
func randomRGBA(r *rand.Rand, w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		a := uint8(255)
		if r.IntN(4) == 0 {
			a = uint8(r.IntN(256))
		}
		m.Pix[i+3] = a
		for ch := 0; ch < 3; ch++ {
			m.Pix[i+ch] = uint8(r.IntN(int(a) + 1))
		}
	}
	return m
}

// bilinearRGBA gives exactly the pixels of x/image/draw's BiLinear, which
// it replaces in reduce for RGBA sources, shrinking and enlarging.
func TestBilinearRGBAIsDrawBiLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range [][4]int{
		{288, 216, 256, 192}, {1152, 864, 256, 192}, {100, 80, 37, 23}, {50, 40, 50, 40},
		{20, 10, 64, 32}, {1, 1, 3, 3}, {300, 1, 7, 1}, {3, 200, 2, 9}, {17, 13, 16, 12},
	} {
		t.Run(fmt.Sprintf("%dx%d to %dx%d", c[0], c[1], c[2], c[3]), func(t *testing.T) {
			src := randomRGBA(r, c[0], c[1])
			want := image.NewRGBA(image.Rect(0, 0, c[2], c[3]))
			draw.BiLinear.Scale(want, want.Bounds(), src, src.Bounds(), draw.Src, nil)
			got := image.NewRGBA(want.Rect)
			bilinearRGBA(got, src)
			for i := range want.Pix {
				if got.Pix[i] != want.Pix[i] {
					t.Fatalf("pixel %d channel %d: %d, draw.BiLinear %d", i/4, i%4, got.Pix[i], want.Pix[i])
				}
			}
		})
	}
}

// A 16-bit image is read at the nearest 8-bit level: a 16-bit PNG holding
// v·257 reads as the 8-bit v, and a true 16-bit level halfway up (v·257 +
// 200, which is v + 0.78) reads as v+1, where the high byte would say v.
func TestReduceRounds16Bit(t *testing.T) {
	m := image.NewRGBA64(image.Rect(0, 0, 4, 2))
	for i, v := range []uint16{10 * 257, 10*257 + 200, 65535, 0} {
		m.SetRGBA64(i, 0, color.RGBA64{v, v, v, 0xffff})
		m.SetRGBA64(i, 1, color.RGBA64{v, v, v, 0xffff})
	}
	got := reduce(m, 4, 2)
	for i, want := range []uint8{10, 11, 255, 0} {
		if p := got.Pix[4*i]; p != want {
			t.Errorf("pixel %d: %d, want %d", i, p, want)
		}
	}
}
