package compare

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Paths: see the package documentation for the grammar.

// segment is one step of a path: an object key or an array index, or a
// wildcard in a pattern.
type segment struct {
	key   string
	index int // >= 0 for an array index; -1 for a key; -2 for a wildcard
}

const (
	segKey      = -1
	segWildcard = -2
)

func keySeg(k string) segment { return segment{key: k, index: segKey} }
func indexSeg(i int) segment  { return segment{index: i} }

// matches reports whether pattern segment p matches path segment s.
func (p segment) matches(s segment) bool {
	switch {
	case p.index == segWildcard:
		return true
	case p.index == segKey:
		return s.index == segKey && s.key == p.key
	default:
		return s.index == p.index
	}
}

// pattern is a parsed path used to select paths (ignore_json, noise marks).
type pattern []segment

// matchesSegs reports whether p matches segs or a prefix of them.
func (p pattern) matchesSegs(segs []segment) bool {
	if len(segs) < len(p) {
		return false
	}
	for i, ps := range p {
		if !ps.matches(segs[i]) {
			return false
		}
	}
	return true
}

// matchesPath reports whether p matches the rendered path s. An unparsable s
// never matches.
func (p pattern) matchesPath(s string) bool {
	segs, err := parsePath(s, false)
	return err == nil && p.matchesSegs(segs)
}

// maxPathLen bounds the length of a path accepted by parsePath.
const maxPathLen = 4096

// parsePath parses s by the grammar above. Wildcards are accepted only when
// wildcards is true.
func parsePath(s string, wildcards bool) ([]segment, error) {
	if len(s) > maxPathLen {
		return nil, fmt.Errorf("longer than %d bytes", maxPathLen)
	}
	if !strings.HasPrefix(s, "$") {
		return nil, errors.New(`must start with "$"`)
	}
	var segs []segment
	i := 1
	for i < len(s) {
		switch s[i] {
		case '.':
			i++
			if i < len(s) && s[i] == '.' {
				return nil, fmt.Errorf("recursive descent %q at offset %d is not supported", "..", i-1)
			}
			if i < len(s) && s[i] == '*' {
				if !wildcards {
					return nil, fmt.Errorf("wildcard at offset %d not allowed here", i)
				}
				segs = append(segs, segment{index: segWildcard})
				i++
				continue
			}
			j := i
			for j < len(s) && !isNameStop(s[j]) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("empty name at offset %d", i)
			}
			segs = append(segs, keySeg(s[i:j]))
			i = j
		case '[':
			seg, n, err := parseBracket(s[i:], wildcards)
			if err != nil {
				return nil, fmt.Errorf("at offset %d: %w", i, err)
			}
			segs = append(segs, seg)
			i += n
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d (want . or [)", s[i], i)
		}
	}
	return segs, nil
}

func isNameStop(c byte) bool {
	switch c {
	case '.', '[', ']', '*', '"', '\'', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// parseBracket parses one "[…]" segment at the start of s and returns it with
// the number of bytes consumed.
func parseBracket(s string, wildcards bool) (segment, int, error) {
	end := -1
	var seg segment
	switch {
	case len(s) < 3:
		return seg, 0, errors.New("unterminated [")
	case s[1] == '*':
		if !wildcards {
			return seg, 0, errors.New("wildcard not allowed here")
		}
		seg, end = segment{index: segWildcard}, 2
	case s[1] == '"':
		// A JSON string: find its closing quote, honouring escapes.
		j := 2
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(s) {
			return seg, 0, errors.New("unterminated string")
		}
		k, err := strconv.Unquote(s[1 : j+1])
		if err != nil {
			return seg, 0, fmt.Errorf("bad string %s", s[1:j+1])
		}
		seg, end = keySeg(k), j+1
	case s[1] == '\'':
		j := strings.IndexByte(s[2:], '\'')
		if j < 0 {
			return seg, 0, errors.New("unterminated string")
		}
		seg, end = keySeg(s[2:2+j]), 2+j+1
	default:
		j := 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == 1 {
			return seg, 0, fmt.Errorf("want an index, * or a quoted key after [, got %q", s[1])
		}
		if j-1 > 9 {
			return seg, 0, errors.New("index too large")
		}
		n, _ := strconv.Atoi(s[1:j])
		seg, end = indexSeg(n), j
	}
	if end >= len(s) || s[end] != ']' {
		return seg, 0, errors.New("missing ]")
	}
	return seg, end + 1, nil
}

// appendSegment renders one path segment onto b.
func appendSegment(b []byte, s segment) []byte {
	switch {
	case s.index == segWildcard:
		return append(b, "[*]"...)
	case s.index >= 0:
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(s.index), 10)
		return append(b, ']')
	case isPlainName(s.key):
		b = append(b, '.')
		return append(b, s.key...)
	default:
		b = append(b, '[')
		b = strconv.AppendQuote(b, s.key)
		return append(b, ']')
	}
}

// isPlainName reports whether k can be written as ".k": ASCII letters, digits,
// '_' and '-', not starting with a digit.
func isPlainName(k string) bool {
	if k == "" || (k[0] >= '0' && k[0] <= '9') {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// renderPath renders segs as a path starting with "$".
func renderPath(segs []segment) string {
	b := make([]byte, 0, 32)
	b = append(b, '$')
	for _, s := range segs {
		b = appendSegment(b, s)
	}
	return string(b)
}

// shapePath returns p with every array index replaced by "[*]", so that
// "$.items[3].id" and "$.items[4].id" count as one path for noise learning.
// A path that does not parse is returned unchanged.
func shapePath(p string) string {
	if strings.IndexByte(p, '[') < 0 {
		return p
	}
	segs, err := parsePath(p, false)
	if err != nil {
		return p
	}
	for i := range segs {
		if segs[i].index >= 0 {
			segs[i].index = segWildcard
		}
	}
	return renderPath(segs)
}

// truncate shortens s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
