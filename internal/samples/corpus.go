package samples

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/tandem-proxy/tandem/internal/imagefmt"
)

// Kinds of corpus items.
const (
	KindPhoto    = "photo"    // opaque picture: both flavours agree up to resampling
	KindRotated  = "rotated"  // JPEG with EXIF orientation: the new flavour ignores it
	KindAlpha    = "alpha"    // picture with transparency: the new flavour flattens it
	KindAnimated = "animated" // animated GIF: both flavours thumbnail the first frame
	KindBroken   = "broken"   // not a decodable image: both flavours answer 400
)

// Item is one upload of the corpus.
type Item struct {
	Name        string // file name, unique in the corpus, with the format's extension
	ContentType string // what a client would send (broken items may lie)
	Body        []byte
	Kind        string // KindPhoto, KindRotated, KindAlpha, KindAnimated or KindBroken
	// Width and Height are the size of the picture as shown, after EXIF
	// orientation; 0 for broken items.
	Width, Height int
	// Orientation is the EXIF orientation written into a rotated JPEG,
	// else 0.
	Orientation int
}

// CorpusOptions selects the corpus.
type CorpusOptions struct {
	// Seed picks the pictures: the same seed gives the same bytes (with
	// the same Go version, whose encoders write the files).
	Seed int64
	// Large adds items of several MiB (a 4000×3000 JPEG, a 1600×1200 PNG),
	// slow to make and to process; off by default.
	Large bool
}

// Corpus returns the upload corpus for opts, in a fixed order:
//
//   - photo: JPEG photos from 240×180 to 1600×1200 (landscape and portrait),
//     an opaque PNG, a lossless WebP, and a PNG of flat shapes under 1 KiB;
//   - rotated: JPEGs with an Exif APP1 segment right after SOI holding
//     Orientation 6 and 8 (stored 600×300, shown 300×600; one little-, one
//     big-endian) and 3 (upside down); each has a red square in the top-left
//     and a blue one in the bottom-right corner of the picture as shown;
//   - alpha: PNGs and a WebP with real transparency (transparent
//     background, half-transparent and soft-edged shapes);
//   - animated: a 6-frame GIF;
//   - broken: a truncated JPEG, a truncated PNG, a GIF with a garbage
//     header, zero bytes, and text sent as image/jpeg.
//
// With opts.Large it adds large-photo.jpg and large-photo.png, each
// several MiB.
func Corpus(opts CorpusOptions) []Item {
	g := gen{seed: opts.Seed}
	items := []Item{
		g.png("photo-shapes.png", KindPhoto, scene{w: 160, h: 120, shapes: 4, flat: true}),
		g.jpeg("photo-small.jpg", scene{w: 240, h: 180, shapes: 3, grain: 4}, 75, 0),
		g.jpeg("photo-landscape.jpg", scene{w: 800, h: 600, shapes: 5, grain: 6}, 85, 0),
		g.jpeg("photo-portrait.jpg", scene{w: 600, h: 800, shapes: 5, grain: 6}, 85, 0),
		g.jpeg("photo-big.jpg", scene{w: 1600, h: 1200, shapes: 7, grain: 8}, 90, 0),
		g.png("photo-opaque.png", KindPhoto, scene{w: 400, h: 300, shapes: 4, grain: 3}),
		g.webp("photo.webp", KindPhoto, scene{w: 320, h: 240, shapes: 4, grain: 3}),

		g.jpeg("rotated-6.jpg", scene{w: 300, h: 600, shapes: 4, grain: 4, marker: true}, 85, 6),
		g.jpeg("rotated-8.jpg", scene{w: 300, h: 600, shapes: 4, grain: 4, marker: true}, 85, 8),
		g.jpeg("rotated-3.jpg", scene{w: 640, h: 480, shapes: 4, grain: 4, marker: true}, 85, 3),

		g.png("alpha-sticker.png", KindAlpha, scene{w: 400, h: 400, shapes: 4, grain: 3, transparent: true}),
		g.png("alpha-logo.png", KindAlpha, scene{w: 256, h: 160, shapes: 3, transparent: true}),
		g.webp("alpha.webp", KindAlpha, scene{w: 300, h: 200, shapes: 3, grain: 2, transparent: true}),

		g.gif("animated.gif", 200, 150, 6),
	}
	items = append(items, g.broken()...)
	if opts.Large {
		items = append(items,
			g.jpeg("large-photo.jpg", scene{w: 4000, h: 3000, shapes: 9, grain: 14}, 95, 0),
			g.png("large-photo.png", KindPhoto, scene{w: 1600, h: 1200, shapes: 6, grain: 14}),
		)
	}
	return items
}

// WriteCorpus writes Corpus(opts) into dir (created if need be), one file
// per item named Item.Name, and ExpectFile, which tells `tandem loadtest
// -corpus` the status each file is expected to get from the sample
// services (400 for broken items, 200 for the others). Other files in dir
// are left alone.
func WriteCorpus(dir string, opts CorpusOptions) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var expect bytes.Buffer
	expect.WriteString("# The status each file gets from tandem's sample services (tandem loadtest -corpus reads this).\n")
	for _, it := range Corpus(opts) {
		if err := os.WriteFile(filepath.Join(dir, it.Name), it.Body, 0o644); err != nil {
			return err
		}
		if it.Kind == KindBroken {
			fmt.Fprintf(&expect, "%s 400\n", it.Name)
		}
	}
	expect.WriteString("* 200\n")
	return os.WriteFile(filepath.Join(dir, ExpectFile), expect.Bytes(), 0o644)
}

// ExpectFile is the name of the file WriteCorpus writes beside the corpus:
// lines "NAME STATUS", the last "* 200" (package loadtest's format).
const ExpectFile = "expect.txt"

// gen makes items; each item's randomness comes from the seed and its
// name, so items do not depend on each other.
type gen struct{ seed int64 }

func (g gen) rand(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(uint64(g.seed), h.Sum64()))
}

// jpeg makes a JPEG photo of s. With orientation o > 1 the picture s
// describes is what must be shown: the stored pixels are s turned the
// other way, and an Exif segment says how to turn them back.
func (g gen) jpeg(name string, s scene, quality, o int) Item {
	img := paint(s, g.rand(name))
	kind := KindPhoto
	if o > 1 {
		kind = KindRotated
		img = orientNRGBA(img, inverseOrientation(o))
	}
	var buf bytes.Buffer
	must(jpeg.Encode(&buf, asRGBA(img), &jpeg.Options{Quality: quality}))
	body := buf.Bytes()
	if o > 1 {
		body = withOrientation(body, uint16(o), o == 8)
	} else {
		o = 0
	}
	return Item{Name: name, ContentType: "image/jpeg", Body: body, Kind: kind, Width: s.w, Height: s.h, Orientation: o}
}

func (g gen) png(name, kind string, s scene) Item {
	img := paint(s, g.rand(name))
	var buf bytes.Buffer
	var m image.Image = img
	if !s.transparent {
		m = asRGBA(img)
	}
	must((&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, m))
	return Item{Name: name, ContentType: "image/png", Body: buf.Bytes(), Kind: kind, Width: s.w, Height: s.h}
}

func (g gen) webp(name, kind string, s scene) Item {
	body, err := imagefmt.EncodeWebP(paint(s, g.rand(name)))
	must(err)
	return Item{Name: name, ContentType: "image/webp", Body: body, Kind: kind, Width: s.w, Height: s.h}
}

func (g gen) gif(name string, w, h, frames int) Item {
	a := &gif.GIF{Image: animation(w, h, frames, g.rand(name))}
	for range a.Image {
		a.Delay = append(a.Delay, 10)
	}
	var buf bytes.Buffer
	must(gif.EncodeAll(&buf, a))
	return Item{Name: name, ContentType: "image/gif", Body: buf.Bytes(), Kind: KindAnimated, Width: w, Height: h}
}

func (g gen) broken() []Item {
	j := g.jpeg("broken-truncated.jpg", scene{w: 320, h: 240, shapes: 3, grain: 4}, 85, 0)
	p := g.png("broken-truncated.png", KindBroken, scene{w: 200, h: 150, shapes: 3, grain: 4})
	r := g.rand("broken-header.gif")
	garbage := make([]byte, 64)
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	garbage[4] = 0xff // a logical screen descriptor that cannot be read: the file ends in its colour table
	return []Item{
		{Name: "broken-truncated.jpg", ContentType: "image/jpeg", Body: j.Body[:len(j.Body)*3/5], Kind: KindBroken},
		{Name: "broken-truncated.png", ContentType: "image/png", Body: p.Body[:len(p.Body)/2], Kind: KindBroken},
		{Name: "broken-header.gif", ContentType: "image/gif", Body: append([]byte("GIF89a"), garbage[:16]...), Kind: KindBroken},
		{Name: "broken-empty.jpg", ContentType: "image/jpeg", Body: []byte{}, Kind: KindBroken},
		{Name: "broken-not-an-image.jpg", ContentType: "image/jpeg",
			Body: []byte("This is not an image, whatever the Content-Type says.\n"), Kind: KindBroken},
	}
}

// must panics on an encoder error, which cannot happen for in-memory
// images of the sizes above.
func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("samples: corpus: %v", err))
	}
}
