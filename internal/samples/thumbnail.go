package samples

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"net/http"

	"github.com/tandem-proxy/tandem/internal/imagefmt"
	"golang.org/x/image/draw"
)

// Image formats, as named in the JSON answer.
const (
	formatJPEG = imagefmt.JPEG
	formatPNG  = imagefmt.PNG
	formatGIF  = imagefmt.GIF
	formatWebP = imagefmt.WebP
)

// sniff names the image format of b from its magic bytes, or "" when b is
// none of the formats the service decodes. The Content-Type of the upload
// is not trusted.
func sniff(b []byte) string {
	switch f := imagefmt.Sniff(b); f {
	case formatJPEG, formatPNG, formatGIF, formatWebP:
		return f
	}
	return ""
}

// codecs are the shared image codecs.
var codecs = imagefmt.Codecs

// thumbnail is one processed upload.
type thumbnail struct {
	data          []byte
	format        string // formatJPEG or formatPNG
	width, height int
	source        SourceInfo
}

// SourceInfo describes the uploaded image: its format and its size as the
// flavour sees it (the legacy flavour applies EXIF orientation first).
type SourceInfo struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Format string `json:"format"`
}

// requestError is an upload the service refuses: status and message.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// checkHeader sniffs the format of body and reads its header: the format,
// and the stored (not EXIF-oriented) size. It refuses what the service
// does not decode and, before any pixel buffer is allocated, images of more
// than MaxPixels (decode-bomb guard).
func checkHeader(body []byte) (string, image.Config, *requestError) {
	format := sniff(body)
	if format == "" {
		return "", image.Config{}, badRequest("not a supported image: want JPEG, PNG, GIF or WebP")
	}
	var cfg image.Config
	err := safely(func() (err error) { cfg, err = codecs[format].Config(body); return err })
	if err != nil {
		return "", cfg, badRequest("cannot read %s header: %v", format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return "", cfg, badRequest("%s: empty image %dx%d", format, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > MaxPixels {
		return "", cfg, &requestError{http.StatusRequestEntityTooLarge,
			fmt.Sprintf("image %dx%d has %d pixels, more than the %d allowed", cfg.Width, cfg.Height, px, int64(MaxPixels))}
	}
	return format, cfg, nil
}

// makeThumbnail decodes body (already checked by checkHeader) and makes
// its thumbnail the way flavour f does.
func makeThumbnail(body []byte, format string, f Flavour) (*thumbnail, *requestError) {
	var img image.Image
	err := safely(func() (err error) { img, err = codecs[format].Decode(body); return err })
	if err != nil {
		return nil, badRequest("cannot decode %s: %v", format, err)
	}
	b := img.Bounds()
	if b.Empty() {
		return nil, badRequest("%s: empty image", format)
	}
	alpha := hasAlpha(img)
	orientation := 1
	if f == Legacy && format == formatJPEG {
		if o := jpegOrientation(body); o != 0 {
			orientation = o
		}
	}
	sw, sh := orientedSize(b.Dx(), b.Dy(), orientation)
	t := &thumbnail{source: SourceInfo{Width: sw, Height: sh, Format: format}}

	tw, th := fit(b.Dx(), b.Dy(), ThumbSide)
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	switch {
	case f == Legacy:
		// Catmull-Rom: sharp, antialiased; transparency kept.
		draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
		dst = orient(dst, orientation)
	case alpha:
		// The new flavour's regression: transparency flattened onto black.
		draw.Draw(dst, dst.Bounds(), image.NewUniform(color.Black), image.Point{}, draw.Src)
		draw.BiLinear.Scale(dst, dst.Bounds(), img, b, draw.Over, nil)
	default:
		draw.BiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	}
	t.width, t.height = dst.Rect.Dx(), dst.Rect.Dy()

	var buf bytes.Buffer
	if f == Legacy && alpha {
		t.format = formatPNG
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, dst)
	} else {
		t.format = formatJPEG
		err = jpeg.Encode(&buf, dst, &jpeg.Options{Quality: JPEGQuality})
	}
	if err != nil { // cannot happen with an in-memory RGBA image
		return nil, &requestError{http.StatusInternalServerError, "cannot encode thumbnail: " + err.Error()}
	}
	t.data = buf.Bytes()
	return t, nil
}

// hasAlpha reports whether img has at least one pixel that is not fully
// opaque.
func hasAlpha(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return !o.Opaque()
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := img.At(x, y).RGBA(); a != 0xffff {
				return true
			}
		}
	}
	return false
}

// fit returns w×h scaled to fit in side×side with the aspect ratio kept;
// images already small enough keep their size (never upscaled).
func fit(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, int(math.Round(float64(h)*float64(side)/float64(w))))
	}
	return max(1, int(math.Round(float64(w)*float64(side)/float64(h)))), side
}

// safely runs f, turning a panic in a decoder into an error.
func safely(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoder panicked: %v", p)
		}
	}()
	return f()
}
