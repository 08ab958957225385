package compare

import (
	"mime"
	"sort"
	"strconv"
	"strings"
)

// Headers are compared by name, case-insensitively, each name's values as an
// ordered list. Not compared: hop-by-hop headers (HopByHopHeaders() and every
// header named in a Connection header of that side), DefaultNoiseHeaders()
// (unless listed in compare_headers) and the route's ignore_headers.
// Content-Type values are compared as parsed media types (case of the type
// and of parameter names, spacing and charset case do not matter).
// A difference's path is "$.header.<Canonical-Name>"; a missing header is
// rendered "<missing>" and several values as a JSON array.

// missing stands for an absent header, JSON field or array element.
const missing = "<missing>"

// ignoredHeader reports whether name is not compared; hdrs is the side the
// header comes from (for its Connection header). It does not allocate.
func (c *Comparer) ignoredHeader(name string, hdrs []HeaderField) bool {
	if len(name) < len(c.ignoredHeaders) {
		for _, n := range c.ignoredHeaders[len(name)] {
			if strings.EqualFold(n, name) {
				return true
			}
		}
	}
	for _, h := range hdrs {
		if strings.EqualFold(h.Name, "Connection") && listContainsToken(h.Value, name) {
			return true
		}
	}
	return false
}

// listContainsToken reports whether the comma-separated list v holds tok,
// case-insensitively, without allocating.
func listContainsToken(v, tok string) bool {
	for v != "" {
		var item string
		if i := strings.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, ""
		}
		if strings.EqualFold(strings.TrimSpace(item), tok) {
			return true
		}
	}
	return false
}

// headersEqualFast reports whether the compared headers of both sides hold
// the same values byte for byte, in the same order per name. False may still
// be equal after normalisation; diffHeaders decides then. It does not
// allocate.
func (c *Comparer) headersEqualFast(l, n []HeaderField) bool {
	for i, h := range l {
		if c.ignoredHeader(h.Name, l) || firstIndexFold(l, h.Name) < i {
			continue
		}
		if c.ignoredHeader(h.Name, n) {
			return false // compared on one side only: let diffHeaders decide
		}
		// Walk the values of this name on both sides in parallel.
		j, k := i, 0
		for {
			j = nextIndexFold(l, h.Name, j)
			k = nextIndexFold(n, h.Name, k)
			if j < 0 || k < 0 {
				if j != k {
					return false
				}
				break
			}
			if l[j].Value != n[k].Value {
				return false
			}
			j++
			k++
		}
	}
	for _, h := range n {
		if !c.ignoredHeader(h.Name, n) && (firstIndexFold(l, h.Name) < 0 || c.ignoredHeader(h.Name, l)) {
			return false
		}
	}
	return true
}

func firstIndexFold(hs []HeaderField, name string) int { return nextIndexFold(hs, name, 0) }

// nextIndexFold returns the index of the first header at or after from named
// name, or -1.
func nextIndexFold(hs []HeaderField, name string, from int) int {
	for i := from; i < len(hs); i++ {
		if strings.EqualFold(hs[i].Name, name) {
			return i
		}
	}
	return -1
}

// headerValue returns the first value of name in hs, or "".
func headerValue(hs []HeaderField, name string) string {
	if i := firstIndexFold(hs, name); i >= 0 {
		return hs[i].Value
	}
	return ""
}

// diffHeaders appends a difference for each compared header name whose
// values differ, in name order.
func (c *Comparer) diffHeaders(diffs []Difference, l, n []HeaderField) []Difference {
	lv, nv := c.headerLists(l), c.headerLists(n)
	names := make([]string, 0, len(lv)+len(nv))
	for k := range lv {
		names = append(names, k)
	}
	for k := range nv {
		if _, ok := lv[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		a, b := lv[k], nv[k]
		if headerValuesEqual(k, a, b) {
			continue
		}
		// A header ignored by the other side's Connection header is
		// hop-by-hop there, so it is not compared at all.
		name := canonicalHeaderKey(k)
		if (a == nil && c.ignoredHeader(name, n)) || (b == nil && c.ignoredHeader(name, l)) {
			continue
		}
		diffs = append(diffs, Difference{
			Kind: KindHeader, Path: renderPath([]segment{keySeg("header"), keySeg(name)}),
			Legacy: renderHeaderValues(a), New: renderHeaderValues(b),
		})
	}
	return diffs
}

// headerLists groups the compared headers of one side by lower-cased name.
func (c *Comparer) headerLists(hs []HeaderField) map[string][]string {
	m := make(map[string][]string, len(hs))
	for _, h := range hs {
		if c.ignoredHeader(h.Name, hs) {
			continue
		}
		k := lowerASCII(h.Name)
		m[k] = append(m[k], h.Value)
	}
	return m
}

func headerValuesEqual(name string, a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := strings.TrimSpace(a[i]), strings.TrimSpace(b[i])
		if x == y {
			continue
		}
		if name == "content-type" && normalizeMediaType(x) == normalizeMediaType(y) {
			continue
		}
		return false
	}
	return true
}

// normalizeMediaType renders a Content-Type value in a canonical form: type
// and parameter names lower-cased, charset value lower-cased, parameters
// sorted. An unparsable value is returned as is.
func normalizeMediaType(v string) string {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return v
	}
	if cs, ok := params["charset"]; ok {
		params["charset"] = strings.ToLower(cs)
	}
	return mime.FormatMediaType(mt, params)
}

func renderHeaderValues(vs []string) string {
	switch len(vs) {
	case 0:
		return missing
	case 1:
		return truncate(vs[0], maxDiffValueLen)
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(v))
	}
	b.WriteByte(']')
	return truncate(b.String(), maxDiffValueLen)
}

// canonicalHeaderKey returns the canonical form of a header name
// ("content-type" → "Content-Type"), like net/textproto, which this package
// may not import.
func canonicalHeaderKey(s string) string {
	b := []byte(s)
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		} else if !upper && 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return string(b)
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// isJSONType reports whether a Content-Type value names JSON
// (application/json, application/problem+json, …).
func isJSONType(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/json"
}

// isTextType reports whether a Content-Type value names text (text/*, XML,
// JavaScript).
func isTextType(ct string) bool {
	mt := mediaType(ct)
	return strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+xml") ||
		mt == "application/xml" || mt == "application/javascript"
}

// mediaType returns the lower-cased type/subtype of a Content-Type value.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}
