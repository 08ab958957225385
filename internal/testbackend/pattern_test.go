package testbackend

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

func readPattern(t *testing.T, seed, n int64) []byte {
	t.Helper()
	b, err := io.ReadAll(PatternReader(seed, n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPatternReaderLengthAndDeterminism(t *testing.T) {
	tests := []struct {
		name string
		n    int64
		want int
	}{
		{"negative", -5, 0},                // n <= 0 is empty
		{"zero", 0, 0},                     // empty
		{"one", 1, 1},                      // less than a word
		{"word", 8, 8},                     // exactly one word
		{"unaligned", 1001, 1001},          // ends mid-word
		{"multi-buffer", 200_003, 200_003}, // spans several reads of the copy buffer
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := readPattern(t, 9, tt.n), readPattern(t, 9, tt.n)
			if len(a) != tt.want {
				t.Fatalf("len = %d, want %d", len(a), tt.want)
			}
			if !bytes.Equal(a, b) {
				t.Error("two readers with the same seed differ")
			}
			if got := PatternSHA256(9, tt.n); got != hexSHA256(a) {
				t.Errorf("PatternSHA256 = %s, want %s (hash of the reader's bytes)", got, hexSHA256(a))
			}
		})
	}
}

func TestPatternSeedsDifferAndPrefix(t *testing.T) {
	a, b := readPattern(t, 1, 4096), readPattern(t, 2, 4096)
	if bytes.Equal(a, b) {
		t.Error("seeds 1 and 2 give the same bytes")
	}
	if bytes.Equal(a[:2048], a[2048:]) {
		t.Error("pattern repeats within 4 KiB")
	}
	if short := readPattern(t, 1, 100); !bytes.Equal(short, a[:100]) {
		t.Error("a shorter stream is not a prefix of a longer one")
	}
	if PatternSHA256(1, 4096) == PatternSHA256(2, 4096) {
		t.Error("different seeds hash the same")
	}
}

// TestPatternReaderOddReads checks the reader against io.Reader rules with
// odd-sized, one-byte and half reads, which exercise unaligned offsets.
func TestPatternReaderOddReads(t *testing.T) {
	want := readPattern(t, 5, 1037)
	if err := iotest.TestReader(PatternReader(5, 1037), want); err != nil {
		t.Error(err)
	}
	got, err := io.ReadAll(iotest.OneByteReader(PatternReader(5, 1037)))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("one-byte reads differ from whole reads (err %v)", err)
	}
}

// TestPatternGolden pins the bytes: tests elsewhere may hard-code hashes, so
// the pattern must not change silently.
func TestPatternGolden(t *testing.T) {
	const want = "a77d50f94db98e9ba972befc21a848ec29b65af4f5fc1cbab60dcd1b18479d88"
	if got := PatternSHA256(1, 1000); got != want {
		t.Errorf("PatternSHA256(1, 1000) = %s, want %s", got, want)
	}
}

func BenchmarkPatternReader(b *testing.B) {
	buf := make([]byte, copyBufSize)
	b.SetBytes(copyBufSize)
	r := PatternReader(1, 1<<62)
	for b.Loop() {
		if _, err := r.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
