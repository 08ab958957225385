package testbackend

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
)

// PatternReader returns a reader of exactly n deterministic pseudo-random
// bytes (none if n <= 0) selected by seed. Memory use is O(1) whatever n is,
// and the bytes depend only on (seed, n, offset), so the same call always
// yields the same stream. Distinct seeds give unrelated streams; the stream
// for a smaller n is a prefix of the stream for a larger one.
func PatternReader(seed, n int64) io.Reader {
	return &patternReader{key: splitmix(uint64(seed)), n: max(n, 0)}
}

// PatternSHA256 returns the hex SHA-256 of PatternReader(seed, n), computed by
// streaming.
func PatternSHA256(seed, n int64) string {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, PatternReader(seed, n), make([]byte, copyBufSize)); err != nil {
		panic("BUG: testbackend: pattern reader failed: " + err.Error())
	}
	return hex.EncodeToString(h.Sum(nil))
}

type patternReader struct {
	key    uint64 // derived from the seed
	off, n int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if rem := r.n - r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	r.fill(p)
	r.off += int64(len(p))
	return len(p), nil
}

// fill writes the pattern bytes for [r.off, r.off+len(p)) into p. Byte i of
// the stream is byte i%8 (little-endian) of word(i/8).
func (r *patternReader) fill(p []byte) {
	w := uint64(r.off) / 8
	var tmp [8]byte
	i := 0
	if skip := int(r.off % 8); skip != 0 {
		binary.LittleEndian.PutUint64(tmp[:], r.word(w))
		i = copy(p, tmp[skip:])
		w++
	}
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], r.word(w))
		w++
	}
	if i < len(p) {
		binary.LittleEndian.PutUint64(tmp[:], r.word(w))
		copy(p[i:], tmp[:])
	}
}

func (r *patternReader) word(i uint64) uint64 {
	return splitmix(r.key + i*0x9e3779b97f4a7c15)
}

// splitmix is the SplitMix64 finaliser: a cheap bijective 64-bit mix.
func splitmix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
