package compare

// Today's JSON comparison (compare/json.go before the tapes), kept as the
// baseline that the benchmarks measure against and that the differential
// tests hold the tape-based comparison to: every identifier prefixed with
// "base", nothing else changed. Test-only.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-cmp/cmp"
)

// baseCheckShape returns errTooDeep if b nests arrays and objects deeper than
// maxDepth, and errTooManyNode if it holds more than maxNodes values: one
// for the document, and one for each member or element, counted as the
// commas and opening brackets outside strings (an empty container counts
// one it does not have, so the count errs high). It reads b once and does
// not allocate.
func baseCheckShape(b []byte, maxDepth int, maxNodes int64) error {
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

// baseCheckJSONBounds returns errTooLarge, errTooDeep or errTooManyNode when b
// is over one of the bounds, without parsing it.
func baseCheckJSONBounds(b []byte, maxBytes int64, maxDepth int, maxNodes int64) error {
	if int64(len(b)) > maxBytes {
		return errTooLarge
	}
	return baseCheckShape(b, maxDepth, maxNodes)
}

// baseParseJSON decodes one JSON document, numbers as json.Number, arrays as
// []any (baseIndexArrays turns them into baseJSONArray for go-cmp), after checking
// its bounds.
func baseParseJSON(b []byte, maxBytes int64, maxDepth int, maxNodes int64) (any, error) {
	if err := baseCheckJSONBounds(b, maxBytes, maxDepth, maxNodes); err != nil {
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

// baseDiffJSON appends the differences between two JSON bodies. ok is false when
// neither body is JSON, so the caller compares them as bytes. limit names the
// bound, if any, that made the bodies compare by hash and size. Both bodies'
// bounds are checked before either is parsed: a bomb on one side costs one
// byte scan.
func (c *Comparer) baseDiffJSON(diffs []Difference, legacy, new *Response) (_ []Difference, ok bool, limit Limit) {
	for _, b := range [][]byte{legacy.Body, new.Body} {
		switch baseCheckJSONBounds(b, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes) {
		case errTooLarge:
			return append(diffs, hashDiff(legacy, new, fmt.Sprintf("compared by hash: JSON larger than max_json_bytes (%d)", c.s.MaxJSONBytes))), true, LimitJSONBytes
		case errTooDeep:
			return append(diffs, hashDiff(legacy, new, fmt.Sprintf("compared by hash: JSON nested deeper than max_json_depth (%d)", c.s.MaxJSONDepth))), true, LimitJSONDepth
		case errTooManyNode:
			return append(diffs, hashDiff(legacy, new, fmt.Sprintf("compared by hash: JSON with more values than max_json_nodes (%d)", c.s.MaxJSONNodes))), true, LimitJSONNodes
		}
	}
	lv, lerr := baseParseJSON(legacy.Body, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
	nv, nerr := baseParseJSON(new.Body, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
	switch {
	case lerr != nil && nerr != nil:
		return diffs, false, ""
	case lerr != nil || nerr != nil:
		return append(diffs, Difference{Kind: KindJSON, Path: "$", Legacy: baseJSONState(lv, lerr), New: baseJSONState(nv, nerr)}), true, ""
	}
	if c.baseJSONEqual(lv, nv, nil) {
		return diffs, true, "" // the cheap check first: no diff tree for equal documents
	}
	return append(diffs, c.baseCmpJSON(lv, nv)...), true, ""
}

// baseCmpJSON walks two parsed documents with go-cmp and returns their
// differences. It turns the documents' arrays into jsonArrays in place.
func (c *Comparer) baseCmpJSON(lv, nv any) []Difference {
	lv, nv = baseIndexArrays(lv), baseIndexArrays(nv)
	r := &baseJSONReporter{ignore: c.ignoreJSON}
	opts := []cmp.Option{
		cmp.Reporter(r),
		cmp.Comparer(func(a, b json.Number) bool { return baseNumbersEqual(a, b, c.s.JSONNumberTolerance) }),
	}
	if len(c.ignoreJSON) > 0 {
		opts = append(opts, cmp.FilterPath(func(cmp.Path) bool { return r.ignored() }, cmp.Ignore()))
	}
	cmp.Equal(lv, nv, opts...)
	return r.diffs
}

// baseJSONEqual reports whether a and b are equal JSON trees by the rules above,
// skipping ignore_json paths; segs is the path of a and b. It is the fast,
// reflection-free twin of the go-cmp walk and must agree with it.
func (c *Comparer) baseJSONEqual(a, b any, segs []segment) bool {
	if len(c.ignoreJSON) > 0 && c.baseIgnoredJSON(segs) {
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
		return ok && baseNumbersEqual(a, bn, c.s.JSONNumberTolerance)
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
			if !c.baseJSONEqualChild(x, y, i < len(a), i < len(ba), append(segs, indexSeg(i))) {
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
			if !c.baseJSONEqualChild(x, y, true, oky, append(segs, keySeg(k))) {
				return false
			}
		}
		for k, y := range bm {
			if _, okx := a[k]; !okx && !c.baseJSONEqualChild(nil, y, false, true, append(segs, keySeg(k))) {
				return false
			}
		}
		return true
	}
	return false
}

// baseJSONEqualChild compares one child that may be missing on either side.
func (c *Comparer) baseJSONEqualChild(x, y any, okx, oky bool, segs []segment) bool {
	if okx && oky {
		return c.baseJSONEqual(x, y, segs)
	}
	return len(c.ignoreJSON) > 0 && c.baseIgnoredJSON(segs) // missing on one side
}

// baseIgnoredJSON reports whether segs is under an ignore_json path.
func (c *Comparer) baseIgnoredJSON(segs []segment) bool {
	for _, p := range c.ignoreJSON {
		if p.matchesSegs(segs) {
			return true
		}
	}
	return false
}

// baseJSONState describes one side's parse result for a difference at "$".
func baseJSONState(v any, err error) string {
	if err != nil {
		return truncate("invalid JSON: "+err.Error(), maxDiffValueLen)
	}
	return "valid JSON " + baseJSONKind(v)
}

func baseJSONKind(v any) string {
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

// baseJSONArray is a JSON array held as a map from index to element, so that
// go-cmp compares arrays index by index (see above) instead of by edit
// script, whose alignment is neither stable nor linear in cost.
type baseJSONArray map[int]any

// baseIndexArrays replaces every []any in v by a baseJSONArray.
func baseIndexArrays(v any) any {
	switch v := v.(type) {
	case []any:
		m := make(baseJSONArray, len(v))
		for i, e := range v {
			m[i] = baseIndexArrays(e)
		}
		return m
	case map[string]any:
		for k, e := range v {
			v[k] = baseIndexArrays(e)
		}
	}
	return v
}

// baseJSONReporter is a cmp.Reporter that turns go-cmp's path steps into path
// segments and collects a Difference for each unequal leaf.
type baseJSONReporter struct {
	ignore  []pattern
	segs    []segment
	pushed  []bool
	steps   []cmp.PathStep
	diffs   []Difference
	shapes  map[string]bool // shape paths listed, once past maxJSONDiffs
	dropped int
}

func (r *baseJSONReporter) PushStep(ps cmp.PathStep) {
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

func (r *baseJSONReporter) PopStep() {
	if r.pushed[len(r.pushed)-1] {
		r.segs = r.segs[:len(r.segs)-1]
	}
	r.pushed = r.pushed[:len(r.pushed)-1]
	r.steps = r.steps[:len(r.steps)-1]
}

// ignored reports whether the current node is under an ignore_json path.
func (r *baseJSONReporter) ignored() bool {
	for _, p := range r.ignore {
		if p.matchesSegs(r.segs) {
			return true
		}
	}
	return false
}

func (r *baseJSONReporter) Report(res cmp.Result) {
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
	r.diffs = append(r.diffs, Difference{Kind: KindJSON, Path: path, Legacy: baseRenderValue(vx), New: baseRenderValue(vy)})
}

// baseRenderValue renders one side's value at a difference as compact JSON.
func baseRenderValue(v reflect.Value) string {
	if !v.IsValid() {
		return missing
	}
	b := baseAppendJSON(nil, v.Interface(), maxDiffValueLen)
	if len(b) > maxDiffValueLen {
		return truncate(string(b), maxDiffValueLen)
	}
	return string(b)
}

// baseAppendJSON renders v as compact JSON with sorted keys onto b, stopping soon
// after b grows past limit bytes.
func baseAppendJSON(b []byte, v any, limit int) []byte {
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
	case baseJSONArray:
		b = append(b, '[')
		for i := 0; i < len(v); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			if b = baseAppendJSON(b, v[i], limit); len(b) > limit {
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
			if b = baseAppendJSON(b, v[k], limit); len(b) > limit {
				return b
			}
		}
		return append(b, '}')
	}
	return fmt.Appendf(b, "%v", v)
}

// baseNumbersEqual reports whether two JSON numbers are equal: exactly by
// decimal value when tol is 0, else within tol as float64.
func baseNumbersEqual(a, b json.Number, tol float64) bool {
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
	return baseCanonicalNumber(string(a)) == baseCanonicalNumber(string(b))
}

// baseCanonicalNumber renders a JSON number as sign, significant digits and
// exponent ("-1.50e2" → "-15e1"), so that equal values give equal strings
// without arithmetic. Exponents saturate at ±1e9.
func baseCanonicalNumber(s string) string {
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
