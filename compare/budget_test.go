package compare

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/imagefmt"
)

// pairCost is what comparing legacy with new reserves in a decode budget.
func pairCost(t *testing.T, legacy, new []byte) int64 {
	t.Helper()
	var n int64
	for _, b := range [][]byte{legacy, new} {
		s := readHeader(b, sniffImage(b))
		if s.err != nil {
			t.Fatal(s.err)
		}
		n += s.cost
	}
	return n
}

// Concurrent comparisons never reserve more than the budget; a pair that
// does not fit is refused, counted, and compared by hash and size with its
// reason; every reservation is returned.
func TestDecodeBudgetBoundsConcurrentDecodes(t *testing.T) {
	legacy := encPNG(t, noiseImage(400, 300, 1))
	new := encPNG(t, noiseImage(400, 300, 2))
	cost := pairCost(t, legacy, new)
	for _, tc := range []struct {
		name        string
		size        int64
		wait        time.Duration
		wantRefused bool
	}{
		// Room for one pair and a half: of 8 at once, some must be refused.
		{"no wait: refused", cost + cost/2, 0, true},
		// The same room and a long wait: every pair gets its turn.
		{"waiting: all decoded", cost + cost/2, time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewDecodeBudget(tc.size, tc.wait)
			c, err := New(Settings{}, WithDecodeBudget(b))
			if err != nil {
				t.Fatal(err)
			}
			l, n := resp(200, legacy), resp(200, new)
			const workers = 8
			results := make([]Result, workers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results[i] = c.Compare(&l, &n)
				}()
			}
			close(start)
			wg.Wait()
			refused := 0
			for _, r := range results {
				switch r.Limit {
				case LimitDecodeBudget:
					refused++
					if len(r.Diffs) != 1 || r.Diffs[0].Path != "$.body" || !strings.Contains(r.Diffs[0].New, "decode budget") {
						t.Errorf("refused pair: %+v, want one hash difference naming the budget", r.Diffs)
					}
				case "":
					if !hasPath(r, "$.image.psnr") {
						t.Errorf("decoded pair: %+v, want a psnr difference (the noise differs)", r.Diffs)
					}
				default:
					t.Errorf("limit %q", r.Limit)
				}
			}
			if got := b.Peak(); got > b.Size() || got < cost {
				t.Errorf("peak reservation %d, want within [%d, %d]", got, cost, b.Size())
			}
			if b.Used() != 0 {
				t.Errorf("%d bytes still reserved after every comparison", b.Used())
			}
			if int64(refused) != b.Refused() {
				t.Errorf("%d results refused, budget counted %d", refused, b.Refused())
			}
			if (refused > 0) != tc.wantRefused || refused == workers {
				t.Errorf("%d of %d refused", refused, workers)
			}
		})
	}
}

func hasPath(r Result, path string) bool {
	for _, d := range r.Diffs {
		if d.Path == path {
			return true
		}
	}
	return false
}

// A pair larger than the whole budget is refused at once, whatever the
// wait, and never decoded; so are the bombs of the issue under a 256 MiB
// budget: a lossless WebP of 7000×7000 in a few dozen bytes, and a 16-bit PNG and TIFF
// whose headers say 7000×7000 (an 8-bit RGBA one, 220 MiB, fits).
func TestDecodeBudgetRefusesWhatNeverFits(t *testing.T) {
	webpBomb, err := imagefmt.EncodeWebP(image1x1(7000, 7000))
	if err != nil {
		t.Fatal(err)
	}
	if len(webpBomb) > 64 {
		t.Fatalf("the WebP bomb is %d bytes", len(webpBomb))
	}
	small := encPNG(t, noiseImage(64, 64, 3))
	b := NewDecodeBudget(256<<20, time.Hour)
	c, err := New(Settings{}, WithDecodeBudget(b))
	if err != nil {
		t.Fatal(err)
	}
	for name, bomb := range map[string][]byte{
		"webp 7000x7000": webpBomb,
		"png 16-bit":     pngHeader16(7000, 7000),
		"tiff 16-bit":    tiffHeader16(7000, 7000),
	} {
		t.Run(name, func(t *testing.T) {
			l, n := resp(200, small), resp(200, bomb)
			start := time.Now()
			r := c.Compare(&l, &n)
			if r.Limit != LimitDecodeBudget || time.Since(start) > time.Minute {
				t.Fatalf("limit %q after %v, diffs %+v; want decode_budget at once", r.Limit, time.Since(start), r.Diffs)
			}
		})
	}
	if b.Peak() != 0 {
		t.Fatalf("reserved %d bytes for pairs that never fit", b.Peak())
	}
	_, err = HeatMap(small, webpBomb, 0, b)
	if !errors.Is(err, ErrDecodeBudget) {
		t.Fatalf("heat map of a bomb: %v, want ErrDecodeBudget", err)
	}
}

// image1x1 is a w×h image of one colour, which EncodeWebP writes in a few
// bytes.
func image1x1(w, h int) *image.NRGBA { return image.NewNRGBA(image.Rect(0, 0, w, h)) }

// pngHeader16 is a PNG whose IHDR claims a w×h 16-bit RGBA image and which
// has no pixel data.
func pngHeader16(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 16, 6
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// tiffHeader16 is a little-endian TIFF whose first IFD describes a w×h
// 16-bit RGB image, uncompressed, in one strip that is not there.
func tiffHeader16(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("II*\x00")
	le := func(v any) {
		switch v := v.(type) {
		case uint16:
			b.Write([]byte{byte(v), byte(v >> 8)})
		case uint32:
			b.Write([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
		}
	}
	le(uint32(8))
	type entry struct {
		tag, typ uint16
		count    uint32
		value    uint32
	}
	bpsOffset := uint32(8 + 2 + 9*12 + 4)
	entries := []entry{
		{256, 4, 1, w},         // ImageWidth
		{257, 4, 1, h},         // ImageLength
		{258, 3, 3, bpsOffset}, // BitsPerSample 16,16,16
		{259, 3, 1, 1},         // Compression none
		{262, 3, 1, 2},         // Photometric RGB
		{273, 4, 1, bpsOffset + 6},
		{277, 3, 1, 3}, // SamplesPerPixel
		{278, 4, 1, h}, // RowsPerStrip
		{279, 4, 1, w * h * 6},
	}
	le(uint16(len(entries)))
	for _, e := range entries {
		le(e.tag)
		le(e.typ)
		le(e.count)
		le(e.value)
	}
	le(uint32(0))
	le(uint16(16))
	le(uint16(16))
	le(uint16(16))
	return b.Bytes()
}

// checkShape counts values (the document, members, elements) outside
// strings, and refuses past the bound.
func TestJSONNodeCount(t *testing.T) {
	for _, tc := range []struct {
		doc string
		max int64
		ok  bool
		why string
	}{
		{`{"a":1,"b":2}`, 3, true, "the document and two members"},
		{`{"a":1,"b":2,"c":3}`, 3, false, "one member too many"},
		{`[1,2,[3,4]]`, 6, true, "nested arrays: 1 + 3 + 2"},
		{`[1,2,[3,4]]`, 5, false, "nested arrays count their elements too"},
		{`{"a":"x,y,z,[{"}`, 2, true, "commas and brackets inside strings are not values"},
		{`{"a":"\",\",\","}`, 2, true, "escaped quotes do not end the string"},
	} {
		err := checkShape([]byte(tc.doc), 64, tc.max)
		if (err == nil) != tc.ok {
			t.Errorf("%s (max %d): %v; %s", tc.doc, tc.max, err, tc.why)
		}
	}
}

// A 700,000-key JSON document is compared by hash and size, with the reason,
// without go-cmp (which took 9.7 s on it): the whole comparison costs a scan.
func TestJSONNodeBoundComparesByHash(t *testing.T) {
	doc := func(v int) []byte {
		var b bytes.Buffer
		b.WriteByte('{')
		for i := range 700_000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":%d`, i, v)
		}
		b.WriteByte('}')
		return b.Bytes()
	}
	l, n := resp(200, doc(1), "Content-Type", "application/json"), resp(200, doc(2), "Content-Type", "application/json")
	c, err := New(Settings{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := c.Compare(&l, &n)
	took := time.Since(start)
	if r.Outcome != OutcomeMismatch || r.Limit != LimitJSONNodes || len(r.Diffs) != 1 || r.Diffs[0].Path != "$.body" ||
		!strings.Contains(r.Diffs[0].New, "max_json_nodes (100000)") {
		t.Fatalf("result %+v", r)
	}
	t.Logf("%d-byte documents compared in %v", len(l.Body), took)

	// Under the bound, the same documents compare structurally.
	c, err = New(Settings{MaxJSONNodes: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	small := func(v int) Response {
		return resp(200, []byte(fmt.Sprintf(`{"a":%d,"b":[1,2]}`, v)), "Content-Type", "application/json")
	}
	l, n = small(1), small(2)
	if r := c.Compare(&l, &n); r.Limit != "" || !hasPath(r, "$.a") {
		t.Fatalf("small documents: %+v", r)
	}
}
