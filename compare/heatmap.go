package compare

import (
	"errors"
	"fmt"
	"image"
	"math"
)

// DefaultHeatMapSide is the longest side of a heat map when HeatMap is given
// maxSide <= 0.
const DefaultHeatMapSide = 512

// The heat of a tile is the largest of three differences, each divided by
// the difference drawn at the hot end of the ramp: 1 − SSIM of the luma
// (heatSSIMFullScale), ΔE00 of the mean colours (heatDeltaEFullScale), and
// the mean alpha difference in 0..255 levels (heatAlphaFullScale). Smaller
// differences are spread linearly below, so that the differences that
// matter (a structure change, a colour shift of a few ΔE00) are visible
// rather than lost near black.
const (
	heatSSIMFullScale   = 0.5
	heatDeltaEFullScale = 10
	heatAlphaFullScale  = 64
)

// heatTile is the side, in heat map pixels, of the tiles the heat is
// measured over: SSIM needs a window of pixels, and mean colours cancel the
// per-pixel noise of resampling and re-encoding as the comparer's do.
const heatTile = 8

// heatMapGhost is the share of the legacy image's grey level drawn under the
// heat, so that differences can be located in the picture. Identical
// images give a dim grey copy of the legacy image.
const heatMapGhost = 0.3

// ErrNotImage is returned by HeatMap when a side is not an image in a
// format the comparer decodes.
var ErrNotImage = errors.New("not an image")

// ErrDecodeBudget is returned by HeatMap when decoding both images does not
// fit the DecodeBudget it was given (within the budget's wait).
var ErrDecodeBudget = errors.New("decoding does not fit the decode budget")

// heatRamp is the colour ramp from no difference (black) to a difference
// at or past the full scale (pale yellow), after matplotlib's "inferno":
// evenly spaced stops, interpolated linearly.
var heatRamp = [...][3]float64{
	{0, 0, 4},
	{40, 11, 84},
	{101, 21, 110},
	{159, 42, 99},
	{212, 72, 66},
	{245, 125, 21},
	{250, 193, 39},
	{252, 255, 164},
}

// HeatMap draws where two images differ: both are decoded (under the same
// guards as the comparer: magic-byte sniffing, header read first, at most
// DefaultMaxImagePixels pixels, both images' estimated memory reserved in
// budget before either is decoded, decoder panics caught), reduced to the
// legacy image's size fitted into maxSide×maxSide (images already smaller
// keep their size; the new image is stretched to it when its dimensions
// differ), cut into 8×8 tiles, and each tile's difference — the largest of
// 1 − SSIM of its luma (0.5 or more at the hot end), ΔE00 of its mean
// colours (10 or more) and its mean alpha difference (64 levels or more),
// the comparer's measures made locally — is mapped onto a colour ramp from
// black (none) to pale yellow, drawn over a dim grey copy of the legacy
// image. maxSide <= 0 means DefaultHeatMapSide.
//
// The error wraps ErrNotImage when a side is not an image, ErrDecodeBudget
// when the decodes do not fit budget (nil: no budget), and says which side
// cannot be decoded otherwise. HeatMap is pure and safe for concurrent use.
func HeatMap(legacy, new []byte, maxSide int, budget *DecodeBudget) (image.Image, error) {
	if maxSide <= 0 {
		maxSide = DefaultHeatMapSide
	}
	ls, err := headerForHeatMap(legacy)
	if err != nil {
		return nil, fmt.Errorf("legacy: %w", err)
	}
	ns, err := headerForHeatMap(new)
	if err != nil {
		return nil, fmt.Errorf("new: %w", err)
	}
	cost := ls.cost + ns.cost
	if !budget.acquire(cost) {
		return nil, fmt.Errorf("%w: %s %s and %s %s need %d MiB", ErrDecodeBudget,
			ls.format, ls.dims(), ns.format, ns.dims(), (cost+1<<20-1)>>20)
	}
	defer budget.release(cost)
	if ls.decode(legacy); ls.err != nil {
		return nil, fmt.Errorf("legacy: cannot decode %s: %w", ls.format, ls.err)
	}
	if ns.decode(new); ns.err != nil {
		return nil, fmt.Errorf("new: cannot decode %s: %w", ns.format, ns.err)
	}
	l, n := ls.img, ns.img
	lb := l.Bounds()
	w, h := fit(lb.Dx(), lb.Dy(), maxSide)
	a, b := reduce(l, w, h), reduce(n, w, h)
	heat := heatTiles(a, b)
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*a.Stride + 4*x
			// The grey of the legacy pixel (premultiplied, so transparent
			// regions are dark), Rec. 601 luma.
			grey := (0.299*float64(a.Pix[i]) + 0.587*float64(a.Pix[i+1]) + 0.114*float64(a.Pix[i+2])) * heatMapGhost
			t := heat((x/heatTile)*heatTile, (y/heatTile)*heatTile)
			c := heatColour(t)
			for ch := 0; ch < 3; ch++ {
				out.Pix[i+ch] = uint8(math.Min(255, math.Round(c[ch]+grey*(1-t))))
			}
			out.Pix[i+3] = 0xff
		}
	}
	return out, nil
}

// heatTiles measures two reduced images tile by tile and returns the heat,
// in [0, 1], of the tile at (x, y) (a tile's top-left corner).
func heatTiles(a, b *image.RGBA) func(x, y int) float64 {
	w, h := a.Rect.Dx(), a.Rect.Dy()
	structure := newTileSums(w, h, heatTile)
	ssim(a, b, ssimWindow, structure)
	colour := newTileSums(w, h, heatTile)
	meanDeltaE(a, b, heatTile, colour)
	alpha := newTileSums(w, h, heatTile)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*a.Stride + 4*x
			alpha.add(x, y, math.Abs(float64(b.Pix[i+3])-float64(a.Pix[i+3])), 1)
		}
	}
	// SSIM windows are credited to the tile of their centre: the tiles at
	// the edges, which hold no centre when the window is wider than the
	// margin, take the nearest tile that does.
	k := min(ssimWindow, w, h)
	return func(x, y int) float64 {
		t := 0.0
		sx := min(max(x, k/2), w-k+k/2)
		sy := min(max(y, k/2), h-k+k/2)
		if s, ok := structure.mean(sx, sy); ok {
			t = (1 - s) / heatSSIMFullScale
		}
		if d, ok := colour.mean(x, y); ok {
			t = math.Max(t, d/heatDeltaEFullScale)
		}
		if d, ok := alpha.mean(x, y); ok {
			t = math.Max(t, d/heatAlphaFullScale)
		}
		return math.Min(1, math.Max(0, t))
	}
}

// heatColour returns the ramp's colour at t in [0, 1].
func heatColour(t float64) [3]float64 {
	pos := t * float64(len(heatRamp)-1)
	i := int(pos)
	if i >= len(heatRamp)-1 {
		return heatRamp[len(heatRamp)-1]
	}
	f := pos - float64(i)
	var c [3]float64
	for ch := range c {
		c[ch] = heatRamp[i][ch]*(1-f) + heatRamp[i+1][ch]*f
	}
	return c
}

// headerForHeatMap reads one side's header with the comparer's guards.
func headerForHeatMap(b []byte) (*imageSide, error) {
	format := sniffImage(b)
	if format == "" {
		return nil, ErrNotImage
	}
	s := readHeader(b, format)
	if s.err != nil {
		return nil, fmt.Errorf("cannot decode %s: %w", format, s.err)
	}
	if s.pixels() > DefaultMaxImagePixels {
		return nil, fmt.Errorf("%s %s is over %d pixels; not decoded", format, s.dims(), int64(DefaultMaxImagePixels))
	}
	return s, nil
}
