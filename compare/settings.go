package compare

import (
	"fmt"
	"math"
	"strings"
)

// Settings are one route's comparison settings, as written in the route's
// `compare:` block. The zero value is valid: every field documents what its
// zero value means.
type Settings struct {
	// IgnoreHeaders names response headers (case-insensitive) not compared,
	// in addition to HopByHopHeaders() and DefaultNoiseHeaders().
	// Default none.
	IgnoreHeaders []string `yaml:"ignore_headers" json:"ignore_headers,omitempty"`
	// CompareHeaders names headers of DefaultNoiseHeaders() that this route
	// compares after all (say ETag, when both backends must agree on it).
	// Default none.
	CompareHeaders []string `yaml:"compare_headers" json:"compare_headers,omitempty"`
	// IgnoreJSON lists JSON paths whose differences are dropped, each with
	// everything below it: "$.processed_at", "$.items[*].id", "$.meta.*",
	// `$["odd key"]`. "*" and "[*]" match any one key or index; ".." is not
	// supported. Default none.
	IgnoreJSON []string `yaml:"ignore_json" json:"ignore_json,omitempty"`
	// JSONNumberTolerance is the largest absolute difference between two
	// JSON numbers that still counts as equal. Default 0: numerically equal
	// (1.0 equals 1 and 1e2 equals 100, compared exactly, not as float64).
	JSONNumberTolerance float64 `yaml:"json_number_tolerance" json:"json_number_tolerance,omitempty"`
	// MaxJSONBytes is the largest body parsed as JSON; a larger one is
	// compared by hash and size. Default 0: 8 MiB.
	MaxJSONBytes int64 `yaml:"max_json_bytes" json:"max_json_bytes,omitempty"`
	// MaxJSONDepth is the deepest nesting of arrays and objects parsed; a
	// deeper document is compared by hash and size. Default 0: 64.
	MaxJSONDepth int `yaml:"max_json_depth" json:"max_json_depth,omitempty"`
	// MaxJSONNodes is the most values (the document, and every object member
	// and array element) a JSON body may hold to be compared structurally;
	// a larger one is compared by hash and size. The count is a byte scan
	// before parsing, so a document of a million keys costs milliseconds,
	// not the seconds go-cmp would spend. Default 0: 100000.
	MaxJSONNodes int64 `yaml:"max_json_nodes" json:"max_json_nodes,omitempty"`

	// ImageMinPSNR is the lowest peak signal-to-noise ratio, in dB, between
	// the two decoded images (both reduced to half the legacy size, at most
	// 256 px a side) that still counts as equal. Default 0: 30 dB.
	ImageMinPSNR float64 `yaml:"image_min_psnr" json:"image_min_psnr,omitempty"`
	// ImageMinSSIM is the lowest mean structural similarity (SSIM, Wang et
	// al. 2004, on BT.601 luma in 8×8 windows) between the two reduced
	// images that still counts as equal, in (0, 1]; 1 means identical luma.
	// Default 0: DefaultImageMinSSIM.
	ImageMinSSIM float64 `yaml:"image_min_ssim" json:"image_min_ssim,omitempty"`
	// ImageMaxDeltaE is the largest mean colour difference, CIEDE2000 (ΔE00)
	// between the mean colours of 16×16-pixel tiles of the two reduced
	// images, that still counts as equal. About 1 is the smallest
	// difference an observer sees side by side; harmless resampling and
	// re-encoding stay under 0.35 on the corpus, colour shifts of 3 levels
	// reach 1 (measure.go). Default 0: DefaultImageMaxDeltaE.
	ImageMaxDeltaE float64 `yaml:"image_max_delta_e" json:"image_max_delta_e,omitempty"`
	// ImageMaxMeanShift is an optional extra limit on the per-channel mean
	// signed difference (new − legacy of R, G and B, in 0..255 levels): a
	// shift past it is reported as $.image.mean_shift even when ΔE00 is
	// within image_max_delta_e. Default 0: off (colour is judged by ΔE00
	// alone; before ΔE00, 0 meant 1.5 levels).
	ImageMaxMeanShift float64 `yaml:"image_max_mean_shift" json:"image_max_mean_shift,omitempty"`
	// ImageDimTolerance is the largest difference in width or height, in
	// pixels, that still counts as equal dimensions. Default 0: exact.
	ImageDimTolerance int `yaml:"image_dim_tolerance" json:"image_dim_tolerance,omitempty"`
	// MaxImagePixels is the largest width × height decoded (decode-bomb
	// guard, checked on the header before decoding); a larger image is
	// compared by format, dimensions, hash and size only. Default 0: 50e6.
	MaxImagePixels int64 `yaml:"max_image_pixels" json:"max_image_pixels,omitempty"`

	// NoiseMinSamples is the number of legacy-vs-secondary comparisons a
	// route needs before any path can be learned as noise. Default 0: 100.
	NoiseMinSamples int `yaml:"noise_min_samples" json:"noise_min_samples,omitempty"`
	// NoiseAbsTolerance is how far, as an absolute rate (0..1), a path's
	// primary diff rate may exceed its secondary diff rate and the path
	// still count as noise. Default 0: 0.001 (0.1 percentage point).
	NoiseAbsTolerance float64 `yaml:"noise_abs_tolerance" json:"noise_abs_tolerance,omitempty"`
	// NoiseRelTolerance is how far, relative to the secondary diff rate, a
	// path's primary diff rate may exceed it and the path still count as
	// noise. Default 0: 0.2 (20%).
	NoiseRelTolerance float64 `yaml:"noise_rel_tolerance" json:"noise_rel_tolerance,omitempty"`
}

// Defaults for the zero values of Settings.
const (
	DefaultMaxJSONBytes      = 8 << 20
	DefaultMaxJSONDepth      = 64
	DefaultMaxJSONNodes      = 100_000
	DefaultImageMinPSNR      = 30.0
	DefaultImageMinSSIM      = 0.90
	DefaultImageMaxDeltaE    = 0.6
	DefaultMaxImagePixels    = 50_000_000
	DefaultNoiseMinSamples   = 100
	DefaultNoiseAbsTolerance = 0.001
	DefaultNoiseRelTolerance = 0.2
)

// Fixed limits.
const (
	maxJSONDepthLimit         = 10000 // encoding/json's own nesting limit
	imageCompareSide          = 256   // pixels are compared at most this many a side
	maxHeaderNameLen          = 256
	maxDiffValueLen           = 200 // Difference.Legacy and .New are cut at this many bytes
	maxJSONDiffs              = 100 // a JSON comparison lists this many differences, then new shapes only
	maxTextDiffLines          = 1 << 20
	defaultTextLineSampleSize = 60
)

// hopByHopHeaders are never compared: they describe a connection, not the
// response (RFC 9110 §7.6.1). Headers named in a Connection header are
// hop-by-hop too.
var hopByHopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding",
	"Upgrade", "Trailer", "Proxy-Authenticate", "Proxy-Authorization",
}

// defaultNoiseHeaders: see DefaultNoiseHeaders.
var defaultNoiseHeaders = []string{
	"Age", "Content-Length", "Date", "ETag", "Expires", "Last-Modified",
	"Server", "Server-Timing", "Set-Cookie", "Via", "X-Request-Id",
	"X-Response-Time", "X-Runtime",
}

// DefaultNoiseHeaders returns the headers not compared unless a route lists
// them in compare_headers: Age, Content-Length, Date, ETag, Expires,
// Last-Modified, Server, Server-Timing, Set-Cookie, Via, X-Request-Id,
// X-Response-Time and X-Runtime. They differ between any two servers or
// requests (Date, Server, Age, Expires, Via, X-Request-Id, X-Runtime,
// X-Response-Time, Server-Timing), are derived from the body, which is
// compared itself (Content-Length, ETag, Last-Modified), or carry
// per-session secrets (Set-Cookie).
func DefaultNoiseHeaders() []string { return append([]string(nil), defaultNoiseHeaders...) }

// HopByHopHeaders returns the headers never compared (besides those named in
// a Connection header): Connection, Keep-Alive, Proxy-Connection, TE,
// Transfer-Encoding, Upgrade, Trailer, Proxy-Authenticate and
// Proxy-Authorization.
func HopByHopHeaders() []string { return append([]string(nil), hopByHopHeaders...) }

// withDefaults returns s with every zero value replaced by its default.
func (s Settings) withDefaults() Settings {
	if s.MaxJSONBytes == 0 {
		s.MaxJSONBytes = DefaultMaxJSONBytes
	}
	if s.MaxJSONDepth == 0 {
		s.MaxJSONDepth = DefaultMaxJSONDepth
	}
	if s.MaxJSONNodes == 0 {
		s.MaxJSONNodes = DefaultMaxJSONNodes
	}
	if s.ImageMinPSNR == 0 {
		s.ImageMinPSNR = DefaultImageMinPSNR
	}
	if s.ImageMinSSIM == 0 {
		s.ImageMinSSIM = DefaultImageMinSSIM
	}
	if s.ImageMaxDeltaE == 0 {
		s.ImageMaxDeltaE = DefaultImageMaxDeltaE
	}
	if s.MaxImagePixels == 0 {
		s.MaxImagePixels = DefaultMaxImagePixels
	}
	if s.NoiseMinSamples == 0 {
		s.NoiseMinSamples = DefaultNoiseMinSamples
	}
	if s.NoiseAbsTolerance == 0 {
		s.NoiseAbsTolerance = DefaultNoiseAbsTolerance
	}
	if s.NoiseRelTolerance == 0 {
		s.NoiseRelTolerance = DefaultNoiseRelTolerance
	}
	return s
}

// Validate returns every problem in s, each naming its field by its YAML key
// ("image_min_psnr: must not be negative"). Nil means s is valid.
func (s Settings) Validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for i, h := range s.IgnoreHeaders {
		if err := checkHeaderName(h); err != nil {
			bad(fmt.Sprintf("ignore_headers[%d]", i), "%v", err)
		}
	}
	for i, h := range s.CompareHeaders {
		if err := checkHeaderName(h); err != nil {
			bad(fmt.Sprintf("compare_headers[%d]", i), "%v", err)
		} else if !containsFold(defaultNoiseHeaders, h) {
			bad(fmt.Sprintf("compare_headers[%d]", i), "%q is compared anyway: compare_headers only takes back one of %s",
				h, strings.Join(defaultNoiseHeaders, ", "))
		}
	}
	for i, p := range s.IgnoreJSON {
		if _, err := parsePath(p, true); err != nil {
			bad(fmt.Sprintf("ignore_json[%d]", i), "bad path %q: %v", p, err)
		}
	}
	nonNegFloat := func(field string, v, max float64, zero string) {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			bad(field, "must be a finite number, got %v", v)
		case v < 0:
			bad(field, "must not be negative, got %v (0 means %s)", v, zero)
		case max > 0 && v > max:
			bad(field, "must be at most %v, got %v", max, v)
		}
	}
	nonNegInt := func(field string, v int64, zero string) {
		if v < 0 {
			bad(field, "must not be negative, got %d (0 means %s)", v, zero)
		}
	}
	nonNegFloat("json_number_tolerance", s.JSONNumberTolerance, 0, "exact")
	nonNegInt("max_json_bytes", s.MaxJSONBytes, "8 MiB")
	nonNegInt("max_json_depth", int64(s.MaxJSONDepth), "64")
	nonNegInt("max_json_nodes", s.MaxJSONNodes, "100000")
	if s.MaxJSONDepth > maxJSONDepthLimit {
		bad("max_json_depth", "must be at most %d, got %d", maxJSONDepthLimit, s.MaxJSONDepth)
	}
	nonNegFloat("image_min_psnr", s.ImageMinPSNR, 0, "30 dB")
	switch v := s.ImageMinSSIM; {
	case math.IsNaN(v) || math.IsInf(v, 0):
		bad("image_min_ssim", "must be a finite number, got %v", v)
	case v < 0 || v > 1:
		bad("image_min_ssim", "must be in (0, 1], got %v (0 means %v)", v, DefaultImageMinSSIM)
	}
	nonNegFloat("image_max_delta_e", s.ImageMaxDeltaE, 0, fmt.Sprint(DefaultImageMaxDeltaE))
	nonNegFloat("image_max_mean_shift", s.ImageMaxMeanShift, 255, "off")
	nonNegInt("image_dim_tolerance", int64(s.ImageDimTolerance), "exact")
	nonNegInt("max_image_pixels", s.MaxImagePixels, "50e6")
	nonNegInt("noise_min_samples", int64(s.NoiseMinSamples), "100")
	nonNegFloat("noise_abs_tolerance", s.NoiseAbsTolerance, 1, "0.001")
	nonNegFloat("noise_rel_tolerance", s.NoiseRelTolerance, 1, "0.2")
	return errs
}

// checkHeaderName checks that h is a valid header field name (RFC 9110 token).
func checkHeaderName(h string) error {
	if h == "" {
		return fmt.Errorf("empty header name")
	}
	if len(h) > maxHeaderNameLen {
		return fmt.Errorf("header name longer than %d bytes", maxHeaderNameLen)
	}
	for i := 0; i < len(h); i++ {
		if !isTokenChar(h[i]) {
			return fmt.Errorf("%q is not a valid header name (bad character %q)", h, h[i])
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
