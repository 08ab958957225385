package store

import (
	"testing"
	"time"
)

func TestHistRoundTrip(t *testing.T) {
	h := newHist()
	for _, d := range []time.Duration{0, time.Microsecond, 150 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, time.Second, 2 * time.Hour} {
		recordLatency(h, d)
	}
	b := encodeHist(h)
	got, err := decodeHist(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(h) {
		t.Fatalf("round trip changed the histogram: %v vs %v", got.Export().Counts, h.Export().Counts)
	}
	if got.Max() < int64(time.Hour/time.Microsecond)*99/100 {
		t.Errorf("2 h was not clamped to 1 h: max %d", got.Max())
	}
	if len(b) > 64 {
		t.Errorf("encoding of 7 values is %d bytes", len(b))
	}
	if h, err := decodeHist(nil); h != nil || err != nil {
		t.Errorf("decodeHist(nil) = %v, %v", h, err)
	}
}

func FuzzDecodeHist(f *testing.F) {
	h := newHist()
	recordLatency(h, 5*time.Millisecond)
	recordLatency(h, 7*time.Second)
	f.Add(encodeHist(h))
	f.Add(encodeHist(newHist()))
	f.Add([]byte{histFormat, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHist(b)
		if err != nil || h == nil {
			return
		}
		// Whatever decodes re-encodes to the same histogram.
		h2, err := decodeHist(encodeHist(h))
		if err != nil || !h2.Equals(h) {
			t.Fatalf("re-decode: %v", err)
		}
		h.ValueAtQuantile(99)
	})
}
