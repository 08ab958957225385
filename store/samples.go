package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tandem-proxy/tandem/compare"
)

// Redacted replaces the value of a sensitive header wherever it would be
// stored.
const Redacted = "[redacted]"

// maxDiffValue caps each stored Difference.Legacy and .New.
const maxDiffValue = 64 << 10

// sensitiveHeaders are the headers whose values are never stored.
var sensitiveHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

func isSensitive(name string) bool {
	for _, h := range sensitiveHeaders {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// headerNameOfPath returns the header a difference path is about:
// "$.header.Set-Cookie" and `$.header["Set-Cookie"]` give "Set-Cookie".
func headerNameOfPath(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "$.header")
	if !ok {
		return "", false
	}
	switch {
	case strings.HasPrefix(rest, "."):
		return rest[1:], true
	case strings.HasPrefix(rest, "["):
		return strings.Trim(rest, `[]"'`), true
	}
	return "", false
}

func redactHeaders(h []compare.HeaderField) []compare.HeaderField {
	out := make([]compare.HeaderField, len(h))
	for i, f := range h {
		if isSensitive(f.Name) {
			f.Value = Redacted
		}
		out[i] = f
	}
	return out
}

// redactDiffs copies diffs, redacting the values of differences on
// sensitive headers and capping the others at maxDiffValue bytes.
func redactDiffs(diffs []compare.Difference) []compare.Difference {
	out := make([]compare.Difference, len(diffs))
	for i, d := range diffs {
		if name, ok := headerNameOfPath(d.Path); ok && isSensitive(name) {
			d.Legacy, d.New = Redacted, Redacted
		}
		d.Legacy, d.New = capString(d.Legacy, maxDiffValue), capString(d.New, maxDiffValue)
		out[i] = d
	}
	return out
}

// minSecret is the shortest secret value scrubbed by content; shorter ones
// would redact ordinary text.
const minSecret = 6

// scrubString replaces every occurrence of a secret in v.
func scrubString(v string, secrets []string) string {
	for _, x := range secrets {
		if len(x) >= minSecret && strings.Contains(v, x) {
			v = strings.ReplaceAll(v, x, Redacted)
		}
	}
	return v
}

// scrubBytes replaces every occurrence of a secret in b (a copy is made
// only when something is replaced).
func scrubBytes(b []byte, secrets []string) []byte {
	for _, x := range secrets {
		if len(x) >= minSecret && bytes.Contains(b, []byte(x)) {
			b = bytes.ReplaceAll(b, []byte(x), []byte(Redacted))
		}
	}
	return b
}

// scrubSide removes secrets from a side's headers and error.
func scrubSide(ss *SideSample, secrets []string) {
	for i := range ss.Header {
		ss.Header[i].Value = scrubString(ss.Header[i].Value, secrets)
	}
	ss.Err = scrubString(ss.Err, secrets)
}

func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…[truncated]"
}

// sideSample is the stored form of one side: its metadata (Body nil) and
// the kept prefix of its body.
func sideSample(r *compare.Response, latency time.Duration, bodyMax int64) (SideSample, []byte) {
	if r == nil {
		return SideSample{Err: "no response captured"}, nil
	}
	size := max(r.Size, int64(len(r.Body)))
	body := r.Body
	if int64(len(body)) > bodyMax {
		body = body[:bodyMax]
	}
	ss := SideSample{
		Status:        r.Status,
		Header:        redactHeaders(r.Header),
		Size:          size,
		LatencyMS:     float64(latency) / float64(time.Millisecond),
		Err:           r.Err,
		BodyTruncated: int64(len(body)) < size,
	}
	if r.SHA256 != ([32]byte{}) {
		ss.SHA256 = hex.EncodeToString(r.SHA256[:])
	}
	return ss, body
}

// Sample is one stored exchange: both sides and every difference.
type Sample struct {
	ID        string    `json:"id"`
	Route     string    `json:"route"`
	RequestID string    `json:"request_id"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	ServedBy  string    `json:"served_by"`
	At        time.Time `json:"at"`
	// Outcome is the differences classified by the store's noise model
	// when read (mismatch or noise); a sample recorded as a compare error
	// stays OutcomeError. Each of Diffs has its Noise flag from the model
	// now, not from when it was recorded.
	Outcome compare.Outcome      `json:"outcome"`
	Diffs   []compare.Difference `json:"diffs"`
	Legacy  SideSample           `json:"legacy"`
	New     SideSample           `json:"new"`
}

// SideSample is one side of a Sample. Sensitive header values read
// "[redacted]".
type SideSample struct {
	Status    int                   `json:"status"`
	Header    []compare.HeaderField `json:"header"`
	Size      int64                 `json:"size"`   // full body size
	SHA256    string                `json:"sha256"` // hex, of the full body
	LatencyMS float64               `json:"latency_ms"`
	Err       string                `json:"error,omitempty"`
	// Body holds at most Options.SampleBodyMax bytes of the body.
	Body          []byte `json:"body,omitempty"`
	BodyTruncated bool   `json:"body_truncated"`
}

// SampleFilter selects samples.
type SampleFilter struct {
	Route string // "" = every route
	// Path filters by difference path when it starts with "$" ("$.status",
	// "$.items[3].width": samples with a difference there), else by request
	// path prefix ("/upload"). "" = no filter.
	Path string
	// Since keeps the samples at or after it; zero keeps every age.
	Since time.Time
	Limit int // 0 → 50; at most 1000
}

// SampleSummary is a line of the sample list.
type SampleSummary struct {
	ID        string    `json:"id"`
	Route     string    `json:"route"`
	RequestID string    `json:"request_id"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	ServedBy  string    `json:"served_by"`
	At        time.Time `json:"at"`
	// Outcome is as the noise model reads the sample's differences now
	// (see Sample.Outcome).
	Outcome      compare.Outcome `json:"outcome"`
	LegacyStatus int             `json:"legacy_status"`
	NewStatus    int             `json:"new_status"`
	DiffPaths    []string        `json:"diff_paths"` // each differing path once, in the comparer's order
}

// Sample limits.
const (
	DefaultSampleLimit = 50
	MaxSampleLimit     = 1000
)

// Samples lists stored samples, newest first.
func (s *Store) Samples(f SampleFilter) ([]SampleSummary, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultSampleLimit
	}
	limit = min(limit, MaxSampleLimit)
	var where []string
	var args []any
	if f.Route != "" {
		where = append(where, "route = ?")
		args = append(args, f.Route)
	}
	switch {
	case strings.HasPrefix(f.Path, "$"):
		where = append(where, "id IN (SELECT sample_id FROM sample_paths WHERE path = ?)")
		args = append(args, f.Path)
	case f.Path != "":
		where = append(where, "substr(path, 1, ?) = ?")
		args = append(args, len(f.Path), f.Path)
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, f.Since.UnixNano())
	}
	// The (kind, path) pairs of the differences, without their values, to
	// classify the sample as the noise model reads it now.
	q := `SELECT id, route, request_id, method, path, served_by, at, outcome,
		COALESCE(json_extract(legacy, '$.status'), 0), COALESCE(json_extract(new, '$.status'), 0), diff_paths,
		(SELECT json_group_array(json_object('kind', json_extract(d.value, '$.kind'), 'path', json_extract(d.value, '$.path')))
			FROM json_each(samples.diffs) d)
		FROM samples`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY at DESC, id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.rdb.QueryContext(context.Background(), q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list samples: %w", err)
	}
	defer rows.Close()
	out := []SampleSummary{}
	for rows.Next() {
		var x SampleSummary
		var at int64
		var outcome, paths, pairs string
		if err := rows.Scan(&x.ID, &x.Route, &x.RequestID, &x.Method, &x.Path, &x.ServedBy, &at, &outcome,
			&x.LegacyStatus, &x.NewStatus, &paths, &pairs); err != nil {
			return nil, fmt.Errorf("cannot list samples: %w", err)
		}
		x.At = time.Unix(0, at).UTC()
		var diffs []compare.Difference
		if err := errors.Join(json.Unmarshal([]byte(paths), &x.DiffPaths), json.Unmarshal([]byte(pairs), &diffs)); err != nil {
			return nil, fmt.Errorf("cannot decode sample %s: %w", x.ID, err)
		}
		x.Outcome = s.readOutcome(x.Route, compare.Outcome(outcome), diffs)
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list samples: %w", err)
	}
	return out, nil
}

// Sample returns one sample, or ErrNotFound.
func (s *Store) Sample(id string) (*Sample, error) {
	var x Sample
	var at int64
	var outcome string
	var diffs, legacy, nw, lb, nb []byte
	err := s.rdb.QueryRowContext(context.Background(), `SELECT id, route, request_id, method, path, served_by, at, outcome,
		diffs, legacy, new, legacy_body, new_body FROM samples WHERE id = ?`, id).
		Scan(&x.ID, &x.Route, &x.RequestID, &x.Method, &x.Path, &x.ServedBy, &at, &outcome, &diffs, &legacy, &nw, &lb, &nb)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read sample %s: %w", id, err)
	}
	x.At = time.Unix(0, at).UTC()
	if err := errors.Join(json.Unmarshal(diffs, &x.Diffs), json.Unmarshal(legacy, &x.Legacy), json.Unmarshal(nw, &x.New)); err != nil {
		return nil, fmt.Errorf("cannot decode sample %s: %w", id, err)
	}
	for i := range x.Diffs {
		d := &x.Diffs[i]
		d.Noise = s.o.Noise.Noise(x.Route, d.Kind, d.Path)
	}
	x.Outcome = s.readOutcome(x.Route, compare.Outcome(outcome), x.Diffs)
	x.Legacy.Body, x.New.Body = lb, nb
	return &x, nil
}

// readOutcome is a sample's outcome as the noise model reads its
// differences now; one recorded as a compare error stays one.
func (s *Store) readOutcome(route string, recorded compare.Outcome, diffs []compare.Difference) compare.Outcome {
	if !IsVerdict(recorded) {
		return recorded
	}
	r := compare.Result{Diffs: diffs}
	return s.o.Noise.Classify(route, r.Signature())
}
