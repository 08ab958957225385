package compare

import (
	"errors"

	"github.com/tandem-proxy/tandem/internal/imagefmt"
)

// Image formats as named in differences.
const (
	formatJPEG = imagefmt.JPEG
	formatPNG  = imagefmt.PNG
	formatGIF  = imagefmt.GIF
	formatWebP = imagefmt.WebP
	formatBMP  = imagefmt.BMP
	formatTIFF = imagefmt.TIFF
)

// The format and orientation readers are shared with the sample services.
var (
	sniffImage      = imagefmt.Sniff
	jpegOrientation = imagefmt.JPEGOrientation
)

var errGIFTruncated = errors.New("gif: truncated")

// gifFrames counts the image frames of a GIF by walking its block structure,
// without decoding any pixels. On a malformed or truncated file it returns
// the frames complete so far with an error.
func gifFrames(b []byte) (int, error) {
	if len(b) < 13 {
		return 0, errGIFTruncated
	}
	i := 13
	if b[10]&0x80 != 0 { // global colour table
		i += 3 << (int(b[10]&7) + 1)
	}
	frames := 0
	skipSubBlocks := func() bool {
		for i < len(b) {
			n := int(b[i])
			i++
			if n == 0 {
				return true
			}
			i += n
		}
		return false
	}
	for i < len(b) {
		switch b[i] {
		case 0x21: // extension: label, sub-blocks
			i += 2
			if !skipSubBlocks() {
				return frames, errGIFTruncated
			}
		case 0x2C: // image descriptor, local colour table, LZW code size, sub-blocks
			if i+10 > len(b) {
				return frames, errGIFTruncated
			}
			packed := b[i+9]
			i += 10
			if packed&0x80 != 0 {
				i += 3 << (int(packed&7) + 1)
			}
			i++ // LZW minimum code size
			if !skipSubBlocks() {
				return frames, errGIFTruncated
			}
			frames++
		case 0x3B: // trailer
			return frames, nil
		default:
			return frames, errors.New("gif: bad block")
		}
	}
	return frames, errGIFTruncated
}
