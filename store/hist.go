package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/tandem-proxy/tandem/internal/latency"
)

// Latency histograms have internal/latency's geometry (microseconds, 1 µs
// to 1 h, 2 significant digits). The encoding below names that geometry
// and addEncoded refuses any other, so data written before the geometry
// moved to internal/latency (the same constants) still decodes; changing
// latency's constants would need a migration here.
const (
	histLowest  = latency.Lowest
	histHighest = latency.Highest
	histDigits  = latency.Digits
)

func newHist() *hdrhistogram.Histogram { return latency.New() }

func recordLatency(h *hdrhistogram.Histogram, d time.Duration) { latency.Record(h, d) }

// histFormat is the first byte of an encoded histogram.
const histFormat = 1

// encodeHist serialises h's Snapshot sparsely: a format byte, the
// geometry, then (index gap, count) uvarint pairs for non-zero counts. It
// is a few hundred bytes for a minute of traffic and, unlike the
// zlib-compressed V2 encoding, costs no compressor per write.
func encodeHist(h *hdrhistogram.Histogram) []byte {
	snap := h.Export()
	b := make([]byte, 0, 64)
	b = append(b, histFormat)
	b = binary.AppendUvarint(b, uint64(snap.LowestTrackableValue))
	b = binary.AppendUvarint(b, uint64(snap.HighestTrackableValue))
	b = binary.AppendUvarint(b, uint64(snap.SignificantFigures))
	b = binary.AppendUvarint(b, uint64(len(snap.Counts)))
	prev := -1
	for i, c := range snap.Counts {
		if c <= 0 {
			continue
		}
		b = binary.AppendUvarint(b, uint64(i-prev))
		b = binary.AppendUvarint(b, uint64(c))
		prev = i
	}
	return b
}

var errBadHist = errors.New("malformed latency histogram")

// histCounts is the length of the counts array of our geometry.
var histCounts = len(newHist().Export().Counts)

// decodeHist is encodeHist's inverse; nil for an empty input.
func decodeHist(b []byte) (*hdrhistogram.Histogram, error) {
	if len(b) == 0 {
		return nil, nil
	}
	counts := make([]int64, histCounts)
	if err := addEncoded(counts, b); err != nil {
		return nil, err
	}
	return importCounts(counts)
}

// importCounts makes a histogram of our geometry from counts.
func importCounts(counts []int64) (*hdrhistogram.Histogram, error) {
	snap := &hdrhistogram.Snapshot{
		LowestTrackableValue:  histLowest,
		HighestTrackableValue: histHighest,
		SignificantFigures:    histDigits,
		Counts:                counts,
	}
	if err := snap.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadHist, err)
	}
	return hdrhistogram.Import(snap), nil
}

// addEncoded adds the counts of the encoded histogram b, which must have
// our geometry, to counts (histCounts long). Summing the counts of
// histograms of one geometry is what Histogram.Merge does, without
// allocating a histogram per input; counts is left unchanged on error.
func addEncoded(counts []int64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if b[0] != histFormat {
		return fmt.Errorf("%w: format %d", errBadHist, b[0])
	}
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	var hdr [4]uint64
	for i := range hdr {
		v, ok := next()
		if !ok {
			return errBadHist
		}
		hdr[i] = v
	}
	if hdr[0] != uint64(histLowest) || hdr[1] != uint64(histHighest) || hdr[2] != histDigits || hdr[3] != uint64(len(counts)) {
		return fmt.Errorf("%w: geometry %d..%d/%d, %d counts", errBadHist, hdr[0], hdr[1], hdr[2], hdr[3])
	}
	n := int64(len(counts))
	type pair struct{ i, c int64 }
	var pairs [64]pair
	add := pairs[:0]
	idx := int64(-1) // index of the last count read
	for len(b) > 0 {
		gap, ok1 := next()
		c, ok2 := next()
		if !ok1 || !ok2 || gap == 0 || gap > uint64(n) || idx+int64(gap) >= n || c > 1<<50 {
			return errBadHist
		}
		idx += int64(gap)
		add = append(add, pair{idx, int64(c)})
	}
	for _, p := range add {
		counts[p.i] += p.c
	}
	return nil
}
