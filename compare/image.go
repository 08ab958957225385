package compare

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"

	"github.com/tandem-proxy/tandem/internal/imagefmt"
)

// Images (JPEG, PNG, GIF, WebP, BMP, TIFF) are recognised by their magic
// bytes, whatever the Content-Type says. Each finding is its own Difference:
//
//	$.image.format       the formats differ (or one side is not an image)
//	$.image.decode       one side decodes, the other does not
//	$.image.dimensions   width or height differ by more than image_dim_tolerance
//	$.image.orientation  EXIF Orientation differs (both JPEG; absent = 1)
//	$.image.frames       frame count differs (GIF; other formats count 1)
//	$.image.alpha        one side has meaningful transparency, the other not
//	$.image.psnr         PSNR below image_min_psnr
//	$.image.ssim         SSIM of the luma below image_min_ssim
//	$.image.mean_shift   mean ΔE00 colour difference above image_max_delta_e (or a
//	                     channel's mean shift past image_max_mean_shift, when set)
//
// Pixels are compared after both images are reduced (box, then bilinear)
// to half the legacy image's dimensions, fitted into 256×256, as
// premultiplied RGBA; a JPEG or WebP is decoded at the largest of 1/8,
// 1/4, 1/2 that still covers that size (JPEG: the IDCT's own reduction, as
// djpeg -scale; WebP: box-filtered as it is converted), so the box pass has
// little or nothing left to do. Decoded pixels are the
// reference decoders' (imagefmt: libwebp's colours for lossy WebP,
// libjpeg-turbo's for JPEG). Halving at least acts as a low-pass filter: resamplers
// disagree pixel by pixel in fine detail (measured: Lanczos3 vs bilinear
// thumbnails of a noise image, 26.7 dB at full size, 43.7 dB halved), while
// the regressions that matter (another picture, turned, cropped, colour)
// live in coarse structure and survive it. The measures made then, and the
// corpus their defaults were chosen on, are described in measure.go.
//
// Dimensions are read from the header first: an image over max_image_pixels
// is never decoded, and the pair is then compared by hash and size
// (Result.Limit LimitImagePixels). Before decoding, both images' memory is
// estimated from their headers (imagefmt.DecodedBytes: width × height ×
// bytes a pixel of what the decoder builds) and reserved at once in the
// Comparer's DecodeBudget; a pair that does not fit is compared by hash and
// size (LimitDecodeBudget). Only a GIF's first frame is decoded; its frames
// are counted without decoding.

// decoders are the shared image codecs.
var decoders = imagefmt.Codecs

// imageSide is what is known about one side's image.
type imageSide struct {
	format      string
	cfg         image.Config
	err         error // from DecodeConfig or Decode
	orientation int   // JPEG EXIF orientation, 1 when absent
	frames      int
	cost        int64 // estimated bytes that decoding allocates
	denom       int   // decoded at 1/denom of the size (1: full size)
	img         image.Image
}

func (s *imageSide) pixels() int64 { return int64(s.cfg.Width) * int64(s.cfg.Height) }

func (s *imageSide) dims() string {
	return strconv.Itoa(s.cfg.Width) + "x" + strconv.Itoa(s.cfg.Height)
}

// decodeState describes one side for a $.image.decode difference.
func (s *imageSide) decodeState() string {
	if s.err != nil {
		return truncate("cannot decode: "+s.err.Error(), maxDiffValueLen)
	}
	return "ok (" + s.format + " " + s.dims() + ")"
}

// readHeader reads format, dimensions, orientation and frame count.
func readHeader(b []byte, format string) *imageSide {
	s := &imageSide{format: format, orientation: 1, frames: 1}
	d := decoders[format]
	s.err = safely(func() (err error) { s.cfg, err = d.Config(b); return err })
	if s.err == nil && (s.cfg.Width <= 0 || s.cfg.Height <= 0) {
		s.err = fmt.Errorf("%s: empty image %s", format, s.dims())
	}
	if s.err == nil {
		s.cost = imagefmt.DecodedBytes(b, format, s.cfg)
	}
	switch format {
	case formatJPEG:
		if o := jpegOrientation(b); o != 0 {
			s.orientation = o
		}
	case formatGIF:
		s.frames, _ = gifFrames(b)
	}
	return s
}

// decode decodes the pixels at full size.
func (s *imageSide) decode(b []byte) { s.decodeScaled(b, 1) }

// decodeScaled decodes the pixels at 1/denom of their size where the format
// allows (imagefmt.ScaleDenom: JPEG in the IDCT, WebP box-filtered while it
// is converted); the image then still has
// the full size's Bounds (scaledImage), so that the measures see the
// picture's dimensions and reduce reads the smaller pixels.
func (s *imageSide) decodeScaled(b []byte, denom int) {
	s.err = safely(func() (err error) {
		if denom == 1 {
			s.img, err = decoders[s.format].Decode(b)
			return err
		}
		img, err := imagefmt.DecodeScaled(b, s.format, denom)
		if err == nil {
			s.img = &scaledImage{Image: img, denom: denom, full: image.Rect(0, 0, s.cfg.Width, s.cfg.Height)}
		}
		return err
	})
	if s.err == nil && s.img.Bounds().Empty() {
		s.err = fmt.Errorf("%s: empty image", s.format)
	}
}

// scaledImage is an image decoded at 1/denom of its size: Bounds is the full
// size, At samples the decoded pixels, and reduce uses them directly.
type scaledImage struct {
	image.Image // the decoded pixels, at the origin
	denom       int
	full        image.Rectangle
}

func (m *scaledImage) Bounds() image.Rectangle { return m.full }

func (m *scaledImage) At(x, y int) color.Color {
	b := m.Image.Bounds()
	return m.Image.At(min(b.Min.X+x/m.denom, b.Max.X-1), min(b.Min.Y+y/m.denom, b.Max.Y-1))
}

// reducedSize is the size measure reduces a pair to, from the legacy
// image's dimensions: half of them, fitted into imageCompareSide.
func reducedSize(legacy image.Config) (int, int) {
	return fit((legacy.Width+1)/2, (legacy.Height+1)/2, imageCompareSide)
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

func formatName(f string) string {
	if f == "" {
		return "not an image"
	}
	return f
}

// diffImages appends the differences between two bodies of which at least
// one sniffs as an image; limit names the bound, if any, that kept the
// pixels from being compared.
func (c *Comparer) diffImages(diffs []Difference, legacy, new *Response, lf, nf string) (_ []Difference, limit Limit) {
	if lf != nf {
		diffs = append(diffs, Difference{Kind: KindImage, Path: "$.image.format", Legacy: formatName(lf), New: formatName(nf)})
		if lf == "" || nf == "" {
			return diffs, ""
		}
	}
	l, n := readHeader(legacy.Body, lf), readHeader(new.Body, nf)
	if l.err != nil || n.err != nil {
		return appendDecodeDiff(diffs, legacy, new, l, n), ""
	}
	if tol := c.s.ImageDimTolerance; absInt(l.cfg.Width-n.cfg.Width) > tol || absInt(l.cfg.Height-n.cfg.Height) > tol {
		diffs = append(diffs, Difference{Kind: KindImage, Path: "$.image.dimensions", Legacy: l.dims(), New: n.dims()})
	}
	if lf == formatJPEG && nf == formatJPEG && l.orientation != n.orientation {
		diffs = append(diffs, Difference{Kind: KindImage, Path: "$.image.orientation",
			Legacy: strconv.Itoa(l.orientation), New: strconv.Itoa(n.orientation)})
	}
	if l.frames != n.frames {
		diffs = append(diffs, Difference{Kind: KindImage, Path: "$.image.frames",
			Legacy: strconv.Itoa(l.frames), New: strconv.Itoa(n.frames)})
	}
	if max := c.s.MaxImagePixels; l.pixels() > max || n.pixels() > max {
		return append(diffs, hashDiff(legacy, new, fmt.Sprintf("pixels not compared: %s vs %s, max_image_pixels %d",
			l.dims(), n.dims(), max))), LimitImagePixels
	}
	// Decode JPEG and WebP at the largest 1/N that still gives both sides
	// at least the size the measures reduce to.
	rw, rh := reducedSize(l.cfg)
	l.denom = imagefmt.ScaleDenom(lf, l.cfg.Width, l.cfg.Height, rw, rh)
	n.denom = imagefmt.ScaleDenom(nf, n.cfg.Width, n.cfg.Height, rw, rh)
	l.cost = imagefmt.DecodedBytesScaled(legacy.Body, lf, l.cfg, l.denom)
	n.cost = imagefmt.DecodedBytesScaled(new.Body, nf, n.cfg, n.denom)
	cost := l.cost + n.cost
	if !c.budget.acquire(cost) {
		return append(diffs, hashDiff(legacy, new, fmt.Sprintf("pixels not compared: decoding %s and %s needs %d MiB, more than the decode budget has free",
			l.dims(), n.dims(), (cost+1<<20-1)>>20))), LimitDecodeBudget
	}
	defer c.budget.release(cost)
	l.decodeScaled(legacy.Body, l.denom)
	n.decodeScaled(new.Body, n.denom)
	if l.err != nil || n.err != nil {
		return appendDecodeDiff(diffs, legacy, new, l, n), ""
	}
	m := measure(l.img, n.img)
	l.img, n.img = nil, nil // the reservation ends with this function
	if m.alpha[0] != m.alpha[1] {
		diffs = append(diffs, Difference{Kind: KindImage, Path: "$.image.alpha",
			Legacy: alphaName(m.alpha[0]), New: alphaName(m.alpha[1])})
	}
	if m.psnr < c.s.ImageMinPSNR {
		diffs = append(diffs, Difference{Kind: KindImage, Path: "$.image.psnr",
			Legacy: fmt.Sprintf("%.2f dB min", c.s.ImageMinPSNR), New: fmt.Sprintf("%.2f dB", m.psnr)})
	}
	if m.ssim < c.s.ImageMinSSIM {
		diffs = append(diffs, Difference{Kind: KindImage, Path: "$.image.ssim",
			Legacy: fmt.Sprintf("%.4f min", c.s.ImageMinSSIM), New: fmt.Sprintf("%.4f", m.ssim)})
	}
	maxShift := c.s.ImageMaxMeanShift
	if m.deltaE > c.s.ImageMaxDeltaE || maxShift > 0 && m.maxAbsShift() > maxShift {
		limit := fmt.Sprintf("ΔE00 %.2f max", c.s.ImageMaxDeltaE)
		if maxShift > 0 {
			limit = fmt.Sprintf("ΔE00 %.2f, ±%.2f a channel max", c.s.ImageMaxDeltaE, maxShift)
		}
		diffs = append(diffs, Difference{Kind: KindImage, Path: "$.image.mean_shift", Legacy: limit, New: m.shiftString()})
	}
	return diffs, ""
}

// appendDecodeDiff reports a side that cannot be decoded; when neither can,
// the bodies are compared by hash and size.
func appendDecodeDiff(diffs []Difference, legacy, new *Response, l, n *imageSide) []Difference {
	if l.err != nil && n.err != nil {
		return append(diffs, hashDiff(legacy, new, "neither image decodes"))
	}
	return append(diffs, Difference{Kind: KindImage, Path: "$.image.decode", Legacy: l.decodeState(), New: n.decodeState()})
}

func alphaName(used bool) string {
	if used {
		return "transparent"
	}
	return "opaque"
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// fit returns w×h scaled down to fit in side×side, keeping the aspect ratio;
// images already small enough keep their size.
func fit(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, int(math.Round(float64(h)*float64(side)/float64(w))))
	}
	return max(1, int(math.Round(float64(w)*float64(side)/float64(h)))), side
}

// reduce scales img to w×h premultiplied RGBA: first a box filter by the
// largest whole factor that keeps it at least w×h, then an antialiasing
// bilinear filter (x/image/draw's BiLinear, as bilinearRGBA) for the rest;
// every image type is read by rgbaRow (16-bit samples at the nearest 8-bit
// level). (The box pass is the fast part: bilinear
// alone over a 1 MP image converts every source pixel for every tap.) An
// image decoded at reduced scale (scaledImage: a JPEG whose IDCT, or a WebP
// whose conversion, already averaged it down by 1/2, 1/4 or 1/8) is reduced
// from its decoded pixels.
func reduce(img image.Image, w, h int) *image.RGBA {
	if s, ok := img.(*scaledImage); ok {
		img = s.Image
	}
	b := img.Bounds()
	if k := min(b.Dx()/w, b.Dy()/h); k >= 2 {
		img = boxReduce(img, k)
	}
	if m, ok := img.(*image.RGBA); ok && m.Rect == image.Rect(0, 0, w, h) && m.Stride == 4*w && len(m.Pix) == 4*w*h {
		return m // already w×h: bilinear would copy it
	}
	src, ok := img.(*image.RGBA)
	if !ok || src.Rect.Min != (image.Point{}) {
		// Read every type as boxReduce does (rgbaRow), then scale.
		b := img.Bounds()
		src = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		for y := 0; y < b.Dy(); y++ {
			rgbaRow(src.Pix[y*src.Stride:y*src.Stride+4*b.Dx()], img, b.Min.X, b.Min.Y+y)
		}
		if b.Dx() == w && b.Dy() == h {
			return src
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	bilinearRGBA(dst, src)
	return dst
}

// boxReduce averages each k×k block of img into one premultiplied RGBA pixel.
// A remainder of fewer than k rows or columns is dropped.
func boxReduce(img image.Image, k int) *image.RGBA {
	if m, ok := img.(*image.YCbCr); ok {
		if sx, sy, ok := chromaShifts(m.SubsampleRatio); ok && m.Rect.Min == (image.Point{}) {
			return boxReduceYCbCr(m, k, sx, sy)
		}
	}
	b := img.Bounds()
	w, h := b.Dx()/k, b.Dy()/k
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	row := make([]uint8, 4*w*k)
	sums := make([]uint32, 4*w)
	n := uint32(k * k)
	for dy := 0; dy < h; dy++ {
		clear(sums)
		for y := b.Min.Y + dy*k; y < b.Min.Y+dy*k+k; y++ {
			if m, ok := img.(*image.RGBA); ok {
				// Read in place: RGBA is what the sums take.
				row = m.Pix[m.PixOffset(b.Min.X, y):][:4*w*k]
			} else {
				rgbaRow(row, img, b.Min.X, y)
			}
			for x := 0; x < w*k; x++ {
				i, j := 4*x, 4*(x/k)
				sums[j] += uint32(row[i])
				sums[j+1] += uint32(row[i+1])
				sums[j+2] += uint32(row[i+2])
				sums[j+3] += uint32(row[i+3])
			}
		}
		out := dst.Pix[dy*dst.Stride : dy*dst.Stride+4*w]
		for i, v := range sums {
			out[i] = uint8((v + n/2) / n)
		}
	}
	return dst
}

// chromaShifts returns how far x and y are shifted right to index the
// chroma planes of a YCbCr image with ratio r.
func chromaShifts(r image.YCbCrSubsampleRatio) (sx, sy uint, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 0, 0, true
	case image.YCbCrSubsampleRatio422:
		return 1, 0, true
	case image.YCbCrSubsampleRatio420:
		return 1, 1, true
	case image.YCbCrSubsampleRatio440:
		return 0, 1, true
	case image.YCbCrSubsampleRatio411:
		return 2, 0, true
	case image.YCbCrSubsampleRatio410:
		return 2, 1, true
	}
	return 0, 0, false
}

// boxReduceYCbCr is boxReduce for a YCbCr image at the origin (as JPEG
// decodes): it averages Y, Cb and Cr and converts once per output pixel,
// which equals averaging RGB but for clamping.
func boxReduceYCbCr(m *image.YCbCr, k int, sx, sy uint) *image.RGBA {
	w, h := m.Rect.Dx()/k, m.Rect.Dy()/k
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	sums := make([]uint32, 3*w)
	n := uint32(k * k)
	for dy := 0; dy < h; dy++ {
		clear(sums)
		for y := dy * k; y < dy*k+k; y++ {
			yrow := m.Y[y*m.YStride:]
			crow := (y >> sy) * m.CStride
			cb, cr := m.Cb[crow:], m.Cr[crow:]
			for x := 0; x < w*k; x++ {
				j, c := 3*(x/k), x>>sx
				sums[j] += uint32(yrow[x])
				sums[j+1] += uint32(cb[c])
				sums[j+2] += uint32(cr[c])
			}
		}
		out := dst.Pix[dy*dst.Stride:]
		for x := 0; x < w; x++ {
			r, g, b := color.YCbCrToRGB(uint8((sums[3*x]+n/2)/n), uint8((sums[3*x+1]+n/2)/n), uint8((sums[3*x+2]+n/2)/n))
			out[4*x], out[4*x+1], out[4*x+2], out[4*x+3] = r, g, b, 0xff
		}
	}
	return dst
}

// rgbaRow fills row with premultiplied 8-bit RGBA pixels of img starting at
// (x0, y), len(row)/4 of them, with fast paths for the decoders' types.
func rgbaRow(row []uint8, img image.Image, x0, y int) {
	n := len(row) / 4
	switch m := img.(type) {
	case *image.YCbCr:
		for x := 0; x < n; x++ {
			yi, ci := m.YOffset(x0+x, y), m.COffset(x0+x, y)
			r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = r, g, bl, 0xff
		}
	case *image.RGBA:
		copy(row, m.Pix[m.PixOffset(x0, y):])
	case *image.NRGBA:
		src := m.Pix[m.PixOffset(x0, y):]
		for i := 0; i < 4*n; i += 4 {
			a := uint32(src[i+3])
			if a == 0xff { // opaque: premultiplying changes nothing
				row[i], row[i+1], row[i+2], row[i+3] = src[i], src[i+1], src[i+2], 0xff
				continue
			}
			row[i] = uint8((uint32(src[i])*a + 127) / 255)
			row[i+1] = uint8((uint32(src[i+1])*a + 127) / 255)
			row[i+2] = uint8((uint32(src[i+2])*a + 127) / 255)
			row[i+3] = uint8(a)
		}
	case *image.Gray:
		src := m.Pix[m.PixOffset(x0, y):]
		for x := 0; x < n; x++ {
			v := src[x]
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = v, v, v, 0xff
		}
	case image.RGBA64Image:
		// 16-bit, CMYK, paletted and the rest: RGBA64At returns a concrete
		// colour, where At would allocate one per pixel. 16 bits become the
		// nearest 8-bit level (as libpng's png_set_scale_16 and ImageMagick
		// do), not the high byte, which would read true 16-bit pictures
		// half a level dark on average; v·257 still gives v.
		for x := 0; x < n; x++ {
			c := m.RGBA64At(x0+x, y)
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = nearest8(c.R), nearest8(c.G), nearest8(c.B), nearest8(c.A)
		}
	default:
		for x := 0; x < n; x++ {
			r, g, bl, a := img.At(x0+x, y).RGBA()
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = nearest8(uint16(r)), nearest8(uint16(g)), nearest8(uint16(bl)), nearest8(uint16(a))
		}
	}
}

// nearest8 is the 8-bit level nearest a 16-bit sample: round(v·255/65535).
func nearest8(v uint16) uint8 { return uint8((uint32(v)*255 + 32767) / 65535) }

// bilinearRGBA is draw.BiLinear.Scale(dst, dst.Bounds(), src, src.Bounds(),
// draw.Src, nil) for two RGBA images at the origin: the same weights
// (x/image/draw's newDistrib for its BiLinear kernel, support widened when
// shrinking) and the same float64 operations in the same order, so the
// same pixels; but it keeps only the rows of the horizontal pass that the
// output row at hand needs, where draw allocates and clears all of them
// (dst width × source height × 32 bytes, 1.7 MB for the 1 MP benchmark).
func bilinearRGBA(dst, src *image.RGBA) {
	dw, dh := dst.Rect.Dx(), dst.Rect.Dy()
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	hs, hc := bilinearDistrib(dw, sw)
	vs, vc := bilinearDistrib(dh, sh)
	span := 1
	for _, s := range vs {
		if s.j > s.i {
			span = max(span, int(vc[s.j-1].coord-vc[s.i].coord)+1)
		}
	}
	// level16[v] is float64(uint32(v) * 0x101), an 8-bit sample's 16-bit
	// value as x/image/draw converts it.
	var level16 [256]float64
	for v := range level16 {
		level16[v] = float64(uint32(v) * 0x101)
	}
	ring := make([][4]float64, span*dw)
	have := make([]int32, span) // the source row in each ring slot
	for i := range have {
		have[i] = -1
	}
	row := func(y int32) [][4]float64 {
		slot := int(y) % span
		t := ring[slot*dw : (slot+1)*dw]
		if have[slot] == y {
			return t
		}
		have[slot] = y
		pix := src.Pix[int(y)*src.Stride : int(y)*src.Stride+4*sw]
		for x, s := range hs {
			var pr, pg, pb, pa float64
			for _, c := range hc[s.i:s.j] {
				pi := int(c.coord) * 4
				p := pix[pi : pi+4 : pi+4]
				pr += float64(level16[p[0]] * c.weight)
				pg += float64(level16[p[1]] * c.weight)
				pb += float64(level16[p[2]] * c.weight)
				pa += float64(level16[p[3]] * c.weight)
			}
			t[x] = [4]float64{pr * s.invTotalWeightFFFF, pg * s.invTotalWeightFFFF, pb * s.invTotalWeightFFFF, pa * s.invTotalWeightFFFF}
		}
		return t
	}
	rows := make([][][4]float64, span)
	for dy, s := range vs {
		cs := vc[s.i:s.j]
		for k, c := range cs {
			rows[k] = row(c.coord)
		}
		out := dst.Pix[dy*dst.Stride:]
		for dx := 0; dx < dw; dx++ {
			var pr, pg, pb, pa float64
			for k, c := range cs {
				p := &rows[k][dx]
				pr += float64(p[0] * c.weight)
				pg += float64(p[1] * c.weight)
				pb += float64(p[2] * c.weight)
				pa += float64(p[3] * c.weight)
			}
			pr, pg, pb = min(pr, pa), min(pg, pa), min(pb, pa)
			d := out[4*dx : 4*dx+4 : 4*dx+4]
			d[0] = uint8(ftou(pr*s.invTotalWeight) >> 8)
			d[1] = uint8(ftou(pg*s.invTotalWeight) >> 8)
			d[2] = uint8(ftou(pb*s.invTotalWeight) >> 8)
			d[3] = uint8(ftou(pa*s.invTotalWeight) >> 8)
		}
	}
}

type bilinearSource struct {
	i, j                               int32
	invTotalWeight, invTotalWeightFFFF float64
}

type bilinearContrib struct {
	coord  int32
	weight float64
}

// bilinearDistrib is x/image/draw's newDistrib for BiLinear (support 1,
// weight 1−t): for each of dw output columns (or rows), the sw-pixel
// source's contributions and their total weight.
func bilinearDistrib(dw, sw int) ([]bilinearSource, []bilinearContrib) {
	scale := float64(sw) / float64(dw)
	halfWidth, kernelArgScale := 1.0, 1.0
	if scale > 1 {
		halfWidth *= scale
		kernelArgScale = 1 / scale
	}
	sources := make([]bilinearSource, dw)
	var contribs []bilinearContrib
	for x := range sources {
		center := float64((float64(x)+0.5)*scale) - 0.5
		i := max(int32(math.Floor(center-halfWidth)), 0)
		j := int32(math.Ceil(center + halfWidth))
		if j > int32(sw) {
			j = max(int32(sw), i)
		}
		totalWeight := 0.0
		l := int32(len(contribs))
		for coord := i; coord < j; coord++ {
			t := math.Abs((center - float64(coord)) * kernelArgScale)
			if t >= 1 {
				continue
			}
			weight := 1 - t
			if weight == 0 {
				continue
			}
			totalWeight += weight
			contribs = append(contribs, bilinearContrib{coord, weight})
		}
		totalWeight = 1 / totalWeight
		sources[x] = bilinearSource{i: l, j: int32(len(contribs)), invTotalWeight: totalWeight, invTotalWeightFFFF: totalWeight / 0xffff}
	}
	return sources, contribs
}

// ftou is x/image/draw's: [0, 1] to [0, 0xffff], rounded.
func ftou(f float64) uint16 {
	i := int32(float64(0xffff*f) + 0.5)
	if i > 0xffff {
		return 0xffff
	}
	if i > 0 {
		return uint16(i)
	}
	return 0
}
