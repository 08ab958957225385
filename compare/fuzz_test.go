package compare

import (
	"bytes"
	"image/color"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/draw"
	"golang.org/x/image/tiff"
)

// checkResult asserts what every comparison must satisfy, whatever its input.
func checkResult(t *testing.T, r Result) {
	t.Helper()
	if r.Outcome == OutcomeError {
		t.Fatalf("comparison failed internally: %s", r.Text())
	}
	if r.Outcome == OutcomeMatch && len(r.Diffs) > 0 || r.Outcome == OutcomeMismatch && len(r.Diffs) == 0 {
		t.Fatalf("outcome %s with %d differences", r.Outcome, len(r.Diffs))
	}
	for _, d := range r.Diffs {
		if _, err := parsePath(d.Path, false); err != nil {
			t.Fatalf("difference path %q does not parse: %v", d.Path, err)
		}
		if len(d.Legacy) > 4*maxDiffValueLen || len(d.New) > 4*maxDiffValueLen {
			t.Fatalf("difference value not bounded: %d/%d bytes", len(d.Legacy), len(d.New))
		}
	}
	_ = r.Text()
}

func FuzzJSONDiff(f *testing.F) {
	seeds := []string{
		`{}`, `[]`, `null`, `1`, `"s"`, `{"a":1}`, `{"a":[1,2,{"b":null}]}`, `[1e999, -0, 1.5E-3]`,
		`{"a.b":{"x y":[true,false]}}`, `{"a":1`, `{"a":1}{}`, `[[[[[[]]]]]]`, `{"\u00e9":"\ud800"}`,
	}
	seeds = append(seeds, corpusDoc, strings.Replace(corpusDoc, "800", "801", 1), strings.Replace(corpusDoc, `"owner":"ana",`, "", 1))
	for i := 0; i+1 < len(seeds); i++ {
		f.Add([]byte(seeds[i]), []byte(seeds[i+1]))
	}
	c, err := New(Settings{IgnoreJSON: []string{"$.items[*].id", "$.meta.*"}, JSONNumberTolerance: 0.001})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		l := resp(200, a, "Content-Type", ctJSON)
		n := resp(200, b, "Content-Type", ctJSON)
		ab := c.Compare(&l, &n)
		checkResult(t, ab)
		if same := c.Compare(&l, &l); same.Outcome != OutcomeMatch {
			t.Fatalf("a body differs from itself: %s", same.Text())
		}
		// The cheap equality check agrees with the go-cmp walk.
		lv, lerr := parseJSON(a, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
		nv, nerr := parseJSON(b, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
		if lerr == nil && nerr == nil {
			eq := c.jsonEqual(lv, nv, nil)
			if diffs := c.cmpJSON(lv, nv); eq != (len(diffs) == 0) {
				t.Fatalf("jsonEqual = %v, go-cmp found %d differences: %+v", eq, len(diffs), diffs)
			}
		}
		// The comparison is symmetric: swapping sides swaps the values.
		ba := c.Compare(&n, &l)
		if !slices.Equal(diffKeys(ab.Diffs), diffKeys(ba.Diffs)) {
			t.Fatalf("not symmetric:\n%s\n%s", ab.Text(), ba.Text())
		}
		for i := range ab.Diffs {
			if ab.Diffs[i].Kind == KindJSON && ab.Diffs[i].Path != "$" &&
				(ab.Diffs[i].Legacy != ba.Diffs[i].New || ab.Diffs[i].New != ba.Diffs[i].Legacy) {
				t.Fatalf("values not swapped: %+v vs %+v", ab.Diffs[i], ba.Diffs[i])
			}
		}
	})
}

// fuzzImageSettings keep each fuzz input cheap: at most 1 MP decoded.
var fuzzImageSettings = Settings{MaxImagePixels: 1 << 20}

// FuzzImage compares a fixed valid PNG with arbitrary bytes. Each input may
// decode an image, so minimising a new input takes a while; for longer runs
// use e.g. go test -run=XXX -fuzz=FuzzImage -fuzztime=1m -fuzzminimizetime=5s.
func FuzzImage(f *testing.F) {
	small := resize(photo(96, 72, 3), 32, 24, draw.BiLinear)
	enc := func(fn func(*bytes.Buffer) error) []byte {
		var b bytes.Buffer
		if err := fn(&b); err != nil {
			f.Fatal(err)
		}
		return b.Bytes()
	}
	fixed := encPNG(f, small)
	jpg := encJPEG(f, small, 80)
	seeds := [][]byte{
		fixed, jpg, withOrientation(jpg, 6, true), encGIF(f, small, 2),
		enc(func(b *bytes.Buffer) error { return bmp.Encode(b, small) }),
		enc(func(b *bytes.Buffer) error { return tiff.Encode(b, small, &tiff.Options{Compression: tiff.Deflate}) }),
		encWebP(f, checkerboard(32, 24, color.NRGBA{1, 2, 3, 255}, color.NRGBA{200, 100, 50, 128})),
		withTextChunk(fixed, "k", "v"), fixed[:len(fixed)/2], jpg[:len(jpg)/3], []byte("GIF89a"), []byte("RIFF\x00\x00\x00\x00WEBPVP8 "),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	c, err := New(fuzzImageSettings)
	if err != nil {
		f.Fatal(err)
	}
	legacy := resp(200, fixed, "Content-Type", ctPNG)
	f.Fuzz(func(t *testing.T, b []byte) {
		n := resp(200, b, "Content-Type", ctPNG)
		r := c.Compare(&legacy, &n)
		checkResult(t, r)
		// The measures stay numbers whatever decodes (a NaN would compare
		// as neither below nor above a limit).
		for _, d := range r.Diffs {
			if strings.Contains(d.New, "NaN") || strings.Contains(d.New, "Inf") {
				t.Fatalf("%s measured %q", d.Path, d.New)
			}
		}
		// The heat map measures the same pairs tile by tile.
		if img, err := HeatMap(fixed, b, 48, nil); err == nil && img.Bounds().Empty() {
			t.Fatal("empty heat map without an error")
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"$", "$.a", "$.items[*].id", `$["a.b"]`, `$['x']`, "$[3][*]", "$.a.*", "$..a", "$.[", `$["\u00e9"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		segs, err := parsePath(s, true)
		if err != nil {
			return
		}
		r := renderPath(segs)
		if len(r) > maxPathLen {
			// Escaping can make a path that fits the limit render longer
			// than it; such a rendering is only ever displayed.
			return
		}
		again, err := parsePath(r, true)
		if err != nil || !slices.Equal(again, segs) {
			t.Fatalf("%q rendered as %q, which parses as %v (%v)", s, r, again, err)
		}
		pattern(segs).matchesPath(r)
		shapePath(r)
	})
}
