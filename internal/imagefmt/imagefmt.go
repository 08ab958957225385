// Package imagefmt identifies image formats by their magic bytes, reads
// the EXIF orientation of JPEGs, estimates what decoding costs, and decodes
// (Codecs) to the pixels the formats' reference decoders produce: lossy
// WebP is converted from its limited-range Y'CbCr as libwebp does
// (decodeWebP). reference_test.go checks every format against dwebp,
// djpeg and ImageMagick on a corpus made by real encoders (testdata/ref).
// It is pure (no I/O) and shared by the comparer and the sample media
// services.
package imagefmt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/png"

	"github.com/tandem-proxy/tandem/internal/imagefmt/jpeg"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// Image formats, as Sniff names them.
const (
	JPEG = "jpeg"
	PNG  = "png"
	GIF  = "gif"
	WebP = "webp"
	BMP  = "bmp"
	TIFF = "tiff"
)

// Sniff names the image format of b from its magic bytes, or returns ""
// when b is not one of the formats this package decodes.
func Sniff(b []byte) string {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return JPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return PNG
	case bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a")):
		return GIF
	case len(b) >= 12 && bytes.HasPrefix(b, []byte("RIFF")) && string(b[8:12]) == "WEBP":
		return WebP
	case bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*")):
		return TIFF
	case len(b) >= 18 && b[0] == 'B' && b[1] == 'M':
		// "BM" alone is too weak (text starts with it); require a known
		// DIB header size as well.
		switch binary.LittleEndian.Uint32(b[14:18]) {
		case 12, 40, 52, 56, 64, 108, 124:
			return BMP
		}
	}
	return ""
}

// JPEGOrientation returns the EXIF Orientation tag (1..8) of a JPEG, read
// from the IFD0 of its APP1 "Exif" segment, or 0 when there is none or it
// cannot be read. It reads at most the segments before the first scan.
func JPEGOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 0
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 0
		}
		marker := b[i+1]
		switch {
		case marker == 0xFF: // fill byte
			i++
			continue
		case marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7):
			i += 2 // no length
			continue
		case marker == 0xDA || marker == 0xD9: // start of scan, end of image
			return 0
		}
		n := int(binary.BigEndian.Uint16(b[i+2 : i+4]))
		if n < 2 || i+2+n > len(b) {
			return 0
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			if o, err := exifOrientation(seg[6:]); err == nil {
				return o
			}
			return 0
		}
		i += 2 + n
	}
	return 0
}

var errNoOrientation = errors.New("no orientation tag")

// exifOrientation reads the Orientation tag (0x0112) from the IFD0 of a TIFF
// structure (the body of an Exif segment).
func exifOrientation(t []byte) (int, error) {
	if len(t) < 8 {
		return 0, errNoOrientation
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0, errNoOrientation
	}
	if bo.Uint16(t[2:4]) != 42 {
		return 0, errNoOrientation
	}
	off := int64(bo.Uint32(t[4:8]))
	if off < 8 || off+2 > int64(len(t)) {
		return 0, errNoOrientation
	}
	count := int64(bo.Uint16(t[off : off+2]))
	for k := int64(0); k < count; k++ {
		e := off + 2 + 12*k
		if e+12 > int64(len(t)) {
			break
		}
		tag, typ := bo.Uint16(t[e:e+2]), bo.Uint16(t[e+2:e+4])
		if tag != 0x0112 {
			continue
		}
		if typ != 3 || bo.Uint32(t[e+4:e+8]) != 1 { // SHORT, count 1
			return 0, errNoOrientation
		}
		if o := int(bo.Uint16(t[e+8 : e+10])); o >= 1 && o <= 8 {
			return o, nil
		}
		return 0, errNoOrientation
	}
	return 0, errNoOrientation
}

// Codec reads one format from bytes: its header only (Config, cheap, to
// refuse decode bombs before any pixel buffer exists) or the whole image.
// A GIF decodes to its first frame.
type Codec struct {
	Config func([]byte) (image.Config, error)
	Decode func([]byte) (image.Image, error)
}

// Codecs maps every format Sniff names to its codec.
var Codecs = map[string]Codec{
	JPEG: {
		func(b []byte) (image.Config, error) { return jpeg.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) },
	},
	PNG: {
		func(b []byte) (image.Config, error) { return png.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) },
	},
	GIF: {
		func(b []byte) (image.Config, error) { return gif.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return gif.Decode(bytes.NewReader(b)) },
	},
	WebP: {
		func(b []byte) (image.Config, error) { return webp.DecodeConfig(bytes.NewReader(b)) },
		decodeWebP,
	},
	BMP: {
		func(b []byte) (image.Config, error) { return bmp.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return bmp.Decode(bytes.NewReader(b)) },
	},
	TIFF: {
		func(b []byte) (image.Config, error) { return tiff.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return tiff.Decode(bytes.NewReader(b)) },
	},
}

// ScaleDenom returns the largest N of 8, 4, 2 for which DecodeScaled decodes
// a width×height image of format at 1/N to at least minW×minH (ScaledSize),
// or 1 (full size) when none does or the format has no reduced decoding.
// JPEG and WebP have: JPEG's IDCT computes 8/N samples a block, as
// libjpeg's scale_denom does; WebP is converted and box-filtered a row at a
// time.
func ScaleDenom(format string, width, height, minW, minH int) int {
	if format != JPEG && format != WebP {
		return 1
	}
	for _, n := range [...]int{8, 4, 2} {
		if w, h := ScaledSize(format, width, height, n); w >= minW && h >= minH {
			return n
		}
	}
	return 1
}

// ScaledSize is the size of DecodeScaled's image: for JPEG each dimension
// divided by denom, rounded up (libjpeg's jdiv_round_up), for WebP rounded
// down (whole blocks), otherwise the full size.
func ScaledSize(format string, width, height, denom int) (int, int) {
	switch {
	case denom <= 1:
		return width, height
	case format == JPEG:
		return jpeg.ScaledSize(width, height, denom)
	case format == WebP:
		return width / denom, height / denom
	}
	return width, height
}

// DecodeScaled decodes b at 1/denom of its size (ScaledSize): a JPEG as
// djpeg -scale 1/denom does, a WebP as the means of each denom×denom block
// of the pixels Decode gives (dwebp has no scaled decoding), premultiplied.
// Denom 1 is Codecs[format].Decode; others are for ScaleDenom's formats.
func DecodeScaled(b []byte, format string, denom int) (image.Image, error) {
	if denom == 1 {
		c, ok := Codecs[format]
		if !ok {
			return nil, fmt.Errorf("imagefmt: unknown format %q", format)
		}
		return c.Decode(b)
	}
	switch format {
	case JPEG:
		return jpeg.DecodeScaled(bytes.NewReader(b), denom)
	case WebP:
		return decodeWebPScaled(b, denom)
	}
	return nil, fmt.Errorf("imagefmt: %s cannot be decoded at 1/%d scale", format, denom)
}
