// Package samples holds realistic sample media services for tandem's demo,
// tests and benchmarks, and the upload corpus to drive them with.
//
// # The image-upload service
//
// NewService returns an http.Handler; Listen serves one on a TCP address
// (a free loopback port by default) and gives its URL. POST (or PUT) the
// raw image to /upload, or any path under it:
//
//	POST /upload            body: a JPEG, PNG, GIF or WebP image (the
//	                        format is sniffed from the bytes; Content-Type
//	                        is not trusted)
//	→ 200 {"id": "…", "width": 128, "height": 96, "format": "jpeg",
//	       "sha256": "<hex of the thumbnail>", "bytes": 2441,
//	       "processed_at": "<RFC 3339, nanoseconds>",
//	       "source": {"width": 800, "height": 600, "format": "jpeg"}}
//	→ 400 {"error": "…"}    empty body, not an image, cannot be decoded
//	→ 413 {"error": "…"}    body over MaxUploadBytes, or a header claiming
//	                        more than MaxPixels (refused before decoding)
//	POST /thumbnail         the same upload, answered with the thumbnail
//	                        bytes themselves (image/jpeg or image/png), its
//	                        id in X-Thumb-Id and the time in X-Processed-At
//	GET /thumb/{id}         the thumbnail bytes, image/jpeg or image/png
//	GET /healthz            200 "ok"
//
// The thumbnail fits in ThumbSide×ThumbSide with the aspect ratio kept (no
// upscaling); it is PNG when kept transparent, else JPEG at JPEGQuality.
// The last StoreEntries thumbnails are kept in memory for GET /thumb.
// A GIF's first frame is used.
//
// # Flavours
//
// The service comes in two flavours, the legacy implementation and its
// replacement, built so that a shadow comparison finds exactly the
// differences a real migration would:
//
//   - Legacy resamples with Catmull-Rom, honours the EXIF orientation of
//     JPEGs (all eight values, read from the APP1 Exif IFD0), and keeps
//     transparency (PNG thumbnails).
//   - New resamples with bilinear: harmless pixel differences a perceptual
//     comparison accepts (38–45 dB PSNR against legacy on the seed-1 corpus, mean
//     colour shift under 0.15 levels). It has two real regressions: it
//     ignores EXIF orientation (a photo shown 300×600 gives a 128×64
//     thumbnail instead of 64×128; an upside-down one stays upside down),
//     and it flattens transparency onto black (JPEG instead of PNG).
//
// In both, "id" and "processed_at" differ on every call, and "sha256" and
// "bytes" differ between flavours for every image: a route comparing them
// marks $.id, $.processed_at, $.sha256 and $.bytes as ignored.
//
// # Corpus
//
// Corpus and WriteCorpus make a deterministic upload corpus from a seed:
// synthetic photo-like pictures (gradients, shapes, grain) as JPEG, PNG,
// GIF and WebP, EXIF-rotated JPEGs, images with transparency, an animated
// GIF and broken files; see Corpus for the list. golang.org/x/image has no
// WebP encoder, so the package carries a minimal lossless (VP8L) writer.
//
// The package is internal: only tandem's demo (cmd/tandem), its tests and
// benchmarks use it, so it is no part of the module's API. It imports no
// other tandem package.
package samples
