package compare

import (
	"bytes"
	"fmt"
	"image"
	stdjpeg "image/jpeg"
	"math"
	"os"
	"strings"
	"testing"

	"golang.org/x/image/draw"
	xwebp "golang.org/x/image/webp"
)

// jsonDoc returns a ~10 KiB JSON document of upload metadata; changed alters
// a few fields; reordered writes the same document with other key order.
func jsonDoc(changed, reordered bool) []byte {
	var b strings.Builder
	b.WriteString(`{"id":"upload-8f14e45f","owner":{"id":42,"name":"ana"},"renditions":[`)
	for i := 0; i < 90; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		w := 100 + i*20
		h, size := w*3/4, w*97
		if changed && i%30 == 5 {
			w++
		}
		if reordered {
			fmt.Fprintf(&b, `{"url":"https://cdn.example/u/8f14e45f/%d.jpg","height":%d,"format":"jpeg","width":%d,"name":"r%d","bytes":%d}`, i, h, w, i, size)
		} else {
			fmt.Fprintf(&b, `{"name":"r%d","width":%d,"height":%d,"format":"jpeg","bytes":%d,"url":"https://cdn.example/u/8f14e45f/%d.jpg"}`, i, w, h, size, i)
		}
	}
	b.WriteString(`],"status":"done"}`)
	return []byte(b.String())
}

func benchCompare(b *testing.B, l, n Response) {
	c, err := New(Settings{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Compare(&l, &n)
	}
}

// benchJSON runs the sub-benchmarks of a JSON pair: "baseline" is today's
// JSON comparison before the tapes (baseDiffJSON, json_baseline_test.go),
// "new" the tape-based diffJSON, both on the bodies alone; "compare" is the
// whole Compare with the new code (status and headers too).
func benchJSON(b *testing.B, l, n Response) {
	c, err := New(Settings{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.baseDiffJSON(nil, &l, &n)
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.diffJSON(nil, &l, &n)
		}
	})
	b.Run("compare", func(b *testing.B) { benchCompare(b, l, n) })
}

// BenchmarkEqualJSON10KiB compares two equal documents whose bytes differ
// (key order), so both are parsed and walked: the cost of a JSON match.
func BenchmarkEqualJSON10KiB(b *testing.B) {
	l := resp(200, jsonDoc(false, false), "Content-Type", ctJSON)
	n := resp(200, jsonDoc(false, true), "Content-Type", ctJSON)
	if r := Compare(l, n, Settings{}); r.Outcome != OutcomeMatch || len(l.Body) < 10<<10 {
		b.Fatalf("setup: %d bytes, %s", len(l.Body), r.Text())
	}
	benchJSON(b, l, n)
}

// BenchmarkDiffJSON10KiB compares two documents that differ in three
// fields, and in key order.
func BenchmarkDiffJSON10KiB(b *testing.B) {
	l := resp(200, jsonDoc(false, false), "Content-Type", ctJSON)
	n := resp(200, jsonDoc(true, true), "Content-Type", ctJSON)
	if r := Compare(l, n, Settings{}); len(r.Diffs) != 3 {
		b.Fatalf("setup: %s", r.Text())
	}
	benchJSON(b, l, n)
}

func jpeg1MP(b *testing.B, q int) []byte {
	return encJPEG(b, photo(1152, 864, 1), q)
}

// BenchmarkEqualJPEG1MP compares identical bytes: the fast path.
func BenchmarkEqualJPEG1MP(b *testing.B) {
	j := jpeg1MP(b, 90)
	benchCompare(b, resp(200, j, "Content-Type", ctJPEG), resp(200, j, "Content-Type", ctJPEG))
}

// BenchmarkDiffJPEG1MP compares two encodings (q90, q80) of the same 1 MP
// picture: both decoded, reduced and measured.
func BenchmarkDiffJPEG1MP(b *testing.B) {
	l := resp(200, jpeg1MP(b, 90), "Content-Type", ctJPEG)
	n := resp(200, jpeg1MP(b, 80), "Content-Type", ctJPEG)
	if r := Compare(l, n, Settings{}); r.Outcome != OutcomeMatch {
		b.Fatalf("setup: %s", r.Text())
	}
	benchCompare(b, l, n)
}

// BenchmarkDiffJPEG1MPBaseline is the pixel path of BenchmarkDiffJPEG1MP as
// it was before JPEGs were decoded at reduced scale (commit 7288941): both
// images decoded at full size by Go's image/jpeg (an *image.YCbCr),
// box-filtered (boxReduceYCbCr), scaled by x/image/draw's BiLinear and
// measured as measure did then (PSNR and mean shift). It runs beside the
// new path so that their ratio is measured on the same machine at the same
// time.
func BenchmarkDiffJPEG1MPBaseline(b *testing.B) {
	l, n := jpeg1MP(b, 90), jpeg1MP(b, 80)
	b.ReportAllocs()
	for b.Loop() {
		li, err := stdjpeg.Decode(bytes.NewReader(l))
		if err != nil {
			b.Fatal(err)
		}
		ni, err := stdjpeg.Decode(bytes.NewReader(n))
		if err != nil {
			b.Fatal(err)
		}
		baselineMeasure(li, ni)
	}
}

// baselineReduce is reduce as it was at commit 7288941.
func baselineReduce(img image.Image, w, h int) *image.RGBA {
	b := img.Bounds()
	if k := min(b.Dx()/w, b.Dy()/h); k >= 2 {
		img = boxReduce(img, k)
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.BiLinear.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
	return dst
}

// baselineMeasure is measure as it was at commit 7288941.
func baselineMeasure(l, n image.Image) (psnr float64, shift [3]float64) {
	lb := l.Bounds()
	w, h := fit((lb.Dx()+1)/2, (lb.Dy()+1)/2, imageCompareSide)
	a, c := baselineReduce(l, w, h), baselineReduce(n, w, h)
	channels := 3
	if usesAlpha(a) || usesAlpha(c) {
		channels = 4
	}
	var sq float64
	var sum [3]int64
	for i := 0; i < len(a.Pix); i += 4 {
		for ch := 0; ch < channels; ch++ {
			d := int64(c.Pix[i+ch]) - int64(a.Pix[i+ch])
			sq += float64(d * d)
			if ch < 3 {
				sum[ch] += d
			}
		}
	}
	px := float64(w * h)
	for ch := range sum {
		shift[ch] = float64(sum[ch]) / px
	}
	if mse := sq / (px * float64(channels)); mse == 0 {
		return math.Inf(1), shift
	}
	return 10 * math.Log10(255*255/(sq/(px*float64(channels)))), shift
}

// webp1MP reads a lossy WebP of the benchmarks' 1 MP picture (photo(1152,
// 864, 1) encoded by cwebp 1.2.4 at quality q: testdata/bench/README.md).
func webp1MP(b *testing.B, q int) []byte {
	body, err := os.ReadFile(fmt.Sprintf("testdata/bench/photo-1mp-q%d.webp", q))
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkDiffWebP1MP compares two lossy WebP encodings (q80, q70) of the
// 1 MP picture: decoded, converted as libwebp does, reduced and measured.
func BenchmarkDiffWebP1MP(b *testing.B) {
	l := resp(200, webp1MP(b, 80), "Content-Type", "image/webp")
	n := resp(200, webp1MP(b, 70), "Content-Type", "image/webp")
	if r := Compare(l, n, Settings{}); r.Outcome != OutcomeMatch {
		b.Fatalf("setup: %s", r.Text())
	}
	benchCompare(b, l, n)
}

// BenchmarkDiffWebP1MPBaseline is BenchmarkDiffWebP1MP's pixel path as it
// was at commit 7288941: x/image/webp's *image.YCbCr (JFIF full-range
// colours, so not what libwebp shows) reduced through boxReduceYCbCr.
func BenchmarkDiffWebP1MPBaseline(b *testing.B) {
	l, n := webp1MP(b, 80), webp1MP(b, 70)
	b.ReportAllocs()
	for b.Loop() {
		li, err := xwebp.Decode(bytes.NewReader(l))
		if err != nil {
			b.Fatal(err)
		}
		ni, err := xwebp.Decode(bytes.NewReader(n))
		if err != nil {
			b.Fatal(err)
		}
		baselineMeasure(li, ni)
	}
}
