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
	word uint64 // jString: the text's first 8 bytes, zero past its end
	// start and end delimit a jString's decoded text (in the body, or in
	// the arena when dec) or a jNumber's literal; for a jArray or a
	// jObject, end is the number of elements or members.
	start, end uint32
	next       uint32 // index of the first node after this value and everything below it
	kind       uint8
	dec        bool
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

// memory is the size in bytes of t's buffers (a jnode is 24 bytes).
func (t *jsonTape) memory() int {
	return 24*cap(t.nodes) + cap(t.arena) + 4*cap(t.open)
}

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
	var err error
	t.nodes, t.open, err = t.parseNodes(b, t.nodes, t.open, maxDepth, maxNodes)
	return err
}

// parseNodes is parse on local slices (which the compiler keeps in
// registers), returned grown.
func (t *jsonTape) parseNodes(b []byte, nodes []jnode, open []uint32, maxDepth int, maxNodes int64) (_ []jnode, _ []uint32, err error) {
	count := int64(1) // values, counted as checkShape counts them
	i := skipSpace(b, 0)
	ok := true
value:
	for {
		if i >= len(b) {
			return nodes, open, errSyntax
		}
		switch c := b[i]; c {
		case '"':
			if nodes, i, ok = t.str(b, i, nodes); !ok {
				return nodes, open, errSyntax
			}
		case '{', '[':
			if len(open) >= maxDepth {
				return nodes, open, errTooDeep
			}
			if count++; count > maxNodes {
				return nodes, open, errTooManyNode
			}
			kind := jArray
			if c == '{' {
				kind = jObject
			}
			open = append(open, uint32(len(nodes)))
			nodes = appendNode(nodes, kind, false, 0, 0)
			i = skipSpace(b, i+1)
			if i < len(b) && (c == '{' && b[i] == '}' || c == '[' && b[i] == ']') {
				i++
				nodes[open[len(open)-1]].next = uint32(len(nodes))
				open = open[:len(open)-1]
				break // to the end of a value
			}
			nodes[open[len(open)-1]].end++
			if c == '{' {
				if nodes, i, ok = t.member(b, i, nodes); !ok {
					return nodes, open, errSyntax
				}
			}
			continue value
		case 't', 'f', 'n':
			kind, lit := jTrue, "true"
			if c == 'f' {
				kind, lit = jFalse, "false"
			} else if c == 'n' {
				kind, lit = jNull, "null"
			}
			if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
				return nodes, open, errSyntax
			}
			nodes = appendNode(nodes, kind, false, 0, 0)
			i += len(lit)
		default:
			// An integer of digits only, the usual number, here; else
			// scanNumber.
			j := i
			if c >= '1' && c <= '9' {
				for j++; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
				}
				if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
					j = i
				}
			}
			if j == i {
				if j, ok = scanNumber(b, i); !ok {
					return nodes, open, errSyntax
				}
			}
			nodes = appendNode(nodes, jNumber, false, uint32(i), uint32(j))
			i = j
		}
		// A value ended: close containers, or go on to the next element.
		for {
			if len(open) == 0 {
				// Like parseJSON: after the value, only white space, by
				// bytes.TrimSpace's (Unicode) definition.
				if len(bytes.TrimSpace(b[i:])) > 0 {
					return nodes, open, errSyntax
				}
				return nodes, open, nil
			}
			if i < len(b) && isJSONSpace(b[i]) {
				i = skipSpace(b, i)
			}
			if i >= len(b) {
				return nodes, open, errSyntax
			}
			top := open[len(open)-1]
			kind := nodes[top].kind
			switch c := b[i]; {
			case c == ',':
				if count++; count > maxNodes {
					return nodes, open, errTooManyNode
				}
				i = skipSpace(b, i+1)
				nodes[top].end++
				if kind == jObject {
					if nodes, i, ok = t.member(b, i, nodes); !ok {
						return nodes, open, errSyntax
					}
				}
				continue value
			case c == '}' && kind == jObject, c == ']' && kind == jArray:
				i++
				nodes[top].next = uint32(len(nodes))
				open = open[:len(open)-1]
			default:
				return nodes, open, errSyntax
			}
		}
	}
}

// member reads an object member's key and colon at b[i] and returns where
// its value starts.
func (t *jsonTape) member(b []byte, i int, nodes []jnode) ([]jnode, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nodes, i, false
	}
	nodes, i, ok := t.str(b, i, nodes)
	if !ok {
		return nodes, i, false
	}
	if i < len(b) && b[i] != ':' {
		i = skipSpace(b, i)
	}
	if i >= len(b) || b[i] != ':' {
		return nodes, i, false
	}
	if i++; i < len(b) && !isJSONSpace(b[i]) {
		return nodes, i, true
	}
	return nodes, skipSpace(b, i), true
}

// str appends the string whose opening quote is at b[i] and returns the
// index past its closing quote.
func (t *jsonTape) str(b []byte, i int, nodes []jnode) ([]jnode, int, bool) {
	s := i + 1
	if s+8 <= len(b) {
		// A string of at most 7 plain bytes, the usual key, in one word.
		x := binary.LittleEndian.Uint64(b[s:])
		if qm := quotes(x); qm != 0 {
			if low := qm & -qm; stringStops(x, swarHigh)&(low-1) == 0 {
				l := bits.TrailingZeros64(qm) >> 3
				nodes = appendNode(nodes, jString, false, uint32(s), uint32(s+l))
				nodes[len(nodes)-1].word = x & (low>>7 - 1)
				return nodes, s + l + 1, true
			}
		}
	}
	j, decode, ok := scanString(b, s)
	if !ok {
		return nodes, j, false
	}
	text := b[s:j]
	if decode {
		start := len(t.arena)
		t.arena = appendUnquoted(t.arena, text)
		text = t.arena[start:]
		nodes = appendNode(nodes, jString, true, uint32(start), uint32(len(t.arena)))
	} else {
		nodes = appendNode(nodes, jString, false, uint32(s), uint32(j))
	}
	nodes[len(nodes)-1].word = textWord(text)
	return nodes, j + 1, true
}

// appendNode appends a node without children (a container's n and next are
// set as it is parsed). It writes the fields in place: a jnode built on the
// stack and copied costs a store-forwarding stall per node.
func appendNode(nodes []jnode, kind uint8, dec bool, start, end uint32) []jnode {
	k := len(nodes)
	if k < cap(nodes) {
		nodes = nodes[:k+1]
	} else {
		nodes = append(nodes, jnode{})
	}
	n := &nodes[k]
	n.word, n.start, n.end, n.next, n.kind, n.dec = 0, start, end, uint32(k+1), kind, dec
	return nodes
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

// quotes is the '"' part of stringStops.
func quotes(x uint64) uint64 {
	q := x ^ (swarOnes * '"')
	return (q - swarOnes) & ^q & swarHigh
}

// textWord returns the first 8 bytes of text, little-endian, zero past its
// end: the word a jString node keeps.
func textWord(text []byte) uint64 {
	var w [8]byte
	copy(w[:], text)
	return binary.LittleEndian.Uint64(w[:])
}

// scanString returns the index of the closing quote of the string whose
// text starts at b[i], and whether its text needs decoding (escapes, or
// invalid UTF-8). It rejects what encoding/json's scanner rejects: control
// characters, unknown escapes, short \u escapes, no closing quote.
func scanString(b []byte, i int) (end int, decode, ok bool) {
	j := i
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
			return j, false, false
		}
		switch c := b[j]; {
		case c == '"':
			return j, escaped || nonASCII && !utf8.Valid(b[i:j]), true
		case c == '\\':
			escaped = true
			if j+1 >= len(b) {
				return j, false, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if getu4(b[j:]) < 0 {
					return j, false, false
				}
				j += 6
			default:
				return j, false, false
			}
		case c < 0x20:
			return j, false, false
		default: // the first byte past ASCII
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
