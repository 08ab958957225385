package compare

import (
	"fmt"
	"strings"
	"testing"
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
