package compare

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/draw"
	"golang.org/x/image/tiff"
)

func TestTransportErrors(t *testing.T) {
	ok := resp(200, []byte("x"))
	tests := []struct {
		name         string
		legacy, new  *Response
		wantL, wantN string
	}{
		{"new failed", &ok, &Response{Err: "dial tcp: connection refused"}, "status 200", "error: dial tcp: connection refused"},
		{"legacy failed", &Response{Err: "timeout"}, &ok, "error: timeout", "status 200"},
		{"both failed", &Response{Err: "a"}, &Response{Err: "b"}, "error: a", "error: b"},
		{"nil new", &ok, nil, "status 200", "no response"},
	}
	c, _ := New(Settings{})
	for _, tc := range tests {
		got := c.Compare(tc.legacy, tc.new)
		want := Difference{Kind: KindStatus, Path: "$.error", Legacy: tc.wantL, New: tc.wantN}
		if got.Outcome != OutcomeError || len(got.Diffs) != 1 || got.Diffs[0] != want {
			t.Errorf("%s: got %s", tc.name, got.Text())
		}
	}
}

func TestStatusAndBodies(t *testing.T) {
	tests := []struct {
		name, why   string
		legacy, new Response
		want        []string // "kind path" of each difference, in order
		contains    string   // in the last difference's New
	}{
		{name: "status only", why: "same body, other status",
			legacy: resp(200, []byte("ok")), new: resp(201, []byte("ok")), want: []string{"status $.status"}},
		{name: "status and body", why: "a failing new side is not diffed structurally",
			legacy: resp(200, []byte(`{"a":1}`), "Content-Type", ctJSON), new: resp(500, []byte(`{"error":"x"}`), "Content-Type", ctJSON),
			want: []string{"status $.status", "body $.body"}, contains: "size:13"},
		{name: "binary", why: "unknown bytes: hash and size",
			legacy: resp(200, []byte{0, 1, 2}), new: resp(200, []byte{0, 1, 3}),
			want: []string{"body $.body"}, contains: "sha256:"},
		{name: "text", why: "first differing line",
			legacy: resp(200, []byte("a\nb\nc\n"), "Content-Type", "text/plain"),
			new:    resp(200, []byte("a\nb\nC\nd\n"), "Content-Type", "text/plain; charset=utf-8"),
			want:   []string{"header $.header.Content-Type", "body $.body"}, contains: `line 3 of 4: "C"`},
		{name: "text shorter", why: "a line missing at the end",
			legacy: resp(200, []byte("a\nb"), "Content-Type", "text/csv"), new: resp(200, []byte("a\n"), "Content-Type", "text/csv"),
			want: []string{"body $.body"}, contains: "line 2 of 1: <missing>"},
		{name: "image vs not", why: "new answers text where legacy sent an image",
			legacy: resp(200, encPNG(t, checkerboard(8, 8, color.NRGBA{A: 255}, color.NRGBA{R: 255, A: 255}))),
			new:    resp(200, []byte("oops")),
			want:   []string{"image $.image.format"}, contains: "not an image"},
		{name: "both undecodable", why: "PNG magic, garbage after: compare bytes",
			legacy: resp(200, []byte("\x89PNG\r\n\x1a\nAAAA")), new: resp(200, []byte("\x89PNG\r\n\x1a\nBBBB")),
			want: []string{"body $.body"}, contains: "neither image decodes"},
	}
	for _, tc := range tests {
		got := Compare(tc.legacy, tc.new, Settings{})
		keys := diffKeys(got.Diffs)
		if got.Outcome != OutcomeMismatch || strings.Join(keys, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s (%s): got %s", tc.name, tc.why, got.Text())
			continue
		}
		if last := got.Diffs[len(got.Diffs)-1]; !strings.Contains(last.New, tc.contains) {
			t.Errorf("%s (%s): %q does not contain %q", tc.name, tc.why, last.New, tc.contains)
		}
	}
}

func TestBodyHashUnset(t *testing.T) {
	// A caller that fills Body but not Size/SHA256 for both sides still gets
	// a byte comparison, never a false match on equal zero hashes.
	l := Response{Status: 200, Body: []byte("a"), Size: 1}
	n := Response{Status: 200, Body: []byte("b"), Size: 1}
	if got := Compare(l, n, Settings{}); got.Outcome != OutcomeMismatch {
		t.Errorf("got %s", got.Text())
	}
	n.Body = []byte("a")
	if got := Compare(l, n, Settings{}); got.Outcome != OutcomeMatch {
		t.Errorf("got %s", got.Text())
	}
}

func TestImageFormats(t *testing.T) {
	img := resize(photo(320, 240, 5), 160, 120, draw.BiLinear)
	enc := func(f func(*bytes.Buffer) error) []byte {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	bmpB := enc(func(b *bytes.Buffer) error { return bmp.Encode(b, img) })
	tiffRaw := enc(func(b *bytes.Buffer) error { return tiff.Encode(b, img, nil) })
	tiffDeflate := enc(func(b *bytes.Buffer) error {
		return tiff.Encode(b, img, &tiff.Options{Compression: tiff.Deflate, Predictor: true})
	})
	pngB := encPNG(t, img)
	for _, f := range []struct {
		b    []byte
		want string
	}{{bmpB, formatBMP}, {tiffRaw, formatTIFF}, {pngB, formatPNG}, {encWebP(t, checkerboard(8, 8, color.NRGBA{A: 255}, color.NRGBA{G: 9, A: 255})), formatWebP},
		{[]byte("BMW is not a bitmap"), ""}, {[]byte("GIF8"), ""}} {
		if got := sniffImage(f.b); got != f.want {
			t.Errorf("sniffImage(%.8q) = %q, want %q", f.b, got, f.want)
		}
	}
	tests := []struct {
		name, why   string
		legacy, new []byte
		want        string // "" for a match
	}{
		{"tiff compression", "deflate vs none: same pixels", tiffRaw, tiffDeflate, ""},
		{"bmp vs png", "same pixels, other format", pngB, bmpB, "image $.image.format"},
		{"bmp vs bmp", "identical", bmpB, append([]byte(nil), bmpB...), ""},
	}
	for _, tc := range tests {
		got := Compare(resp(200, tc.legacy), resp(200, tc.new), Settings{})
		if keys := strings.Join(diffKeys(got.Diffs), ","); keys != tc.want {
			t.Errorf("%s (%s): got %s", tc.name, tc.why, got.Text())
		}
	}
}

func TestMaxImagePixels(t *testing.T) {
	a := encPNG(t, photo(64, 64, 1))
	b := encPNG(t, shifted(photo(64, 64, 1), 5))
	got := Compare(resp(200, a), resp(200, b), Settings{MaxImagePixels: 64*64 - 1})
	if len(got.Diffs) != 1 || got.Diffs[0].Path != "$.body" || !strings.Contains(got.Diffs[0].New, "pixels not compared") {
		t.Errorf("over the limit: got %s", got.Text())
	}
	got = Compare(resp(200, a), resp(200, b), Settings{MaxImagePixels: 64 * 64})
	if strings.Join(diffKeys(got.Diffs), ",") != "image $.image.mean_shift" {
		t.Errorf("at the limit: got %s", got.Text())
	}
	// A header claiming a huge image is refused before any pixel is allocated.
	huge := image.NewGray(image.Rect(0, 0, 1, 1))
	hb := encPNG(t, huge)
	copy(hb[16:24], []byte{0, 1, 0, 0, 0, 1, 0, 0}) // IHDR 65536×65536
	binary.BigEndian.PutUint32(hb[29:33], crc32.ChecksumIEEE(hb[12:29]))
	got = Compare(resp(200, a), resp(200, hb), Settings{})
	if keys := strings.Join(diffKeys(got.Diffs), ","); keys != "image $.image.dimensions,body $.body" ||
		!strings.Contains(got.Diffs[1].New, "65536x65536, max_image_pixels 50000000") {
		t.Errorf("bomb: got %s", got.Text())
	}
}

func TestJPEGOrientation(t *testing.T) {
	j := encJPEG(t, photo(16, 16, 1), 90)
	for _, tc := range []struct {
		b    []byte
		want int
	}{
		{j, 0},
		{withOrientation(j, 6, false), 6},
		{withOrientation(j, 3, true), 3},
		{withOrientation(j, 9, true), 0}, // out of range
		{withOrientation(j, 6, false)[:30], 0},
		{[]byte{0xFF, 0xD8}, 0},
	} {
		if got := jpegOrientation(tc.b); got != tc.want {
			t.Errorf("jpegOrientation(%d bytes) = %d, want %d", len(tc.b), got, tc.want)
		}
	}
}

func TestGIFFrames(t *testing.T) {
	g := encGIF(t, photo(32, 32, 1), 3)
	if n, err := gifFrames(g); n != 3 || err != nil {
		t.Errorf("gifFrames = %d, %v; want 3, nil", n, err)
	}
	if n, err := gifFrames(g[:len(g)-1]); n != 3 || err == nil {
		t.Errorf("without trailer: %d, %v; want 3 and an error", n, err)
	}
	if n, _ := gifFrames(g[:40]); n != 0 {
		t.Errorf("truncated in the first frame: %d frames", n)
	}
}

// TestFastPathAllocs checks the promise that equal responses cost no
// allocation, noise headers and all.
func TestFastPathAllocs(t *testing.T) {
	body := encJPEG(t, photo(64, 64, 1), 90)
	l := resp(200, body, "Content-Type", ctJPEG, "Date", "a", "Cache-Control", "max-age=60", "Vary", "Accept", "Vary", "Origin", "Connection", "X-Hop", "X-Hop", "1")
	n := resp(200, body, "Cache-Control", "max-age=60", "Date", "b", "Content-Type", ctJPEG, "Vary", "Accept", "Vary", "Origin", "Server", "x")
	c, _ := New(Settings{IgnoreHeaders: []string{"X-Trace"}})
	var res Result
	allocs := testing.AllocsPerRun(100, func() { res = c.Compare(&l, &n) })
	if res.Outcome != OutcomeMatch || len(res.Diffs) != 0 {
		t.Fatalf("got %s", res.Text())
	}
	if allocs != 0 {
		t.Errorf("fast path allocates %.0f times per comparison", allocs)
	}
}
