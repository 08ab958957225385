package samples

import (
	"encoding/binary"
	"image"

	"github.com/tandem-proxy/tandem/internal/imagefmt"
)

// EXIF orientation (TIFF tag 0x0112), as written by cameras: how the stored
// pixels must be transformed to be shown upright.
//
//	1 as stored           5 transpose (mirror along the main diagonal)
//	2 mirror horizontally 6 rotate 90° clockwise
//	3 rotate 180°         7 transverse (mirror along the anti-diagonal)
//	4 mirror vertically   8 rotate 90° counter-clockwise
const orientationTag = 0x0112

// jpegOrientation returns the EXIF Orientation (1..8) of a JPEG, or 0 when
// there is none; shared with the comparer.
var jpegOrientation = imagefmt.JPEGOrientation

// withOrientation returns a copy of the JPEG j with a minimal APP1 Exif
// segment right after SOI whose IFD0 holds Orientation = o followed by
// ResolutionUnit, as cameras write them (tags sorted by number). The TIFF
// structure is big-endian ("MM") when bigEndian, else little-endian ("II").
func withOrientation(j []byte, o uint16, bigEndian bool) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	tiff := []byte("II")
	if bigEndian {
		bo, tiff = binary.BigEndian, []byte("MM")
	}
	tiff = bo.AppendUint16(tiff, 42)
	tiff = bo.AppendUint32(tiff, 8) // IFD0 offset
	tiff = bo.AppendUint16(tiff, 2) // entries
	// Orientation (SHORT), then ResolutionUnit (0x0128, SHORT, 2 = inches).
	tiff = bo.AppendUint16(tiff, orientationTag)
	tiff = bo.AppendUint16(tiff, 3)
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint16(tiff, o)
	tiff = bo.AppendUint16(tiff, 0)
	tiff = bo.AppendUint16(tiff, 0x0128)
	tiff = bo.AppendUint16(tiff, 3)
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint16(tiff, 2)
	tiff = bo.AppendUint16(tiff, 0)
	tiff = bo.AppendUint32(tiff, 0) // no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := make([]byte, 0, len(j)+len(seg)+4)
	out = append(out, j[:2]...)
	out = append(out, 0xFF, 0xE1)
	out = binary.BigEndian.AppendUint16(out, uint16(len(seg)+2))
	out = append(out, seg...)
	return append(out, j[2:]...)
}

// orientedSize returns the size of a w×h image once shown upright under
// orientation o: 5 to 8 swap width and height.
func orientedSize(w, h, o int) (int, int) {
	if o >= 5 && o <= 8 {
		return h, w
	}
	return w, h
}

// inverseOrientation returns the orientation that undoes o: rotations by
// 90° undo each other, every other transform undoes itself.
func inverseOrientation(o int) int {
	switch o {
	case 6:
		return 8
	case 8:
		return 6
	}
	return o
}

// orient returns src transformed as EXIF orientation o prescribes (src
// itself for 1 or an unknown value). src must start at the origin.
func orient(src *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return src
	}
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dw, dh := orientedSize(w, h, o)
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for dy := 0; dy < dh; dy++ {
		for dx := 0; dx < dw; dx++ {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-dx, dy
			case 3:
				sx, sy = w-1-dx, h-1-dy
			case 4:
				sx, sy = dx, h-1-dy
			case 5:
				sx, sy = dy, dx
			case 6:
				sx, sy = dy, h-1-dx
			case 7:
				sx, sy = w-1-dy, h-1-dx
			case 8:
				sx, sy = w-1-dy, dx
			}
			si, di := src.PixOffset(sx, sy), dst.PixOffset(dx, dy)
			copy(dst.Pix[di:di+4], src.Pix[si:si+4])
		}
	}
	return dst
}
