package compare

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkJSONTape parses the 10 KiB document of BenchmarkEqualJSON10KiB
// onto a warm tape: the decoding part of a JSON comparison.
func BenchmarkJSONTape(b *testing.B) {
	doc := jsonDoc(false, true)
	var t jsonTape
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if err := t.parse(doc, DefaultMaxJSONBytes, DefaultMaxJSONDepth, DefaultMaxJSONNodes); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiffJSONThroughout compares two documents of 1000 elements that
// all differ (TestJSONDiffCap's): past the cap of listed differences, the
// comparison stops.
func BenchmarkDiffJSONThroughout(b *testing.B) {
	var x, y strings.Builder
	x.WriteString(`{"items":[`)
	y.WriteString(`{"items":[`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			x.WriteByte(',')
			y.WriteByte(',')
		}
		fmt.Fprintf(&x, `{"w":%d,"h":1}`, i)
		fmt.Fprintf(&y, `{"h":1,"w":%d}`, i+1)
	}
	x.WriteString(`],"other":1}`)
	y.WriteString(`],"other":2}`)
	benchJSON(b, resp(200, []byte(x.String()), "Content-Type", ctJSON), resp(200, []byte(y.String()), "Content-Type", ctJSON))
}

// BenchmarkJSONWalkEqual walks two parsed tapes of BenchmarkEqualJSON10KiB's
// documents: the comparing part of a JSON match.
func BenchmarkJSONWalkEqual(b *testing.B) {
	c, err := New(Settings{})
	if err != nil {
		b.Fatal(err)
	}
	var s jsonScratch
	if s.l.parse(jsonDoc(false, false), DefaultMaxJSONBytes, DefaultMaxJSONDepth, DefaultMaxJSONNodes) != nil ||
		s.n.parse(jsonDoc(false, true), DefaultMaxJSONBytes, DefaultMaxJSONDepth, DefaultMaxJSONNodes) != nil {
		b.Fatal("parse")
	}
	w := jwalker{c: c, a: &s.l, b: &s.n, s: &s}
	b.ReportAllocs()
	for b.Loop() {
		if !w.equal(0, 0) {
			b.Fatal("not equal")
		}
	}
}
