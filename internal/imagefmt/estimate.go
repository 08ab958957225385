package imagefmt

import (
	"encoding/binary"
	"image"
	"image/color"
)

// DecodedBytes estimates, from the header alone, the memory that decoding b
// allocates: the pixels of the image the decoder returns, in the type it
// returns (cfg.ColorModel, from the format's DecodeConfig), plus what the
// decoder allocates beside them. It errs high, never low, for the decoders
// of Codecs (TestDecodedBytesCoversDecode measures them):
//   - JPEG: each component's plane, in whole MCUs, and the RGBA it is
//     converted to (a grey image is returned as its plane); a progressive
//     file also keeps every component's DCT coefficients (64 int32 per 8×8
//     block) until the last scan;
//   - PNG: the model of the colour type, widened to NRGBA(64) where a tRNS
//     chunk may make the decoder switch; an interlaced file decodes its
//     seven passes into images of their own before merging;
//   - GIF: the first frame, one byte a pixel of the logical screen;
//   - WebP: lossless (VP8L) holds the ARGB pixels and the transformed copy;
//     lossy holds YCbCr 4:2:0 and, with alpha, an alpha plane that may be
//     decoded as lossless ARGB (and its transformed copy), and then the
//     NRGBA it is converted to;
//   - BMP: the model, and one row;
//   - TIFF: each strip's decompressed samples, read in a buffer that grows
//     by doubling, beside the image (a 16-bit RGBA TIFF allocates 36 bytes
//     a pixel in all).
//
// A non-positive size (an empty or negative dimension) returns 0; the caller
// refuses such images anyway. The result saturates instead of overflowing.
func DecodedBytes(b []byte, format string, cfg image.Config) int64 {
	return DecodedBytesScaled(b, format, cfg, 1)
}

// DecodedBytesScaled is DecodedBytes for DecodeScaled(b, format, denom).
func DecodedBytesScaled(b []byte, format string, cfg image.Config, denom int) int64 {
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return 0
	}
	if format == JPEG {
		est := jpegBytes(b, cfg, denom)
		return min(est+est/8+decoderOverhead, 1<<62)
	}
	px := int64(cfg.Width) * int64(cfg.Height)
	per := ModelBytes(cfg.ColorModel) // bytes a pixel of the returned image, times 2
	switch format {
	case PNG:
		depth16, interlaced := pngHeader(b)
		switch _, paletted := cfg.ColorModel.(color.Palette); {
		case paletted:
			per = 2 * 1
		case depth16:
			per = 2 * 8
		default:
			per = 2 * 4 // 8-bit gray with tRNS decodes as NRGBA
		}
		if interlaced {
			per *= 2
		}
	case GIF:
		per = 2 * 1
	case WebP:
		// The decoder's own (VP8L: ARGB and its transformed copy; VP8:
		// planes and, with alpha, the alpha plane decoded as ARGB with its
		// copy), then the NRGBA a lossy file is converted to; scaled, the
		// 1/denom² RGBA instead, and one row.
		var decoder int64
		switch cfg.ColorModel {
		case color.NRGBAModel: // VP8L
			decoder = 2 * 8
		case color.NYCbCrAModel: // VP8X with alpha
			decoder = 2*2 + 1 + 2*4 + 2*4
		default: // VP8: 4:2:0
			decoder = 2*1 + 1
		}
		if denom > 1 {
			d := int64(denom) * int64(denom)
			est := saturatingMul(px, decoder)/2 + saturatingMul(px, 4)/d + 8*int64(cfg.Width)
			return min(est+est/8+decoderOverhead, 1<<62)
		}
		per = decoder
		if cfg.ColorModel != color.NRGBAModel {
			per += 2 * 4
		}
	case BMP:
		per = max(per, 2*1)
	case TIFF:
		// The image, and a compressed strip's samples (at most one image's
		// worth: no TIFF sample layout is wider than its model) read by
		// io.ReadAll, whose doubling buffer allocates 3.5 times that in all.
		per *= 5
	}
	// An eighth more for rows, tables and rounding to whole blocks, and a
	// fixed part for the decompressor's window and the decoder itself.
	est := saturatingMul(px, per) / 2
	return min(est+est/8+decoderOverhead, 1<<62)
}

// decoderOverhead is the part of a decode's memory that does not grow with
// its pixels: zlib and LZW windows, Huffman tables, palettes.
const decoderOverhead = 256 << 10

// ModelBytes returns twice the bytes a pixel of an image in model m takes
// (twice, so that 4:2:0 YCbCr's 1.5 is whole); unknown models count as
// 16-bit RGBA.
func ModelBytes(m color.Model) int64 {
	if _, ok := m.(color.Palette); ok {
		return 2 * 1
	}
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 2 * 1
	case color.Gray16Model, color.Alpha16Model:
		return 2 * 2
	case color.YCbCrModel:
		return 2 * 3
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 2 * 4
	}
	return 2 * 8
}

func saturatingMul(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > (1<<62)/b {
		return 1 << 62
	}
	return a * b
}

// jpegBytes is what the JPEG decoder allocates at 1/denom: the planes
// (each component's blocks at its IDCT size, as jpeg's makeImg lays them
// out), the RGBA output, and a progressive file's coefficients.
func jpegBytes(b []byte, cfg image.Config, denom int) int64 {
	progressive, comps, hv := jpegFrame(b)
	maxH, maxV := max(hv[0][0], 1), max(hv[0][1], 1)
	if comps == 1 {
		maxH, maxV = 1, 1
	}
	mxx := (int64(cfg.Width) + 8*int64(maxH) - 1) / (8 * int64(maxH))
	myy := (int64(cfg.Height) + 8*int64(maxV) - 1) / (8 * int64(maxV))
	minSS := 8 / max(denom, 1)
	var total int64
	for i := 0; i < comps; i++ {
		h, v := max(hv[i][0], 1), max(hv[i][1], 1)
		if comps == 1 {
			h, v = 1, 1
		}
		ss := minSS
		for ss < 8 && (maxH*minSS)%(h*ss*2) == 0 && (maxV*minSS)%(v*ss*2) == 0 {
			ss *= 2
		}
		blocks := saturatingMul(mxx*int64(h), myy*int64(v))
		total += saturatingMul(blocks, int64(ss*ss))
		if progressive {
			total += saturatingMul(blocks, 64*4)
		}
	}
	if comps != 1 {
		w := (int64(cfg.Width) + int64(denom) - 1) / int64(denom)
		h := (int64(cfg.Height) + int64(denom) - 1) / int64(denom)
		total += saturatingMul(w, 4*h)
	}
	return min(total, 1<<62)
}

// jpegFrame reads a JPEG's frame header: whether it is progressive (SOF2),
// how many components it has and their sampling factors (h, v). Unknown:
// baseline, 3 components of 2×2, as many bytes as any layout takes.
func jpegFrame(b []byte) (progressive bool, comps int, hv [4][2]int) {
	worst := [4][2]int{{2, 2}, {2, 2}, {2, 2}, {2, 2}}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return false, 3, worst
		}
		marker := b[i+1]
		switch {
		case marker == 0xFF:
			i++
			continue
		case marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7):
			i += 2
			continue
		case marker == 0xDA || marker == 0xD9:
			return false, 3, worst
		}
		n := int(binary.BigEndian.Uint16(b[i+2 : i+4]))
		if n < 2 || i+2+n > len(b) {
			return false, 3, worst
		}
		if marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC {
			progressive = marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE
			if n < 8 {
				return progressive, 3, worst
			}
			comps = int(b[i+9])
			if comps < 1 || comps > 4 || n < 8+3*comps {
				return progressive, 3, worst
			}
			for c := 0; c < comps; c++ {
				f := b[i+11+3*c]
				hv[c] = [2]int{int(f >> 4), int(f & 0x0f)}
			}
			return progressive, comps, hv
		}
		i += 2 + n
	}
	return false, 3, worst
}

// pngHeader reads a PNG's IHDR: whether its samples are 16-bit and whether
// it is interlaced. b is known to start with the PNG signature.
func pngHeader(b []byte) (depth16, interlaced bool) {
	// signature (8), length (4), "IHDR" (4), width, height (8), depth, colour
	// type, compression, filter, interlace.
	if len(b) < 29 || string(b[12:16]) != "IHDR" {
		return true, true
	}
	return b[24] == 16, b[28] != 0
}
