package compare

import (
	"fmt"
	"image"
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
