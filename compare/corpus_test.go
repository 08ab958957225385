package compare

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/image/draw"
)

// corpusCase is one labelled pair: legacy and new responses, the settings
// they are compared under, and the verdict a person would give.
type corpusCase struct {
	name     string
	why      string
	legacy   Response
	new      Response
	settings Settings
	want     Outcome
	// wantDiffs are the "kind path" of the differences that must be found;
	// for a match it is empty and no difference may be found.
	wantDiffs []string
}

var (
	corpusOnce  sync.Once
	corpusCases []corpusCase
)

const (
	ctJPEG = "image/jpeg"
	ctPNG  = "image/png"
	ctJSON = "application/json"
)

// corpusDoc is the JSON upload response of the corpus.
const corpusDoc = `{"id":"u-17","processed_at":"2024-05-01T10:00:00Z","owner":"ana",
	"items":[{"name":"thumb","width":400,"height":300},{"name":"medium","width":800,"height":600}]}`

// corpus builds the labelled corpus once per test binary.
func corpus(t testing.TB) []corpusCase {
	corpusOnce.Do(func() { corpusCases = buildCorpus(t) })
	return corpusCases
}

func buildCorpus(t testing.TB) []corpusCase {
	src := photo(960, 720, 1)                              // the "upload"
	thumbCR := resize(src, 400, 300, draw.CatmullRom)      // legacy thumbnailer
	thumbABL := resize(src, 400, 300, draw.ApproxBiLinear) // new thumbnailer, other filter
	thumbBL := resize(src, 400, 300, draw.BiLinear)
	noiseSrc := noiseImage(480, 360, 2)
	noiseL3 := resize(noiseSrc, 240, 180, lanczos3)
	noiseBL := resize(noiseSrc, 240, 180, draw.BiLinear)
	other := resize(photo(960, 720, 99), 400, 300, draw.CatmullRom)

	jpeg90 := encJPEG(t, thumbCR, 90)
	png1 := encPNG(t, thumbCR)
	alpha := cutout(thumbCR)
	gif3 := encGIF(t, resize(src, 160, 120, draw.BiLinear), 3)
	gif2 := encGIF(t, resize(src, 160, 120, draw.BiLinear), 2)
	webpA := encWebP(t, checkerboard(64, 48, color.NRGBA{200, 60, 30, 255}, color.NRGBA{40, 120, 220, 255}))
	webpShift := encWebP(t, checkerboard(64, 48, color.NRGBA{203, 63, 33, 255}, color.NRGBA{43, 123, 223, 255}))

	jpegResp := func(b []byte) Response { return resp(200, b, "Content-Type", ctJPEG) }
	pngResp := func(b []byte) Response { return resp(200, b, "Content-Type", ctPNG) }
	jsonResp := func(status int, s string) Response { return resp(status, []byte(s), "Content-Type", ctJSON) }

	const doc = corpusDoc
	return append(realImageCases(t), []corpusCase{
		// Harmless: the new implementation is fine.
		{name: "resampler CatmullRom vs ApproxBiLinear, JPEG q90",
			why:    "another resampling filter moves single pixels, not the picture",
			legacy: jpegResp(jpeg90), new: jpegResp(encJPEG(t, thumbABL, 90)), want: OutcomeMatch},
		{name: "resampler CatmullRom vs BiLinear, PNG",
			why:    "lossless output isolates the filter difference",
			legacy: pngResp(png1), new: pngResp(encPNG(t, thumbBL)), want: OutcomeMatch},
		{name: "resampler Lanczos3 vs CatmullRom, JPEG q85",
			why:    "libvips-style vs Go-style thumbnailer",
			legacy: jpegResp(encJPEG(t, resize(src, 400, 300, lanczos3), 85)), new: jpegResp(encJPEG(t, thumbCR, 85)), want: OutcomeMatch},
		{name: "noise image, Lanczos3 vs BiLinear",
			why:    "worst case for resamplers: 26.7 dB at full size, yet the same picture",
			legacy: pngResp(encPNG(t, noiseL3)), new: pngResp(encPNG(t, noiseBL)), want: OutcomeMatch},
		{name: "JPEG quality 90 vs 80",
			why:    "a different encoder setting is compression noise",
			legacy: jpegResp(jpeg90), new: jpegResp(encJPEG(t, thumbCR, 80)), want: OutcomeMatch},
		{name: "PNG with a tEXt chunk",
			why:    "metadata changes the bytes, not the pixels",
			legacy: pngResp(png1), new: pngResp(withTextChunk(png1, "Software", "new-thumbnailer 2.0")), want: OutcomeMatch},
		{name: "same EXIF orientation, different byte order",
			why:    "II and MM encode the same tag",
			legacy: jpegResp(withOrientation(jpeg90, 6, false)), new: jpegResp(withOrientation(jpeg90, 6, true)), want: OutcomeMatch},
		{name: "off by one pixel within image_dim_tolerance",
			why:    "the route allows rounding differences of one pixel",
			legacy: pngResp(png1), new: pngResp(encPNG(t, resize(src, 399, 300, draw.CatmullRom))),
			settings: Settings{ImageDimTolerance: 1}, want: OutcomeMatch},
		{name: "JSON with reordered keys and other spacing",
			why:    "key order and white space carry no meaning",
			legacy: jsonResp(200, doc),
			new: jsonResp(200, `{"owner":"ana","items":[{"width":400,"height":300,"name":"thumb"},
				{"height":600,"name":"medium","width":800}],"processed_at":"2024-05-01T10:00:00Z","id":"u-17"}`),
			want: OutcomeMatch},
		{name: "JSON numbers 400 vs 400.0 vs 4e2",
			why:    "numbers compare by value",
			legacy: jsonResp(200, `{"w":400,"h":300.0}`), new: jsonResp(200, `{"w":4e2,"h":300}`), want: OutcomeMatch},
		{name: "JSON ignored field differs",
			why:      "processed_at is a timestamp the route ignores",
			legacy:   jsonResp(200, doc),
			new:      jsonResp(200, strings.Replace(doc, "10:00:00Z", "10:00:03Z", 1)),
			settings: Settings{IgnoreJSON: []string{"$.processed_at"}}, want: OutcomeMatch},
		{name: "noise headers differ",
			why:    "Date, Server and ETag differ between any two servers",
			legacy: resp(200, png1, "Content-Type", ctPNG, "Date", "Mon, 01 Jan 2024 10:00:00 GMT", "Server", "legacy/1.0", "ETag", `"a1"`),
			new:    resp(200, png1, "Content-Type", ctPNG, "Date", "Mon, 01 Jan 2024 10:00:02 GMT", "Server", "new/0.1", "ETag", `"b2"`),
			want:   OutcomeMatch},

		// Regressions: the new implementation is wrong.
		{name: "rotated 90°",
			why:    "the thumbnail came out turned",
			legacy: pngResp(png1), new: pngResp(encPNG(t, rotated90(thumbCR))),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.dimensions", "image $.image.psnr"}},
		{name: "EXIF orientation tag differs",
			why:    "same pixels, but viewers will show it turned",
			legacy: jpegResp(withOrientation(jpeg90, 1, false)), new: jpegResp(withOrientation(jpeg90, 6, false)),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.orientation"}},
		{name: "EXIF orientation dropped",
			why:    "legacy keeps orientation 8, new drops the Exif segment",
			legacy: jpegResp(withOrientation(jpeg90, 8, true)), new: jpegResp(jpeg90),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.orientation"}},
		{name: "wrong dimensions",
			why:    "half-size thumbnail",
			legacy: pngResp(png1), new: pngResp(encPNG(t, resize(src, 200, 150, draw.CatmullRom))),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.dimensions"}},
		{name: "off by one dimension",
			why:    "rounding bug in the size computation",
			legacy: pngResp(png1), new: pngResp(encPNG(t, resize(src, 399, 300, draw.CatmullRom))),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.dimensions"}},
		{name: "colour shifted by 8 levels",
			why:    "colour-space bug brightens everything",
			legacy: pngResp(png1), new: pngResp(encPNG(t, shifted(thumbCR, 8))),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.mean_shift"}},
		{name: "colour shifted by 3 levels, JPEG",
			why:    "subtle colour bug: PSNR stays high, the mean moves",
			legacy: jpegResp(jpeg90), new: jpegResp(encJPEG(t, shifted(thumbCR, -3), 90)),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.mean_shift"}},
		{name: "WebP colour shifted by 3 levels",
			why:    "the WebP colour shift seen in real encoders",
			legacy: resp(200, webpA, "Content-Type", "image/webp"), new: resp(200, webpShift, "Content-Type", "image/webp"),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.mean_shift"}},
		{name: "alpha flattened to black",
			why:    "transparent background lost",
			legacy: pngResp(encPNG(t, alpha)), new: pngResp(encPNG(t, flattened(alpha))),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.alpha"}},
		{name: "truncated file",
			why:    "the new service cut the upload short",
			legacy: jpegResp(jpeg90), new: jpegResp(jpeg90[:len(jpeg90)/2]),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.decode"}},
		{name: "other format, PNG vs JPEG",
			why:    "clients asked for PNG",
			legacy: pngResp(png1), new: pngResp(jpeg90),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.format"}},
		{name: "dropped GIF frames",
			why:    "animation lost its last frame",
			legacy: resp(200, gif3, "Content-Type", "image/gif"), new: resp(200, gif2, "Content-Type", "image/gif"),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.frames"}},
		{name: "over-compressed, JPEG q5",
			why:    "blocking artefacts a person sees at once",
			legacy: jpegResp(jpeg90), new: jpegResp(encJPEG(t, thumbCR, 5)),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.psnr"}},
		{name: "blurred",
			why:    "thumbnail made from an 8× smaller intermediate",
			legacy: pngResp(png1), new: pngResp(encPNG(t, resize(resize(src, 50, 38, draw.BiLinear), 400, 300, draw.BiLinear))),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.psnr"}},
		{name: "another picture",
			why:    "the new service thumbnailed the wrong upload",
			legacy: pngResp(png1), new: pngResp(encPNG(t, other)),
			want: OutcomeMismatch, wantDiffs: []string{"image $.image.psnr"}},
		{name: "changed JSON field",
			why:    "wrong width reported",
			legacy: jsonResp(200, doc), new: jsonResp(200, strings.Replace(doc, `"width":800`, `"width":801`, 1)),
			want: OutcomeMismatch, wantDiffs: []string{"json $.items[1].width"}},
		{name: "missing JSON field",
			why:    "owner dropped from the response",
			legacy: jsonResp(200, doc), new: jsonResp(200, strings.Replace(doc, `"owner":"ana",`, "", 1)),
			want: OutcomeMismatch, wantDiffs: []string{"json $.owner"}},
		{name: "changed status",
			why:    "the new service fails the upload",
			legacy: jsonResp(200, doc), new: jsonResp(500, `{"error":"boom"}`),
			want: OutcomeMismatch, wantDiffs: []string{"status $.status"}},
		{name: "changed Content-Type",
			why:    "same bytes announced as another type",
			legacy: pngResp(png1), new: resp(200, png1, "Content-Type", "application/octet-stream"),
			want: OutcomeMismatch, wantDiffs: []string{"header $.header.Content-Type"}},
	}...)
}

// realImageCase labels one pair of testdata/images, made by real encoders
// and resamplers (make-images.sh says how): NAME.legacy.EXT and
// NAME.new.EXT.
type realImageCase struct {
	name, why string
	want      Outcome
	wantDiffs []string
}

// realImageCases are the labels of testdata/images; the verdicts are a
// person's, the outcomes come from the code.
var realImageLabels = []realImageCase{
	// Harmless: the new service is fine.
	{"resample-lanczos-triangle", "ImageMagick Lanczos vs bilinear (Triangle) thumbnail, JPEG q85", OutcomeMatch, nil},
	{"resample-im-vips", "ImageMagick Lanczos vs libvips thumbnail, JPEG q85", OutcomeMatch, nil},
	{"resample-bilinear-vips", "ImageMagick bilinear vs libvips thumbnail, PNG: the filters alone", OutcomeMatch, nil},
	{"jpeg-q95-q80", "the same thumbnail at JPEG quality 95 and 80", OutcomeMatch, nil},
	{"jpeg-vs-webp", "the same thumbnail as JPEG q85 and as lossy WebP q80", OutcomeMatch, nil},
	{"webp-lossless-lossy-alpha", "a cut-out as lossless WebP and as lossy WebP with (lossless) alpha", OutcomeMatch, nil},
	{"white-gd-vips", "the issue's white thumbnail: libgd (252,254,252) vs libvips (255,255,255), which nobody tells apart", OutcomeMatch, nil},

	// Regressions: the new service is wrong.
	{"cmyk-inverted", "converted through CMYK with the channels read inverted", OutcomeMismatch,
		[]string{"image $.image.ssim", "image $.image.mean_shift"}},
	{"webp-shift-to-jpeg", "WebP turned into JPEG with the issue's +4.4/+1.7/+3.3 R/G/B shift", OutcomeMismatch,
		[]string{"image $.image.format", "image $.image.mean_shift"}},
	{"webp-shift", "WebP re-encoded after the +4.4/+1.7/+3.3 R/G/B shift", OutcomeMismatch,
		[]string{"image $.image.mean_shift"}},
	{"alpha-lost", "lossy WebP encoded without its alpha", OutcomeMismatch, []string{"image $.image.alpha"}},
	{"exif-ignored", "a square camera JPEG's Orientation 6 ignored: same size, turned", OutcomeMismatch,
		[]string{"image $.image.ssim"}},
	{"crop-centre-east", "a square thumbnail cut from the east instead of the centre", OutcomeMismatch,
		[]string{"image $.image.ssim"}},
	{"other-picture", "another upload thumbnailed at the same size", OutcomeMismatch,
		[]string{"image $.image.ssim"}},
}

var imageContentTypes = map[string]string{".jpg": ctJPEG, ".png": ctPNG, ".webp": "image/webp"}

// realImageCases reads testdata/images into corpus cases.
func realImageCases(t testing.TB) []corpusCase {
	var out []corpusCase
	for _, l := range realImageLabels {
		var sides [2]Response
		for i, side := range []string{"legacy", "new"} {
			files, _ := filepath.Glob(filepath.Join("testdata", "images", l.name+"."+side+".*"))
			if len(files) != 1 {
				t.Fatalf("%s: want one %s file in testdata/images, found %v", l.name, side, files)
			}
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			sides[i] = resp(200, b, "Content-Type", imageContentTypes[filepath.Ext(files[0])])
		}
		out = append(out, corpusCase{name: "real: " + l.name, why: l.why, legacy: sides[0], new: sides[1],
			want: l.want, wantDiffs: l.wantDiffs})
	}
	return out
}

func diffKeys(diffs []Difference) []string {
	keys := make([]string, len(diffs))
	for i, d := range diffs {
		keys[i] = string(d.Kind) + " " + d.Path
	}
	return keys
}

func TestCorpus(t *testing.T) {
	for _, tc := range corpus(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tc.settings)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Compare(&tc.legacy, &tc.new)
			if got.Outcome != tc.want {
				t.Errorf("%s (%s): outcome %s, want %s\n%s", tc.name, tc.why, got.Outcome, tc.want, got.Text())
			}
			keys := diffKeys(got.Diffs)
			if tc.want == OutcomeMatch && len(keys) > 0 {
				t.Errorf("%s (%s): want no differences, got\n%s", tc.name, tc.why, got.Text())
			}
			for _, w := range tc.wantDiffs {
				if !slices.Contains(keys, w) {
					t.Errorf("%s (%s): missing difference %q in\n%s", tc.name, tc.why, w, got.Text())
				}
			}
		})
	}
}

// TestCorpusMeasurements logs PSNR and mean shift of every decodable image
// pair (go test -run CorpusMeasurements -v), the numbers the defaults of
// image_min_psnr and image_max_mean_shift were chosen from, and checks that
// the defaults leave a margin on both sides.
func TestCorpusMeasurements(t *testing.T) {
	var worstHarmlessShift, bestBugShift = 0.0, math.Inf(1)
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
		m := measure(l.img, n.img)
		t.Logf("%-48s %-8s psnr %6.2f dB  shift %s", tc.name, tc.want, m.psnr, m.shiftString())
		switch {
		case tc.want == OutcomeMatch:
			worstHarmlessShift = math.Max(worstHarmlessShift, m.maxAbsShift())
		case slices.Contains(tc.wantDiffs, "image $.image.mean_shift"):
			bestBugShift = math.Min(bestBugShift, m.maxAbsShift())
		}
	}
	t.Logf("largest harmless |mean shift| %.3f, smallest colour-bug |mean shift| %.3f, default %.2f",
		worstHarmlessShift, bestBugShift, DefaultImageMaxDeltaE)
	if !(worstHarmlessShift*2 <= DefaultImageMaxDeltaE && DefaultImageMaxDeltaE*1.5 <= bestBugShift) {
		t.Errorf("default image_max_mean_shift %.2f leaves too little margin: harmless up to %.3f, bugs from %.3f",
			DefaultImageMaxDeltaE, worstHarmlessShift, bestBugShift)
	}
}

func ExampleResult_Text() {
	legacy := resp(200, []byte(`{"w":400,"owner":"ana"}`), "Content-Type", ctJSON)
	new := resp(200, []byte(`{"w":401}`), "Content-Type", ctJSON)
	fmt.Print(Compare(legacy, new, Settings{}).Text())
	// Output:
	// mismatch: 2 differences
	//   json  $.owner  "ana" → <missing>
	//   json  $.w      400 → 401
}
