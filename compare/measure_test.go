package compare

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tandem-proxy/tandem/internal/imagefmt"
)

// reducedPair decodes and reduces a corpus case's images as the comparer
// does (JPEG at the DCT scale diffImages picks), ready to be measured.
func reducedPair(t testing.TB, tc corpusCase) (a, b *image.RGBA, ok bool) {
	lf, nf := sniffImage(tc.legacy.Body), sniffImage(tc.new.Body)
	if lf == "" || nf == "" {
		return nil, nil, false
	}
	l, n := readHeader(tc.legacy.Body, lf), readHeader(tc.new.Body, nf)
	if l.err != nil || n.err != nil {
		return nil, nil, false
	}
	rw, rh := reducedSize(l.cfg)
	l.decodeScaled(tc.legacy.Body, imagefmt.ScaleDenom(lf, l.cfg.Width, l.cfg.Height, rw, rh))
	n.decodeScaled(tc.new.Body, imagefmt.ScaleDenom(nf, n.cfg.Width, n.cfg.Height, rw, rh))
	if l.err != nil || n.err != nil {
		return nil, nil, false
	}
	lb := l.img.Bounds()
	w, h := fit((lb.Dx()+1)/2, (lb.Dy()+1)/2, imageCompareSide)
	return reduce(l.img, w, h), reduce(n.img, w, h), true
}

// opaque returns the premultiplied pixels of img as an opaque image: the
// pixels the luma is computed from.
func opaque(img *image.RGBA) *image.RGBA {
	out := image.NewRGBA(img.Rect)
	copy(out.Pix, img.Pix)
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = 0xff
	}
	return out
}

// skimageSSIM is run by python3 with scikit-image: for each pair of PNG
// paths on its command line it prints the SSIM of their BT.601 luma with
// scikit-image's default uniform 7×7 window (sample covariance, as Wang et
// al.'s eq. 4–5) and with Wang et al.'s Gaussian 11×11, σ = 1.5.
const skimageSSIM = `
import sys
import numpy as np
from skimage.io import imread
from skimage.metrics import structural_similarity as ssim
def luma(p):
    a = imread(p).astype(np.float64)
    return (299 * a[..., 0] + 587 * a[..., 1] + 114 * a[..., 2]) / 1000
args = sys.argv[1:]
for i in range(0, len(args), 2):
    x, y = luma(args[i]), luma(args[i + 1])
    u = ssim(x, y, data_range=255, win_size=7, use_sample_covariance=True)
    g = ssim(x, y, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    print(u, g)
`

// TestSSIMReference checks ssim against scikit-image's structural_similarity
// on the corpus's reduced pairs: with scikit-image's 7×7 uniform window the
// implementation must agree to 1e-6 (it is the same computation), and the
// 8×8 window the comparer uses must agree with Wang et al.'s Gaussian
// 11×11 within 0.01 where that is 0.8 or more (the pairs near the default
// 0.90). Below, the window changes the value more (up to 0.07 on the
// corpus: another picture is dissimilar at any window size), and the test
// asks only that both windows fail the pair. Needs python3-skimage (skipped without it; fails with
// CI=true).
func TestSSIMReference(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import skimage.metrics").Run(); err != nil {
		const how = "apt-get install -y python3-skimage"
		if os.Getenv("CI") == "true" {
			t.Fatalf("scikit-image is required in CI (%s): %v", how, err)
		}
		t.Skipf("scikit-image is not installed (%s)", how)
	}
	dir := t.TempDir()
	var args, names []string
	var pairs [][2]*image.RGBA
	for i, tc := range corpus(t) {
		a, b, ok := reducedPair(t, tc)
		if !ok || a.Rect.Dx() < 11 || a.Rect.Dy() < 11 {
			continue
		}
		pa, pb := filepath.Join(dir, fmt.Sprintf("%d-a.png", i)), filepath.Join(dir, fmt.Sprintf("%d-b.png", i))
		for _, f := range []struct {
			path string
			img  *image.RGBA
		}{{pa, a}, {pb, b}} {
			if err := os.WriteFile(f.path, encPNG(t, opaque(f.img)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		args, names, pairs = append(args, pa, pb), append(names, tc.name), append(pairs, [2]*image.RGBA{a, b})
	}
	out, err := exec.Command(py, append([]string{"-c", skimageSSIM}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("scikit-image: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(pairs) {
		t.Fatalf("scikit-image printed %d lines for %d pairs:\n%s", len(lines), len(pairs), out)
	}
	worst := 0.0
	for i, line := range lines {
		f := strings.Fields(line)
		uniform, err1 := strconv.ParseFloat(f[0], 64)
		gauss, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad line %q", line)
		}
		a, b := pairs[i][0], pairs[i][1]
		if got := ssim(a, b, 7, nil); math.Abs(got-uniform) > 1e-6 {
			t.Errorf("%s: 7×7 SSIM %.7f, scikit-image %.7f", names[i], got, uniform)
		}
		got := ssim(a, b, ssimWindow, nil)
		switch {
		case gauss >= 0.8: // where verdicts are made: near the default 0.90
			worst = math.Max(worst, math.Abs(got-gauss))
			if math.Abs(got-gauss) > 0.01 {
				t.Errorf("%s: 8×8 SSIM %.4f, scikit-image's Gaussian 11×11 %.4f", names[i], got, gauss)
			}
		case got >= DefaultImageMinSSIM:
			t.Errorf("%s: 8×8 SSIM %.4f passes, scikit-image's Gaussian 11×11 %.4f fails", names[i], got, gauss)
		}
		t.Logf("%-52s 8×8 %.4f  Gaussian %.4f  7×7 %.4f", names[i], got, gauss, uniform)
	}
	t.Logf("%d pairs; largest |8×8 − Gaussian| %.4f where the Gaussian SSIM is 0.8 or more", len(pairs), worst)
}

func TestSSIMProperties(t *testing.T) {
	a := reduce(photo(200, 150, 3), 200, 150)
	b := reduce(shifted(photo(200, 150, 3), 20), 200, 150)
	if s := ssim(a, a, ssimWindow, nil); s != 1 {
		t.Errorf("an image's SSIM with itself is %v", s)
	}
	if ab, ba := ssim(a, b, ssimWindow, nil), ssim(b, a, ssimWindow, nil); ab != ba || ab >= 1 {
		t.Errorf("SSIM not symmetric or not below 1: %v %v", ab, ba)
	}
	// Images smaller than the window shrink it; a 1×1 image compares its
	// luminance only.
	tiny := image.NewRGBA(image.Rect(0, 0, 1, 1))
	tiny.Pix[3] = 0xff
	if s := ssim(tiny, tiny, ssimWindow, nil); s != 1 {
		t.Errorf("1×1: %v", s)
	}
}

// TestImageMeasureDiffs checks the differences the measures report and
// their values: $.image.ssim, and $.image.mean_shift judged by ΔE00 with
// the optional per-channel limit.
func TestImageMeasureDiffs(t *testing.T) {
	base := photo(240, 180, 5)
	legacy := resp(200, encPNG(t, base))
	shift3 := resp(200, encPNG(t, shifted(base, 3)))
	cases := []struct {
		name, why  string
		new        Response
		s          Settings
		want       string // the differences' "path legacy → new", joined by "; "
		wantPrefix bool
	}{
		{"shift 3 levels", "ΔE00 0.95 is past the default 0.6; the channels show the direction",
			shift3, Settings{}, "$.image.mean_shift ΔE00 0.60 max → ΔE00 0.9", true},
		{"shift 3 levels, lenient ΔE00", "within image_max_delta_e, and no per-channel limit by default",
			shift3, Settings{ImageMaxDeltaE: 3}, "", false},
		{"shift 3 levels, per-channel limit", "image_max_mean_shift is an extra limit past which the shift is reported",
			shift3, Settings{ImageMaxDeltaE: 3, ImageMaxMeanShift: 1.5},
			"$.image.mean_shift ΔE00 3.00, ±1.50 a channel max → ΔE00 0.9", true},
		{"blurred", "structure lost: SSIM below the minimum (and PSNR)",
			resp(200, encPNG(t, resize(resize(base, 30, 22, lanczos3), 240, 180, lanczos3))), Settings{ImageMinPSNR: 5, ImageMaxDeltaE: 50},
			"$.image.ssim 0.9000 min → 0.", true},
	}
	for _, c := range cases {
		got := Compare(legacy, c.new, c.s)
		var parts []string
		for _, d := range got.Diffs {
			parts = append(parts, d.Path+" "+d.Legacy+" → "+d.New)
		}
		s := strings.Join(parts, "; ")
		if c.wantPrefix && !strings.HasPrefix(s, c.want) || !c.wantPrefix && s != c.want {
			t.Errorf("%s (%s): got %q, want %q", c.name, c.why, s, c.want)
		}
	}
	got := Compare(legacy, shift3, Settings{})
	if d := got.Diffs[0].New; !strings.Contains(d, "(R+3.00 G+2.9") {
		t.Errorf("the per-channel shift is not shown: %q", d)
	}
}

// TestMeanDeltaEAlpha checks how transparency weighs in the colour measure:
// colour under fully transparent pixels does not count, and a regional
// change counts by its area.
func TestMeanDeltaEAlpha(t *testing.T) {
	mk := func(w, h int, f func(x, y int) color.NRGBA) *image.RGBA {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img.SetNRGBA(x, y, f(x, y))
			}
		}
		return reduce(img, w, h)
	}
	grey := color.NRGBA{120, 120, 120, 255}
	// Left half opaque grey; right half transparent, with different
	// colours under it on each side (as lossy WebP leaves them).
	a := mk(64, 64, func(x, y int) color.NRGBA {
		if x < 32 {
			return grey
		}
		return color.NRGBA{255, 0, 0, 0}
	})
	b := mk(64, 64, func(x, y int) color.NRGBA {
		if x < 32 {
			return grey
		}
		return color.NRGBA{0, 0, 255, 0}
	})
	if d := meanDeltaE(a, b, deltaETile, nil); d != 0 {
		t.Errorf("colour under transparent pixels counts: ΔE00 %v", d)
	}
	// A change in a quarter of the image shows as about a quarter of it.
	c := mk(64, 64, func(x, y int) color.NRGBA { return grey })
	e := mk(64, 64, func(x, y int) color.NRGBA {
		if x < 32 && y < 32 {
			return color.NRGBA{140, 120, 120, 255}
		}
		return grey
	})
	full := ciede2000(labOf(grey), labOf(color.NRGBA{140, 120, 120, 255}))
	if d := meanDeltaE(c, e, deltaETile, nil); math.Abs(d-full/4) > 1e-9 {
		t.Errorf("a quarter changed: ΔE00 %v, want %v", d, full/4)
	}
}

func labOf(c color.NRGBA) lab {
	return labFromLinear(srgbToLinear[c.R], srgbToLinear[c.G], srgbToLinear[c.B])
}

// TestMeasureAllocs checks that measuring two reduced images allocates
// nothing.
func TestMeasureAllocs(t *testing.T) {
	a := reduce(photo(256, 192, 1), 256, 192)
	b := reduce(shifted(photo(256, 192, 1), 2), 256, 192)
	if n := testing.AllocsPerRun(10, func() { measureReduced(a, b) }); n != 0 {
		t.Errorf("measureReduced allocates %v times", n)
	}
}

// BenchmarkMeasure256x192 measures one reduced 256×192 pair: PSNR and the
// mean shift (the baseline, BenchmarkMeasure256x192/psnr) and with SSIM and
// ΔE00 (/all).
func BenchmarkMeasure256x192(b *testing.B) {
	x := reduce(encDecode(b, photo(512, 384, 1), 90), 256, 192)
	y := reduce(encDecode(b, photo(512, 384, 1), 80), 256, 192)
	b.Run("psnr", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			psnrOnly(x, y)
		}
	})
	b.Run("ssim", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ssim(x, y, ssimWindow, nil)
		}
	})
	b.Run("delta_e", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			meanDeltaE(x, y, deltaETile, nil)
		}
	})
	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			measureReduced(x, y)
		}
	})
}

// psnrOnly is the measurement as it was before SSIM and ΔE00: PSNR and the
// per-channel mean shift.
func psnrOnly(a, b *image.RGBA) (float64, [3]float64) {
	var sq int64
	var sum [3]int64
	for i := 0; i < len(a.Pix); i += 4 {
		for ch := 0; ch < 3; ch++ {
			d := int64(b.Pix[i+ch]) - int64(a.Pix[i+ch])
			sq += d * d
			sum[ch] += d
		}
	}
	px := float64(a.Rect.Dx() * a.Rect.Dy())
	return 10 * math.Log10(255*255/(float64(sq)/(3*px))), [3]float64{float64(sum[0]) / px, float64(sum[1]) / px, float64(sum[2]) / px}
}

func encDecode(t testing.TB, img image.Image, q int) image.Image {
	b := encJPEG(t, img, q)
	d, err := decoders[formatJPEG].Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
