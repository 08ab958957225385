package store

import (
	"bytes"
	"encoding/hex"
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

// A histogram stored before the geometry moved to internal/latency still
// decodes to the same counts and percentiles: the bytes below are what
// encodeHist wrote for these latencies at commit 19ab645 (geometry 1..3.6e9
// µs, 2 digits, 3328 counts).
func TestHistStoredBeforeLatencyPackageDecodes(t *testing.T) {
	old, err := hex.DecodeString("010180c8ceb40d02801a0201950101a50402850201b40401800201e20b01")
	if err != nil {
		t.Fatal(err)
	}
	h, err := decodeHist(old)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if h.TotalCount() != 8 || h.ValueAtQuantile(50) != 3007 || h.ValueAtQuantile(99) != 3607101439 {
		t.Errorf("decoded: %d values, p50 %d, p99 %d; want 8, 3007, 3607101439", h.TotalCount(), h.ValueAtQuantile(50), h.ValueAtQuantile(99))
	}
	now := newHist()
	for _, d := range []time.Duration{0, 150 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, 12345 * time.Microsecond, 250 * time.Millisecond, time.Second, 2 * time.Hour} {
		recordLatency(now, d)
	}
	if got := encodeHist(now); !bytes.Equal(got, old) {
		t.Errorf("the encoding changed:\n now %x\n was %x", got, old)
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
