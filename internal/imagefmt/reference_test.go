package imagefmt

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/image/webp"
)

// The reference corpus (testdata/ref, made by make-ref-corpus.sh with
// cwebp, cjpeg, libvips and ImageMagick) is decoded by this package and by
// each format's reference decoder: dwebp (libwebp) for WebP, djpeg
// (libjpeg-turbo) for JPEG, ImageMagick for the rest. Both are compared as
// 8-bit non-premultiplied RGBA.

const refInstall = "apt-get install -y webp libjpeg-turbo-progs imagemagick"

// needTool returns the path of a reference decoder, or skips the test
// (fails it when CI=true) when it is not installed.
func needTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if name == "convert" {
		// ImageMagick itself: a wrapper on PATH may change what it prints.
		if _, serr := os.Stat("/usr/bin/convert"); serr == nil {
			path, err = "/usr/bin/convert", nil
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (%s)", name, refInstall)
		}
		t.Skipf("%s not installed: %s", name, refInstall)
	}
	return path
}

// runTool runs a reference decoder and returns its standard output.
func runTool(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(needTool(t, name), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, errb.Bytes())
	}
	return out.Bytes()
}

// readPNM reads a binary PGM (P5), PPM (P6) or PAM (P7) with 8-bit samples
// as NRGBA, with 16-bit samples as NRGBA64.
func readPNM(b []byte) (image.Image, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	magic, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	var w, h, depth, maxval int
	switch strings.TrimSpace(magic) {
	case "P7":
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return nil, err
			}
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") {
				continue
			}
			if f[0] == "ENDHDR" {
				break
			}
			if len(f) < 2 {
				continue
			}
			n, _ := strconv.Atoi(f[1])
			switch f[0] {
			case "WIDTH":
				w = n
			case "HEIGHT":
				h = n
			case "DEPTH":
				depth = n
			case "MAXVAL":
				maxval = n
			}
		}
	case "P5", "P6":
		depth = 1
		if strings.TrimSpace(magic) == "P6" {
			depth = 3
		}
		var nums []int
		for len(nums) < 3 {
			tok, err := pnmToken(r)
			if err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(tok)
			if err != nil {
				return nil, err
			}
			nums = append(nums, n)
		}
		w, h, maxval = nums[0], nums[1], nums[2]
	default:
		return nil, fmt.Errorf("not a PNM: %q", magic)
	}
	if (maxval != 255 && maxval != 65535) || depth < 1 || depth > 4 || w <= 0 || h <= 0 || w*h > 1<<26 {
		return nil, fmt.Errorf("unsupported PNM: %dx%d depth %d maxval %d", w, h, depth, maxval)
	}
	if maxval == 65535 {
		raw := make([]byte, 2*w*h*depth)
		if _, err := io.ReadFull(r, raw); err != nil {
			return nil, err
		}
		m := image.NewNRGBA64(image.Rect(0, 0, w, h))
		for i := 0; i < w*h; i++ {
			s := raw[2*i*depth : 2*(i+1)*depth]
			var c color.NRGBA64
			switch depth {
			case 1, 2:
				v := uint16(s[0])<<8 | uint16(s[1])
				c = color.NRGBA64{v, v, v, 0xffff}
			default:
				c = color.NRGBA64{uint16(s[0])<<8 | uint16(s[1]), uint16(s[2])<<8 | uint16(s[3]), uint16(s[4])<<8 | uint16(s[5]), 0xffff}
			}
			if depth == 2 {
				c.A = uint16(s[2])<<8 | uint16(s[3])
			} else if depth == 4 {
				c.A = uint16(s[6])<<8 | uint16(s[7])
			}
			m.SetNRGBA64(i%w, i/w, c)
		}
		return m, nil
	}
	raw := make([]byte, w*h*depth)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, err
	}
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		s, d := raw[i*depth:(i+1)*depth], m.Pix[4*i:4*i+4]
		switch depth {
		case 1:
			d[0], d[1], d[2], d[3] = s[0], s[0], s[0], 255
		case 2:
			d[0], d[1], d[2], d[3] = s[0], s[0], s[0], s[1]
		case 3:
			d[0], d[1], d[2], d[3] = s[0], s[1], s[2], 255
		case 4:
			copy(d, s)
		}
	}
	return m, nil
}

func pnmToken(r *bufio.Reader) (string, error) {
	var tok []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		switch {
		case c == '#':
			if _, err := r.ReadString('\n'); err != nil {
				return "", err
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if len(tok) > 0 {
				return string(tok), nil
			}
		default:
			tok = append(tok, c)
		}
	}
}

// referenceDecode decodes the corpus file with its format's reference
// decoder; a file with 16-bit samples (deep) is read at 16 bits.
func referenceDecode(t *testing.T, path string, deep bool) image.Image {
	t.Helper()
	var out []byte
	switch filepath.Ext(path) {
	case ".webp":
		pam := filepath.Join(t.TempDir(), "out.pam")
		runTool(t, "dwebp", "-quiet", "-pam", path, "-o", pam)
		var err error
		if out, err = os.ReadFile(pam); err != nil {
			t.Fatal(err)
		}
	case ".jpg":
		out = runTool(t, "djpeg", "-pnm", path)
	default:
		depth := "8"
		if deep {
			depth = "16"
		}
		out = runTool(t, "convert", path+"[0]", "-depth", depth, "pam:-")
	}
	m, err := readPNM(out)
	if err != nil {
		t.Fatalf("reading the reference decoder's output for %s: %v", path, err)
	}
	return m
}

// samples returns an image's pixels as non-premultiplied RGBA in 0..255
// levels (fractions for 16-bit samples), four a pixel. 8-bit images
// convert as the comparer reads them.
func samples(img image.Image) []float64 {
	b := img.Bounds()
	out := make([]float64, 0, 4*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if deepImage(img) {
				c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
				out = append(out, float64(c.R)/257, float64(c.G)/257, float64(c.B)/257, float64(c.A)/257)
				continue
			}
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			out = append(out, float64(c.R), float64(c.G), float64(c.B), float64(c.A))
		}
	}
	return out
}

// deepImage tells whether img has 16-bit samples.
func deepImage(img image.Image) bool {
	switch img.(type) {
	case *image.NRGBA64, *image.RGBA64, *image.Gray16:
		return true
	}
	return false
}

// errStats compares two images' samples: the mean absolute error per
// channel and the largest error of any sample, in 8-bit levels. Where both
// pixels are fully transparent their colours do not count (decoders keep or
// zero them).
func errStats(a, b []float64) (mean [4]float64, maxErr float64) {
	var sum [4]float64
	for i := 0; i < len(a); i += 4 {
		both0 := a[i+3] == 0 && b[i+3] == 0
		for ch := 0; ch < 4; ch++ {
			if both0 && ch < 3 {
				continue
			}
			d := math.Abs(a[i+ch] - b[i+ch])
			sum[ch] += d
			maxErr = max(maxErr, d)
		}
	}
	px := float64(len(a) / 4)
	for ch := range sum {
		mean[ch] = sum[ch] / px
	}
	return mean, maxErr
}

// Every corpus file decodes to within 0.5 levels per channel (mean absolute
// error) of its reference decoder's output.
func TestReferenceDecoders(t *testing.T) {
	files, err := filepath.Glob("testdata/ref/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, path := range files {
		if filepath.Ext(path) == ".sh" {
			continue
		}
		n++
		t.Run(filepath.Base(path), func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			format := Sniff(b)
			if format == "" {
				t.Fatal("not an image")
			}
			img, err := Codecs[format].Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			ref := referenceDecode(t, path, deepImage(img))
			if img.Bounds().Size() != ref.Bounds().Size() {
				t.Fatalf("decoded %v, reference %v", img.Bounds().Size(), ref.Bounds().Size())
			}
			mean, maxErr := errStats(samples(img), samples(ref))
			t.Logf("%s %T %v: mean abs error R %.3f G %.3f B %.3f A %.3f, max %.2f",
				format, img, img.Bounds().Size(), mean[0], mean[1], mean[2], mean[3], maxErr)
			for ch, m := range mean {
				if m > 0.5 {
					t.Errorf("channel %c: mean error %.3f levels > 0.5", "RGBA"[ch], m)
				}
			}
		})
	}
	if n < 20 {
		t.Fatalf("only %d corpus files", n)
	}
}

// The measurement, reproduced on the corpus's lossy WebP: the mean
// R, G, B of Go's own conversion of the decoded planes (x/image/webp's
// *image.YCbCr through color.YCbCrToRGB, JFIF full range) are levels off
// libwebp's (dwebp; on this picture, whose green is low, G by +12.5), while
// Decode matches dwebp exactly.
func TestWebPLimitedRangeMeans(t *testing.T) {
	const path = "testdata/ref/webp-lossy.webp"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	planes, err := webp.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := planes.(*image.YCbCr); !ok {
		t.Fatalf("x/image/webp returned %T, not *image.YCbCr", planes)
	}
	ours, err := Codecs[WebP].Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	means := func(img image.Image) [3]float64 {
		s := samples(img)
		var m [3]float64
		for i := 0; i < len(s); i += 4 {
			for ch := range m {
				m[ch] += s[i+ch]
			}
		}
		for ch := range m {
			m[ch] /= float64(len(s) / 4)
		}
		return m
	}
	goM, ourM, refM := means(planes), means(ours), means(referenceDecode(t, path, false))
	t.Logf("means R/G/B: Go's YCbCr conversion %.2f/%.2f/%.2f, ours %.2f/%.2f/%.2f, dwebp %.2f/%.2f/%.2f",
		goM[0], goM[1], goM[2], ourM[0], ourM[1], ourM[2], refM[0], refM[1], refM[2])
	for ch := range refM {
		if math.Abs(ourM[ch]-refM[ch]) > 0.01 {
			t.Errorf("channel %c: mean %.3f, dwebp's %.3f", "RGB"[ch], ourM[ch], refM[ch])
		}
	}
	if d := max(math.Abs(goM[0]-refM[0]), math.Abs(goM[1]-refM[1]), math.Abs(goM[2]-refM[2])); d < 1 {
		t.Errorf("Go's full-range conversion is within %.2f levels of dwebp: is x/image/webp's output still limited-range planes?", d)
	}
}

// Every corpus JPEG decoded at 1/2, 1/4 and 1/8 (the IDCT scaling the
// comparer uses) is within 0.5 levels of djpeg -scale 1/N.
func TestReferenceJPEGScaled(t *testing.T) {
	files, err := filepath.Glob("testdata/ref/*.jpg")
	if err != nil || len(files) < 8 {
		t.Fatalf("corpus JPEGs: %d, %v", len(files), err)
	}
	for _, path := range files {
		for _, denom := range []int{2, 4, 8} {
			t.Run(fmt.Sprintf("%s/1:%d", filepath.Base(path), denom), func(t *testing.T) {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				img, err := DecodeScaled(b, JPEG, denom)
				if err != nil {
					t.Fatal(err)
				}
				m, err := readPNM(runTool(t, "djpeg", "-scale", fmt.Sprintf("1/%d", denom), "-pnm", path))
				if err != nil {
					t.Fatal(err)
				}
				if img.Bounds().Size() != m.Bounds().Size() {
					t.Fatalf("decoded %v, djpeg %v", img.Bounds().Size(), m.Bounds().Size())
				}
				mean, maxErr := errStats(samples(img), samples(m))
				t.Logf("%T %v: mean abs error R %.3f G %.3f B %.3f, max %.0f", img, img.Bounds().Size(), mean[0], mean[1], mean[2], maxErr)
				for ch, v := range mean {
					if v > 0.5 {
						t.Errorf("channel %c: mean error %.3f levels > 0.5", "RGBA"[ch], v)
					}
				}
			})
		}
	}
}

// Every corpus WebP decoded at 1/2, 1/4, 1/8 is within 0.5 levels of the
// block means of dwebp's pixels (premultiplied, computed here in floating
// point; dwebp has no scaled decoding).
func TestReferenceWebPScaled(t *testing.T) {
	files, err := filepath.Glob("testdata/ref/*.webp")
	if err != nil || len(files) < 4 {
		t.Fatalf("corpus WebPs: %d, %v", len(files), err)
	}
	for _, path := range files {
		for _, denom := range []int{2, 4, 8} {
			t.Run(fmt.Sprintf("%s/1:%d", filepath.Base(path), denom), func(t *testing.T) {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				img, err := DecodeScaled(b, WebP, denom)
				if err != nil {
					t.Fatal(err)
				}
				ref := samples(referenceDecode(t, path, false))
				fw := referenceDecode(t, path, false).Bounds().Dx()
				w, h := img.Bounds().Dx(), img.Bounds().Dy()
				if ew, eh := ScaledSize(WebP, fw, len(ref)/4/fw, denom); w != ew || h != eh {
					t.Fatalf("decoded %dx%d, want %dx%d", w, h, ew, eh)
				}
				want := make([]float64, 0, 4*w*h)
				for oy := 0; oy < h; oy++ {
					for ox := 0; ox < w; ox++ {
						var s [4]float64
						for y := oy * denom; y < oy*denom+denom; y++ {
							for x := ox * denom; x < ox*denom+denom; x++ {
								p := ref[4*(y*fw+x):]
								for ch := 0; ch < 3; ch++ {
									s[ch] += p[ch] * p[3] / 255
								}
								s[3] += p[3]
							}
						}
						n := float64(denom * denom)
						want = append(want, s[0]/n, s[1]/n, s[2]/n, s[3]/n)
					}
				}
				got := make([]float64, 0, 4*w*h)
				m := img.(*image.RGBA)
				for _, v := range m.Pix {
					got = append(got, float64(v))
				}
				mean, maxErr := errStats(got, want)
				t.Logf("%v: mean abs error R %.3f G %.3f B %.3f A %.3f, max %.2f", img.Bounds().Size(), mean[0], mean[1], mean[2], mean[3], maxErr)
				for ch, v := range mean {
					if v > 0.5 {
						t.Errorf("channel %c: mean error %.3f levels > 0.5", "RGBA"[ch], v)
					}
				}
			})
		}
	}
}
