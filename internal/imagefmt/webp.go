package imagefmt

import (
	"encoding/binary"
	"fmt"
	"image"
	"math/bits"
)

// EncodeWebP encodes img as a lossless WebP file (a RIFF "VP8L" chunk).
//
// golang.org/x/image has a WebP decoder but no encoder, so the sample
// carries this minimal one. It uses no transform, no colour cache and one
// set of prefix codes: a channel that holds one value costs no bits, any
// other channel is written as fixed 8-bit codes. The files are therefore
// about as large as the raw pixels (3 or 4 bytes a pixel), but they are
// valid VP8L that any decoder reads, which is all the corpus and tests need.
func EncodeWebP(img *image.NRGBA) ([]byte, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < 1 || h < 1 || w > 1<<14 || h > 1<<14 {
		return nil, fmt.Errorf("webp: cannot encode a %dx%d image", w, h)
	}
	// Channels in the order of the prefix codes (green, red, blue,
	// alpha), as offsets into an NRGBA pixel; single[c] is set when
	// channel c holds one value throughout, which is then value[c].
	offsets := [4]int{1, 0, 2, 3}
	var single [4]bool
	var value [4]uint8
	for c, off := range offsets {
		single[c] = true
		value[c] = img.Pix[img.PixOffset(b.Min.X, b.Min.Y)+off]
	scan:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := img.Pix[img.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				if row[4*x+off] != value[c] {
					single[c] = false
					break scan
				}
			}
		}
	}
	alphaUsed := !single[3] || value[3] != 0xff

	var bw bitWriter
	bw.write(0x2f, 8) // VP8L signature
	bw.write(uint32(w-1), 14)
	bw.write(uint32(h-1), 14)
	bw.write(b2u(alphaUsed), 1)
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes
	alphabets := [4]int{256 + 24, 256, 256, 256}
	for c := range 4 {
		if single[c] {
			bw.write(1, 1) // simple code
			bw.write(0, 1) // one symbol
			bw.write(1, 1) // of 8 bits
			bw.write(uint32(value[c]), 8)
			continue
		}
		// Normal code: the code-length code gives symbols 0 and 8 one bit
		// each; then every literal 0..255 gets length 8 and the rest 0.
		bw.write(0, 1)
		bw.write(12-4, 4) // 12 code-length code lengths, up to symbol 8
		// Order: 17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8.
		for i := range 12 {
			if i == 2 || i == 11 {
				bw.write(1, 3)
			} else {
				bw.write(0, 3)
			}
		}
		bw.write(0, 1) // max_symbol = alphabet size
		for s := range alphabets[c] {
			bw.write(b2u(s < 256), 1) // code of symbol 8 is 1, of symbol 0 is 0
		}
	}
	// Distance code: simple, one 1-bit symbol 0 (never used).
	bw.write(1, 1)
	bw.write(0, 1)
	bw.write(0, 1)
	bw.write(0, 1)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := img.Pix[img.PixOffset(b.Min.X, y):]
		for x := 0; x < w; x++ {
			for c, off := range offsets {
				if !single[c] {
					// Canonical 8-bit code of literal v is v, sent most
					// significant bit first.
					bw.write(uint32(bits.Reverse8(row[4*x+off])), 8)
				}
			}
		}
	}
	payload := bw.bytes()
	pad := len(payload) & 1
	out := make([]byte, 0, 20+len(payload)+pad)
	out = append(out, "RIFF"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(4+8+len(payload)+pad))
	out = append(out, "WEBPVP8L"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(payload)))
	out = append(out, payload...)
	if pad == 1 {
		out = append(out, 0)
	}
	return out, nil
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// bitWriter writes bits least significant first, as VP8L reads them.
type bitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) write(v uint32, n uint) {
	w.acc |= uint64(v) << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.nbits > 0 {
		return append(w.buf, byte(w.acc))
	}
	return w.buf
}
