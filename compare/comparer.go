package compare

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
)

// Comparer compares responses under one route's Settings. It is built once
// by New (settings validated and compiled) and is safe for concurrent use.
type Comparer struct {
	s Settings // defaults applied
	// ignoredHeaders holds the lower-cased names of headers not compared,
	// indexed by name length so that a lookup is cheap and allocation-free.
	ignoredHeaders [maxHeaderNameLen + 1][]string
	ignoreJSON     []pattern
	budget         *DecodeBudget // nil: decodes are bounded by max_image_pixels only
	jsonScratch    sync.Pool     // *jsonScratch: the tapes of JSON comparisons
}

// Option changes how a Comparer works, beyond its route's Settings.
type Option func(*Comparer)

// WithDecodeBudget makes every image decode of the Comparer reserve its
// memory in b, which other Comparers (and HeatMap) may share. Without it,
// decodes are bounded per image by max_image_pixels only.
func WithDecodeBudget(b *DecodeBudget) Option { return func(c *Comparer) { c.budget = b } }

// New validates s and compiles it into a Comparer. The error joins every
// problem Validate finds.
func New(s Settings, opts ...Option) (*Comparer, error) {
	if errs := s.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c := &Comparer{s: s.withDefaults()}
	for _, o := range opts {
		o(c)
	}
	add := func(h string) {
		if containsFold(s.CompareHeaders, h) {
			return
		}
		l := lowerASCII(h)
		if !containsFold(c.ignoredHeaders[len(l)], l) {
			c.ignoredHeaders[len(l)] = append(c.ignoredHeaders[len(l)], l)
		}
	}
	for _, h := range hopByHopHeaders {
		add(h)
	}
	for _, h := range defaultNoiseHeaders {
		add(h)
	}
	for _, h := range s.IgnoreHeaders {
		add(h)
	}
	for _, p := range s.IgnoreJSON {
		segs, _ := parsePath(p, true) // checked by Validate
		c.ignoreJSON = append(c.ignoreJSON, segs)
	}
	return c, nil
}

// Settings returns the settings c was built from, with defaults filled in.
func (c *Comparer) Settings() Settings { return c.s }

// Compare compares the legacy response with the new one; differences are
// oriented legacy → new (Difference.Legacy holds the legacy side). A
// transport error (Err) on either side gives OutcomeError with one
// difference of kind status at "$.error" whose sides read "error: …" or
// "status 200". Compare never panics: an internal failure gives OutcomeError
// with a difference at "$.body" that says what went wrong.
//
// Equal status, equal compared headers and equal bodies (same size and
// SHA-256) are a match found without parsing anything or allocating.
// When the statuses differ, bodies are compared by hash and size only: two
// bodies answering different statuses are not worth a structural diff.
func (c *Comparer) Compare(legacy, new *Response) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			res = Result{Outcome: OutcomeError, Diffs: []Difference{{
				Kind: KindBody, Path: "$.body",
				New: truncate(fmt.Sprintf("internal error: comparison panicked: %v\n%s", p, debug.Stack()), 2000),
			}}}
		}
	}()
	if legacy == nil || new == nil {
		return Result{Outcome: OutcomeError, Diffs: []Difference{{
			Kind: KindStatus, Path: "$.error", Legacy: nilErr(legacy), New: nilErr(new),
		}}}
	}
	if legacy.Err != "" || new.Err != "" {
		return Result{Outcome: OutcomeError, Diffs: []Difference{{
			Kind: KindStatus, Path: "$.error", Legacy: sideState(legacy), New: sideState(new),
		}}}
	}
	bodyEqual := bodiesEqual(legacy, new)
	if legacy.Status == new.Status && bodyEqual && c.headersEqualFast(legacy.Header, new.Header) {
		return Result{Outcome: OutcomeMatch}
	}

	var diffs []Difference
	if legacy.Status != new.Status {
		diffs = append(diffs, Difference{
			Kind: KindStatus, Path: "$.status",
			Legacy: strconv.Itoa(legacy.Status), New: strconv.Itoa(new.Status),
		})
	}
	if !c.headersEqualFast(legacy.Header, new.Header) {
		diffs = c.diffHeaders(diffs, legacy.Header, new.Header) // it allocates; equal headers need not
	}
	var limit Limit
	switch {
	case bodyEqual:
	case legacy.Status != new.Status:
		diffs = append(diffs, hashDiff(legacy, new, ""))
	default:
		diffs, limit = c.diffBodies(diffs, legacy, new)
	}
	if len(diffs) == 0 {
		return Result{Outcome: OutcomeMatch, Limit: limit}
	}
	return Result{Outcome: OutcomeMismatch, Diffs: diffs, Limit: limit}
}

// Compare compares legacy with new under s. Invalid settings give
// OutcomeError with the problems as a difference; build a Comparer with New
// to check settings once instead of on every call.
func Compare(legacy, new Response, s Settings) Result {
	c, err := New(s)
	if err != nil {
		return Result{Outcome: OutcomeError, Diffs: []Difference{{
			Kind: KindBody, Path: "$.body", New: "invalid settings: " + err.Error(),
		}}}
	}
	return c.Compare(&legacy, &new)
}

func nilErr(r *Response) string {
	if r == nil {
		return "no response"
	}
	return sideState(r)
}

// sideState describes one side for an error difference.
func sideState(r *Response) string {
	if r.Err != "" {
		return "error: " + r.Err
	}
	return "status " + strconv.Itoa(r.Status)
}

// SetBody sets r's Body to b, the whole body, and fills Size and SHA256.
func (r *Response) SetBody(b []byte) {
	r.Body = b
	r.Size = int64(len(b))
	r.SHA256 = sha256.Sum256(b)
}

// bodiesEqual reports whether the two bodies are the same bytes, from the
// sizes and hashes when set, else from the bytes themselves. It does not
// allocate.
func bodiesEqual(a, b *Response) bool {
	if a.Size != b.Size {
		return false
	}
	var zero [32]byte
	if a.SHA256 != zero && b.SHA256 != zero {
		return a.SHA256 == b.SHA256
	}
	if a.Truncated() || b.Truncated() {
		return false // cannot know
	}
	return bytes.Equal(a.Body, b.Body)
}

// sum returns r's body hash, computing it from Body when unset and Body is
// complete.
func sum(r *Response) (h [32]byte, ok bool) {
	var zero [32]byte
	if r.SHA256 != zero {
		return r.SHA256, true
	}
	if r.Truncated() {
		return zero, false
	}
	return sha256.Sum256(r.Body), true
}

// bodySummary renders "sha256:0123456789ab… size:123".
func bodySummary(r *Response) string {
	h, ok := sum(r)
	if !ok {
		return "sha256:unknown size:" + strconv.FormatInt(r.Size, 10)
	}
	return fmt.Sprintf("sha256:%x… size:%d", h[:6], r.Size)
}

// hashDiff is the body difference by hash and size, with an optional note
// appended to both sides ("; not decoded: …").
func hashDiff(legacy, new *Response, note string) Difference {
	d := Difference{Kind: KindBody, Path: "$.body", Legacy: bodySummary(legacy), New: bodySummary(new)}
	if note != "" {
		d.Legacy += "; " + note
		d.New += "; " + note
	}
	return d
}

// diffBodies compares two bodies known to differ, choosing by content: images
// (by magic bytes), JSON (by Content-Type or shape), then plain bytes, with a
// line summary for text. A body that is only a prefix of the response
// (Truncated) cannot be parsed and is compared by hash and size. limit names
// the bound, if any, that made the bodies compare by hash and size.
func (c *Comparer) diffBodies(diffs []Difference, legacy, new *Response) (_ []Difference, limit Limit) {
	if legacy.Truncated() || new.Truncated() {
		return append(diffs, hashDiff(legacy, new, "compared by hash: body truncated at capture")), ""
	}
	lf, nf := sniffImage(legacy.Body), sniffImage(new.Body)
	if lf != "" || nf != "" {
		return c.diffImages(diffs, legacy, new, lf, nf)
	}
	lct, nct := headerValue(legacy.Header, "Content-Type"), headerValue(new.Header, "Content-Type")
	if isJSONType(lct) || isJSONType(nct) || (looksLikeJSON(legacy.Body) && looksLikeJSON(new.Body)) {
		if d, ok, limit := c.diffJSON(diffs, legacy, new); ok {
			return d, limit
		}
	}
	if isTextType(lct) || isTextType(nct) {
		return append(diffs, textDiff(legacy, new)), ""
	}
	return append(diffs, hashDiff(legacy, new, "")), ""
}
