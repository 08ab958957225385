package compare

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-cmp/cmp"
)

// JSON bodies are compared as trees, with github.com/google/go-cmp (and a
// Reporter that collects paths) as the structural diff:
//   - object key order and white space do not matter;
//   - arrays are compared index by index ($.items[3] with $.items[3]), so an
//     element inserted at the front shows as every later element changed;
//     this keeps paths stable (noise learning counts by path) and the cost
//     linear;
//   - numbers are compared by value, exactly (1.0 = 1 = 1e0) or within
//     json_number_tolerance, never through float64 rounding when exact;
//   - strings are compared as encoding/json decodes them (escapes resolved,
//     invalid UTF-8 and lone surrogates read as U+FFFD), and of a key that
//     an object repeats only the last member counts;
//   - a field or element present on one side only is a difference whose other
//     side reads "<missing>"; an explicit null reads "null";
//   - values are rendered as compact JSON cut at 200 bytes;
//   - differences under an ignore_json path are dropped;
//   - at most 100 differences are listed, then only those at a new path
//     shape (indexes replaced by [*]), up to 200, in go-cmp's order: object
//     keys sorted, array elements by index.
//
// Each body is parsed once onto a tape (jsontape.go: flat nodes pointing
// into the body, kept in a pool by the Comparer), which also checks the
// bounds below; equal documents are recognised by a walk over the two tapes
// that allocates nothing (jsonwalk.go). Only documents that differ go to
// go-cmp, in the parts where they differ: the walk skips equal members and
// elements, walks into large containers itself, and hands go-cmp the rest
// (up to jsonCmpNodes nodes each) converted to the form encoding/json gives,
// so the differences are those go-cmp finds on the whole documents. A 10 KiB
// document pair costs about a tenth of what decoding with encoding/json and
// walking with go-cmp did (BenchmarkEqualJSON10KiB, BenchmarkDiffJSON10KiB,
// sub-benchmarks baseline and new).
//
// A body larger than max_json_bytes, nested deeper than max_json_depth or
// holding more than max_json_nodes values (object members and array
// elements, counted as a byte scan counts them: the opening brackets and the
// commas outside strings) is compared by hash and size, with Result.Limit
// naming the bound: go-cmp spends about 14 µs a value on two documents that
// differ throughout (a 700,000-key document costs 9.7 s). The tape checks
// the bounds as it parses; a body it finds invalid is scanned to its end
// (checkShape) for them. A body that is not valid JSON on one side only is a
// difference at "$" ("invalid JSON: …", encoding/json's message); when
// neither side parses, the bodies are compared as bytes.

// looksLikeJSON reports whether b starts, after white space, with { or [.
func looksLikeJSON(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}

var (
	errTooDeep     = errors.New("nested too deep")
	errTooLarge    = errors.New("too large")
	errTooManyNode = errors.New("too many values")
)

// checkShape returns errTooDeep if b nests arrays and objects deeper than
// maxDepth, and errTooManyNode if it holds more than maxNodes values: one
// for the document, and one for each member or element, counted as the
// commas and opening brackets outside strings (an empty container counts
// one it does not have, so the count errs high). It reads b once and does
// not allocate.
func checkShape(b []byte, maxDepth int, maxNodes int64) error {
	depth, inString, escaped := 0, false, false
	nodes := int64(1)
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > maxDepth {
				return errTooDeep
			}
			nodes++
		case ',':
			nodes++
		case '}', ']':
			depth--
			continue
		default:
			continue
		}
		if nodes > maxNodes {
			return errTooManyNode
		}
	}
	return nil
}

// checkJSONBounds returns errTooLarge, errTooDeep or errTooManyNode when b
// is over one of the bounds, without parsing it.
func checkJSONBounds(b []byte, maxBytes int64, maxDepth int, maxNodes int64) error {
	if int64(len(b)) > maxBytes {
		return errTooLarge
	}
	return checkShape(b, maxDepth, maxNodes)
}

// parseJSON decodes one JSON document, numbers as json.Number, arrays as
// []any (indexArrays turns them into jsonArray for go-cmp), after checking
// its bounds.
func parseJSON(b []byte, maxBytes int64, maxDepth int, maxNodes int64) (any, error) {
	if err := checkJSONBounds(b, maxBytes, maxDepth, maxNodes); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
		return nil, fmt.Errorf("data after the JSON value at offset %d", dec.InputOffset())
	}
	return v, nil
}

// diffJSON appends the differences between two JSON bodies. ok is false when
// neither body is JSON, so the caller compares them as bytes. limit names the
// bound, if any, that made the bodies compare by hash and size. Both bodies'
// bounds are checked before either is compared: a bomb on one side costs one
// byte scan.
//
// Both bodies are parsed onto tapes (jsontape.go), which checks their bounds
// on the way; equal documents are recognised by a walk over the tapes that
// allocates nothing, and only documents that differ go to go-cmp, in the
// parts where they differ (jsonwalk.go).
func (c *Comparer) diffJSON(diffs []Difference, legacy, new *Response) (_ []Difference, ok bool, limit Limit) {
	s := c.getJSONScratch()
	defer c.putJSONScratch(s)
	var invalid [2]bool
	for i, side := range []struct {
		t *jsonTape
		b []byte
	}{{&s.l, legacy.Body}, {&s.n, new.Body}} {
		err := side.t.parse(side.b, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
		if err == errSyntax {
			// Invalid, and maybe over a bound past where the parse stopped.
			invalid[i] = true
			err = checkJSONBounds(side.b, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
		}
		if d, limit, over := c.jsonBoundDiff(err, legacy, new); over {
			return append(diffs, d), true, limit
		}
		if err == errTapeLimit {
			return c.diffJSONTrees(diffs, legacy, new)
		}
	}
	if invalid[0] || invalid[1] {
		// encoding/json says why a body is invalid.
		var lerr, nerr error
		if invalid[0] {
			_, lerr = parseJSON(legacy.Body, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
		}
		if invalid[1] {
			_, nerr = parseJSON(new.Body, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
		}
		switch {
		case invalid[0] && lerr == nil || invalid[1] && nerr == nil:
			// The tape refused what encoding/json takes: a bug, but not
			// one to show as a difference; compare the decoded trees.
			return c.diffJSONTrees(diffs, legacy, new)
		case invalid[0] && invalid[1]:
			return diffs, false, ""
		case invalid[0]:
			return append(diffs, Difference{Kind: KindJSON, Path: "$", Legacy: jsonState(nil, lerr), New: "valid JSON " + s.n.kindName()}), true, ""
		default:
			return append(diffs, Difference{Kind: KindJSON, Path: "$", Legacy: "valid JSON " + s.l.kindName(), New: jsonState(nil, nerr)}), true, ""
		}
	}
	w := jwalker{c: c, a: &s.l, b: &s.n, s: s, ignore: len(c.ignoreJSON) > 0}
	if w.equal(0, 0) {
		return diffs, true, "" // the cheap check first: no diff tree for equal documents
	}
	return append(diffs, w.differences()...), true, ""
}

// jsonBoundDiff returns the difference by hash and size, and the Limit, for
// a bound error of checkJSONBounds; over is false for any other error.
func (c *Comparer) jsonBoundDiff(err error, legacy, new *Response) (_ Difference, _ Limit, over bool) {
	switch err {
	case errTooLarge:
		return hashDiff(legacy, new, fmt.Sprintf("compared by hash: JSON larger than max_json_bytes (%d)", c.s.MaxJSONBytes)), LimitJSONBytes, true
	case errTooDeep:
		return hashDiff(legacy, new, fmt.Sprintf("compared by hash: JSON nested deeper than max_json_depth (%d)", c.s.MaxJSONDepth)), LimitJSONDepth, true
	case errTooManyNode:
		return hashDiff(legacy, new, fmt.Sprintf("compared by hash: JSON with more values than max_json_nodes (%d)", c.s.MaxJSONNodes)), LimitJSONNodes, true
	}
	return Difference{}, "", false
}

// diffJSONTrees is diffJSON over documents decoded by encoding/json, for
// bodies the tape cannot take: 4 GiB and more, or (a bug) a body the tape
// finds invalid and encoding/json does not.
func (c *Comparer) diffJSONTrees(diffs []Difference, legacy, new *Response) (_ []Difference, ok bool, limit Limit) {
	for _, b := range [][]byte{legacy.Body, new.Body} {
		if d, limit, over := c.jsonBoundDiff(checkJSONBounds(b, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes), legacy, new); over {
			return append(diffs, d), true, limit
		}
	}
	lv, lerr := parseJSON(legacy.Body, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
	nv, nerr := parseJSON(new.Body, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
	switch {
	case lerr != nil && nerr != nil:
		return diffs, false, ""
	case lerr != nil || nerr != nil:
		return append(diffs, Difference{Kind: KindJSON, Path: "$", Legacy: jsonState(lv, lerr), New: jsonState(nv, nerr)}), true, ""
	}
	if c.jsonEqual(lv, nv, nil) {
		return diffs, true, ""
	}
	return append(diffs, c.cmpJSON(lv, nv)...), true, ""
}

// cmpJSON walks two parsed documents with go-cmp and returns their
// differences. It turns the documents' arrays into jsonArrays in place.
func (c *Comparer) cmpJSON(lv, nv any) []Difference {
	d := c.newJSONDiffer()
	d.cmp(nil, indexArrays(lv), indexArrays(nv))
	return d.r.diffs
}

// jsonEqual reports whether a and b are equal JSON trees by the rules above,
// skipping ignore_json paths; segs is the path of a and b. It is the
// reflection-free twin of the go-cmp walk for decoded trees (diffJSONTrees),
// as jwalker.equal is for tapes, and must agree with it.
func (c *Comparer) jsonEqual(a, b any, segs []segment) bool {
	if len(c.ignoreJSON) > 0 && c.ignoredJSON(segs) {
		return true
	}
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case json.Number:
		bn, ok := b.(json.Number)
		return ok && numbersEqual(a, bn, c.s.JSONNumberTolerance)
	case []any:
		ba, ok := b.([]any)
		if !ok {
			return false
		}
		if len(a) != len(ba) && len(c.ignoreJSON) == 0 {
			return false
		}
		for i := 0; i < max(len(a), len(ba)); i++ {
			var x, y any
			if i < len(a) {
				x = a[i]
			}
			if i < len(ba) {
				y = ba[i]
			}
			if !c.jsonEqualChild(x, y, i < len(a), i < len(ba), append(segs, indexSeg(i))) {
				return false
			}
		}
		return true
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			return false
		}
		if len(a) != len(bm) && len(c.ignoreJSON) == 0 {
			return false
		}
		for k, x := range a {
			y, oky := bm[k]
			if !c.jsonEqualChild(x, y, true, oky, append(segs, keySeg(k))) {
				return false
			}
		}
		for k, y := range bm {
			if _, okx := a[k]; !okx && !c.jsonEqualChild(nil, y, false, true, append(segs, keySeg(k))) {
				return false
			}
		}
		return true
	}
	return false
}

// jsonEqualChild compares one child that may be missing on either side.
func (c *Comparer) jsonEqualChild(x, y any, okx, oky bool, segs []segment) bool {
	if okx && oky {
		return c.jsonEqual(x, y, segs)
	}
	return len(c.ignoreJSON) > 0 && c.ignoredJSON(segs) // missing on one side
}

// ignoredJSON reports whether segs is under an ignore_json path.
func (c *Comparer) ignoredJSON(segs []segment) bool {
	for _, p := range c.ignoreJSON {
		if p.matchesSegs(segs) {
			return true
		}
	}
	return false
}

// jsonState describes one side's parse result for a difference at "$".
func jsonState(v any, err error) string {
	if err != nil {
		return truncate("invalid JSON: "+err.Error(), maxDiffValueLen)
	}
	return "valid JSON " + jsonKind(v)
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}

// jsonArray is a JSON array held as a map from index to element, so that
// go-cmp compares arrays index by index (see above) instead of by edit
// script, whose alignment is neither stable nor linear in cost.
type jsonArray map[int]any

// indexArrays replaces every []any in v by a jsonArray.
func indexArrays(v any) any {
	switch v := v.(type) {
	case []any:
		m := make(jsonArray, len(v))
		for i, e := range v {
			m[i] = indexArrays(e)
		}
		return m
	case map[string]any:
		for k, e := range v {
			v[k] = indexArrays(e)
		}
	}
	return v
}

// jsonReporter is a cmp.Reporter that turns go-cmp's path steps into path
// segments and collects a Difference for each unequal leaf.
type jsonReporter struct {
	ignore  []pattern
	segs    []segment
	pushed  []bool
	steps   []cmp.PathStep
	diffs   []Difference
	shapes  map[string]bool // shape paths listed, once past maxJSONDiffs
	dropped int
}

func (r *jsonReporter) PushStep(ps cmp.PathStep) {
	r.steps = append(r.steps, ps)
	pushed := false
	if mi, ok := ps.(cmp.MapIndex); ok {
		switch k := mi.Key(); k.Kind() {
		case reflect.String:
			r.segs, pushed = append(r.segs, keySeg(k.String())), true
		case reflect.Int:
			r.segs, pushed = append(r.segs, indexSeg(int(k.Int()))), true
		}
	}
	r.pushed = append(r.pushed, pushed)
}

func (r *jsonReporter) PopStep() {
	if r.pushed[len(r.pushed)-1] {
		r.segs = r.segs[:len(r.segs)-1]
	}
	r.pushed = r.pushed[:len(r.pushed)-1]
	r.steps = r.steps[:len(r.steps)-1]
}

// ignored reports whether the current node is under an ignore_json path.
func (r *jsonReporter) ignored() bool {
	for _, p := range r.ignore {
		if p.matchesSegs(r.segs) {
			return true
		}
	}
	return false
}

func (r *jsonReporter) Report(res cmp.Result) {
	if res.Equal() {
		return
	}
	path := renderPath(r.segs)
	if len(r.diffs) >= maxJSONDiffs {
		// Past the cap, list only paths of a shape not seen yet, so that
		// noise learning still sees every kind of difference.
		if r.shapes == nil {
			r.shapes = map[string]bool{}
			for _, d := range r.diffs {
				r.shapes[shapePath(d.Path)] = true
			}
		}
		sp := shapePath(path)
		if r.shapes[sp] || len(r.diffs) >= 2*maxJSONDiffs {
			r.dropped++
			return
		}
		r.shapes[sp] = true
	}
	vx, vy := r.steps[len(r.steps)-1].Values()
	r.diffs = append(r.diffs, Difference{Kind: KindJSON, Path: path, Legacy: renderValue(vx), New: renderValue(vy)})
}

// renderValue renders one side's value at a difference as compact JSON.
func renderValue(v reflect.Value) string {
	if !v.IsValid() {
		return missing
	}
	b := appendJSON(nil, v.Interface(), maxDiffValueLen)
	if len(b) > maxDiffValueLen {
		return truncate(string(b), maxDiffValueLen)
	}
	return string(b)
}

// appendJSON renders v as compact JSON with sorted keys onto b, stopping soon
// after b grows past limit bytes.
func appendJSON(b []byte, v any, limit int) []byte {
	if len(b) > limit {
		return b
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case json.Number:
		return append(b, v...)
	case string:
		return strconv.AppendQuote(b, v)
	case jsonArray:
		b = append(b, '[')
		for i := 0; i < len(v); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			if b = appendJSON(b, v[i], limit); len(b) > limit {
				return b
			}
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, k)
			b = append(b, ':')
			if b = appendJSON(b, v[k], limit); len(b) > limit {
				return b
			}
		}
		return append(b, '}')
	}
	return fmt.Appendf(b, "%v", v)
}

// numbersEqual reports whether two JSON numbers are equal: exactly by
// decimal value when tol is 0, else within tol as float64.
func numbersEqual(a, b json.Number, tol float64) bool {
	if a == b {
		return true
	}
	if tol > 0 {
		x, err1 := strconv.ParseFloat(string(a), 64)
		y, err2 := strconv.ParseFloat(string(b), 64)
		if err1 == nil && err2 == nil && !math.IsInf(x, 0) && !math.IsInf(y, 0) {
			return math.Abs(x-y) <= tol
		}
	}
	return canonicalNumber(string(a)) == canonicalNumber(string(b))
}

// canonicalNumber renders a JSON number as sign, significant digits and
// exponent ("-1.50e2" → "-15e1"), so that equal values give equal strings
// without arithmetic. Exponents saturate at ±1e9.
func canonicalNumber(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	exp := 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e := s[i+1:]
		s = s[:i]
		eneg := strings.HasPrefix(e, "-")
		e = strings.TrimLeft(e, "+-")
		for _, c := range e {
			if exp < 1e9 {
				exp = exp*10 + int(c-'0')
			}
		}
		if eneg {
			exp = -exp
		}
	}
	intPart, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i+1:]
	}
	digits := intPart + frac
	exp -= len(frac)
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return "0"
	}
	t := strings.TrimRight(digits, "0")
	exp += len(digits) - len(t)
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + t + "e" + strconv.Itoa(exp)
}
