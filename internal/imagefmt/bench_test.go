package imagefmt

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"testing"
)

// photo1MP is a 1152×864 picture with smooth gradients and a fine texture,
// JPEG-encoded by Go at quality 90 (4:2:0).
func photo1MP(b *testing.B) []byte {
	m := image.NewNRGBA(image.Rect(0, 0, 1152, 864))
	for y := 0; y < 864; y++ {
		for x := 0; x < 1152; x++ {
			t := 12 * math.Sin(float64(x)*0.35) * math.Cos(float64(y)*0.27)
			i := m.PixOffset(x, y)
			m.Pix[i] = uint8(40 + 150*float64(x)/1152 + t)
			m.Pix[i+1] = uint8(60 + 120*float64(y)/864 + t)
			m.Pix[i+2] = uint8(180 - 120*float64(x*y)/(1152*864) + t)
			m.Pix[i+3] = 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDecodeJPEG1MP decodes a 1 MP JPEG with Go's image/jpeg (an
// *image.YCbCr, no colour conversion), and with this package at full size
// (RGBA as djpeg) and at 1/2, 1/4, 1/8.
func BenchmarkDecodeJPEG1MP(b *testing.B) {
	src := photo1MP(b)
	b.Run("image-jpeg", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(src)); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, denom := range []int{1, 2, 4, 8} {
		b.Run("scale-1:"+string(rune('0'+denom)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeScaled(src, JPEG, denom); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
