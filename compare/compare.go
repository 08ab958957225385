package compare

// Kind names the part of a response a Difference is about.
type Kind string

// The kinds of difference, a closed set (used as metric label values).
const (
	KindStatus Kind = "status"
	KindHeader Kind = "header"
	KindJSON   Kind = "json"
	KindImage  Kind = "image"
	KindBody   Kind = "body"
)

// Outcome is the verdict of one comparison, a closed set (used as metric label values).
type Outcome string

const (
	OutcomeMatch    Outcome = "match"    // no difference that counts
	OutcomeMismatch Outcome = "mismatch" // at least one real (non-noise) difference
	OutcomeNoise    Outcome = "noise"    // differences, all of them noise
	OutcomeError    Outcome = "error"    // a side failed (transport error), nothing to compare
)

// HeaderField is one response header line. Names are canonical (Content-Type).
type HeaderField struct {
	Name, Value string
}

// Response is one side's response as captured by the data plane. It owns its
// memory: nothing in it aliases a pooled buffer.
type Response struct {
	// Err is non-empty when the request failed at the transport level
	// (unreachable, timeout, reset); the other fields are then meaningless.
	Err    string
	Status int
	Header []HeaderField
	// Body holds the first bytes of the body, at most the capture limit.
	Body []byte
	// Size is the full body size and SHA256 the hash of the full body,
	// whether or not Body holds all of it.
	Size   int64
	SHA256 [32]byte
}

// Truncated reports whether Body holds only a prefix of the body.
func (r *Response) Truncated() bool { return int64(len(r.Body)) < r.Size }

// Difference is one finding. Path is a JSONPath-like location:
// "$.status", "$.header.Content-Type", "$.items[3].width", "$.image.psnr", "$.body".
type Difference struct {
	Kind   Kind   `json:"kind"`
	Path   string `json:"path"`
	Legacy string `json:"legacy"`
	New    string `json:"new"`
	// Noise is set when this difference is known noise (learned or marked).
	Noise bool `json:"noise,omitempty"`
}

// Result is the data of one comparison; rendering lives elsewhere.
type Result struct {
	Outcome Outcome      `json:"outcome"`
	Diffs   []Difference `json:"diffs,omitempty"`
	// Limit, when set, names the bound that made the bodies compare by
	// hash and size instead of by content (the "$.body" difference says so
	// too).
	Limit Limit `json:"limit,omitempty"`
}

// Limit names a bound on the work of one comparison, a closed set (used as
// metric label values). Past any of them the bodies compare by hash and size.
type Limit string

const (
	// LimitImagePixels: an image is over max_image_pixels.
	LimitImagePixels Limit = "image_pixels"
	// LimitDecodeBudget: decoding both images did not fit the shared
	// DecodeBudget within its wait.
	LimitDecodeBudget Limit = "decode_budget"
	// LimitJSONBytes: a JSON body is over max_json_bytes.
	LimitJSONBytes Limit = "json_bytes"
	// LimitJSONDepth: a JSON body nests deeper than max_json_depth.
	LimitJSONDepth Limit = "json_depth"
	// LimitJSONNodes: a JSON body has more values than max_json_nodes.
	LimitJSONNodes Limit = "json_nodes"
)

// Limits returns every Limit, the closed set of Result.Limit.
func Limits() []Limit {
	return []Limit{LimitImagePixels, LimitDecodeBudget, LimitJSONBytes, LimitJSONDepth, LimitJSONNodes}
}
