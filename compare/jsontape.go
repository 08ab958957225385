package compare

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON tape: a flat, validating parse of one document into a slice of
// nodes that point into the body (or, for strings that need unescaping, into
// an arena of decoded text). It reads each byte once, checks max_json_bytes,
// max_json_depth and max_json_nodes as it goes (the same counts, in the same
// byte order, as checkShape), and accepts exactly what encoding/json's
// Decoder accepts in parseJSON, with the same decoded values: strings
// unescaped with invalid UTF-8 and lone surrogates turned into U+FFFD,
// numbers kept as their literal. A Comparer keeps tapes in a pool, so that
// parsing allocates nothing once the pool is warm.

// Node kinds.
const (
	jNull uint8 = iota
	jFalse
	jTrue
	jNumber
	jString
	jArray
	jObject
)

// jnode is one value on the tape; an object member is two nodes, its key
// (a jString) and its value.
type jnode struct {
	kind  uint8
	dec   bool   // jString: the text is in the arena, not in the body
	start uint32 // jString: decoded text; jNumber: the literal
	end   uint32
	n     uint32 // jArray: elements; jObject: members
	next  uint32 // index of the first node after this value and everything below it
}

// jsonTape is one parsed document.
type jsonTape struct {
	src   []byte
	nodes []jnode
	arena []byte   // decoded text of strings with escapes or invalid UTF-8
	open  []uint32 // the containers open while parsing
}

// errSyntax: the body is not valid JSON; parseJSON says why.
// errTapeLimit: the body is too long for 32-bit offsets; compare it the slow way.
var (
	errSyntax    = errors.New("invalid JSON")
	errTapeLimit = errors.New("too long for the tape")
)

// text returns the decoded text of a jString node.
func (t *jsonTape) text(n *jnode) []byte {
	if n.dec {
		return t.arena[n.start:n.end]
	}
	return t.src[n.start:n.end]
}

// literal returns the literal of a jNumber node.
func (t *jsonTape) literal(n *jnode) []byte { return t.src[n.start:n.end] }

// reset empties t, keeping its memory, and drops its reference to the body.
func (t *jsonTape) reset() {
	t.src, t.nodes, t.arena, t.open = nil, t.nodes[:0], t.arena[:0], t.open[:0]
}

// isJSONSpace reports whether c is JSON white space.
func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// parse fills t from b. It returns errTooLarge, errTooDeep or errTooManyNode
// when b is over a bound before it is found invalid (what checkJSONBounds
// says of it then), errSyntax when b is not one JSON value (then its bounds
// are unknown: ask checkJSONBounds), or nil.
func (t *jsonTape) parse(b []byte, maxBytes int64, maxDepth int, maxNodes int64) error {
	t.reset()
	if int64(len(b)) > maxBytes {
		return errTooLarge
	}
	if len(b) >= math.MaxUint32 {
		return errTapeLimit
	}
	t.src = b
	count := int64(1) // values, counted as checkShape counts them
	i := skipSpace(b, 0)
value:
	for {
		if i >= len(b) {
			return errSyntax
		}
		switch c := b[i]; c {
		case '{', '[':
			if len(t.open) >= maxDepth {
				return errTooDeep
			}
			if count++; count > maxNodes {
				return errTooManyNode
			}
			kind := jArray
			if c == '{' {
				kind = jObject
			}
			t.open = append(t.open, uint32(len(t.nodes)))
			t.nodes = append(t.nodes, jnode{kind: kind})
			i = skipSpace(b, i+1)
			if i < len(b) && (c == '{' && b[i] == '}' || c == '[' && b[i] == ']') {
				i++
				t.close()
				break // to the end of a value
			}
			if c == '{' {
				var ok bool
				if i, ok = t.member(b, i); !ok {
					return errSyntax
				}
			} else {
				t.nodes[t.open[len(t.open)-1]].n++
			}
			continue value
		case '"':
			var ok bool
			if i, ok = t.str(b, i); !ok {
				return errSyntax
			}
		case 't':
			if !bytes.HasPrefix(b[i:], []byte("true")) {
				return errSyntax
			}
			t.nodes = append(t.nodes, jnode{kind: jTrue, next: uint32(len(t.nodes) + 1)})
			i += 4
		case 'f':
			if !bytes.HasPrefix(b[i:], []byte("false")) {
				return errSyntax
			}
			t.nodes = append(t.nodes, jnode{kind: jFalse, next: uint32(len(t.nodes) + 1)})
			i += 5
		case 'n':
			if !bytes.HasPrefix(b[i:], []byte("null")) {
				return errSyntax
			}
			t.nodes = append(t.nodes, jnode{kind: jNull, next: uint32(len(t.nodes) + 1)})
			i += 4
		default:
			j, ok := scanNumber(b, i)
			if !ok {
				return errSyntax
			}
			t.nodes = append(t.nodes, jnode{kind: jNumber, start: uint32(i), end: uint32(j), next: uint32(len(t.nodes) + 1)})
			i = j
		}
		// A value ended: close containers, or go on to the next element.
		for {
			if len(t.open) == 0 {
				// Like parseJSON: after the value, only white space, by
				// bytes.TrimSpace's (Unicode) definition.
				if len(bytes.TrimSpace(b[i:])) > 0 {
					return errSyntax
				}
				return nil
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return errSyntax
			}
			top := &t.nodes[t.open[len(t.open)-1]]
			switch c := b[i]; {
			case c == ',':
				if count++; count > maxNodes {
					return errTooManyNode
				}
				i = skipSpace(b, i+1)
				if top.kind == jObject {
					var ok bool
					if i, ok = t.member(b, i); !ok {
						return errSyntax
					}
				} else {
					top.n++
				}
				continue value
			case c == '}' && top.kind == jObject, c == ']' && top.kind == jArray:
				i++
				t.close()
			default:
				return errSyntax
			}
		}
	}
}

// close ends the innermost open container.
func (t *jsonTape) close() {
	last := len(t.open) - 1
	t.nodes[t.open[last]].next = uint32(len(t.nodes))
	t.open = t.open[:last]
}

// member parses an object member's key and colon at b[i], counts the member
// in the innermost open object, and returns where its value starts.
func (t *jsonTape) member(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	t.nodes[t.open[len(t.open)-1]].n++
	i, ok := t.str(b, i)
	if !ok {
		return i, false
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, false
	}
	return skipSpace(b, i+1), true
}

// SWAR constants: a byte repeated in each of the eight bytes of a word.
const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// stringStops returns a word with the high bit set in the lowest byte of x
// (read little-endian) that is '"', '\\', a control character or, when
// ascii is swarHigh, not ASCII; higher bytes may be marked falsely, so only
// the lowest mark counts. Zero means none of the eight bytes is one.
func stringStops(x, ascii uint64) uint64 {
	q := x ^ (swarOnes * '"')
	s := x ^ (swarOnes * '\\')
	return ((q-swarOnes) & ^q | (s-swarOnes)&^s | (x-swarOnes*0x20)&^x | x&ascii) & swarHigh
}

// str parses the string starting with the quote at b[i] onto the tape and
// returns the index after its closing quote. It rejects what encoding/json's
// scanner rejects: control characters, unknown escapes, short \u escapes.
func (t *jsonTape) str(b []byte, i int) (int, bool) {
	start := i + 1
	j := start
	escaped, nonASCII := false, false
	ascii := uint64(swarHigh) // cleared once a non-ASCII byte is seen
	for {
		for j+8 <= len(b) {
			if m := stringStops(binary.LittleEndian.Uint64(b[j:]), ascii); m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		// The last few bytes, one by one (the loop above stops at a stop).
		for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 && (b[j] < 0x80 || ascii == 0) {
			j++
		}
		if j >= len(b) {
			return j, false
		}
		switch c := b[j]; {
		case c == '"':
			n := jnode{kind: jString, start: uint32(start), end: uint32(j), next: uint32(len(t.nodes) + 1)}
			if escaped || nonASCII && !utf8.Valid(b[start:j]) {
				n.dec, n.start = true, uint32(len(t.arena))
				t.arena = appendUnquoted(t.arena, b[start:j])
				n.end = uint32(len(t.arena))
			}
			t.nodes = append(t.nodes, n)
			return j + 1, true
		case c == '\\':
			escaped = true
			if j+1 >= len(b) {
				return j, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) || getu4(b[j:]) < 0 {
					return j, false
				}
				j += 6
			default:
				return j, false
			}
		case c < 0x20:
			return j, false
		case c >= 0x80:
			nonASCII, ascii = true, 0
			j++
		}
	}
}

// scanNumber returns the end of the JSON number at b[i]. What follows it is
// checked by the caller.
func scanNumber(b []byte, i int) (int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j >= len(b):
		return j, false
	case b[j] == '0':
		j++
	case b[j] >= '1' && b[j] <= '9':
		j = skipDigits(b, j+1)
	default:
		return j, false
	}
	if j < len(b) && b[j] == '.' {
		k := skipDigits(b, j+1)
		if k == j+1 {
			return k, false
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := skipDigits(b, j)
		if k == j {
			return k, false
		}
		j = k
	}
	return j, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// getu4 decodes the \uXXXX escape at the start of s, or returns -1
// (encoding/json's getu4).
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// appendUnquoted appends the text of the string literal s (without its
// quotes, already checked by str) decoded as encoding/json's unquoteBytes
// decodes it: escapes resolved, surrogate pairs joined, lone surrogates and
// invalid UTF-8 (each bad byte) turned into U+FFFD.
func appendUnquoted(dst, s []byte) []byte {
	for r := 0; r < len(s); {
		switch c := s[r]; {
		case c == '\\':
			switch s[r+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := getu4(s[r:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
						dst = utf8.AppendRune(dst, dec)
						r += 6
						continue
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default: // " \ /
				dst = append(dst, s[r+1])
			}
			r += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			dst = utf8.AppendRune(dst, rr)
			r += size
		}
	}
	return dst
}
