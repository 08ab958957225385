package compare

import "testing"

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
