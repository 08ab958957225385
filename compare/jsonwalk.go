package compare

import (
	"bytes"
	stdcmp "cmp"
	"encoding/json"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/google/go-cmp/cmp"
)

// The walks over two tapes. equal is the allocation-free equality check by
// the rules in json.go; diff finds the differing parts of two documents and
// hands them to go-cmp, converted to the form parseJSON gives (objects as
// map[string]any, arrays as jsonArray, numbers as json.Number), so that the
// differences, their paths, values and order, are what go-cmp reports for
// the whole documents: go-cmp visits object keys in sorted order and array
// elements by index, and so does diff; the parts it skips are equal, where
// go-cmp reports nothing.

// jsonCmpNodes is the size, in tape nodes, up to which a differing member or
// element is handed to go-cmp whole; diff walks into larger containers of
// the same kind itself, to skip their equal parts.
const jsonCmpNodes = 64

// jsonCmpBatch is the most members or elements diff hands go-cmp at once,
// so that it stops soon after the differences listed reach their cap.
const jsonCmpBatch = 64

// jsonScratch is the memory of one comparison: both tapes, the sorted
// member lists and the path. Comparers pool them.
type jsonScratch struct {
	l, n jsonTape
	keys []uint32
	path []jpathElem
}

// jsonScratchKeep bounds the memory, in bytes, of the tapes a pooled
// jsonScratch keeps; that of larger documents goes back to the garbage
// collector.
const jsonScratchKeep = 4 << 20

func (c *Comparer) getJSONScratch() *jsonScratch {
	if s, ok := c.jsonScratch.Get().(*jsonScratch); ok {
		return s
	}
	return new(jsonScratch)
}

func (c *Comparer) putJSONScratch(s *jsonScratch) {
	s.l.reset()
	s.n.reset()
	s.keys = s.keys[:0]
	clear(s.path[:cap(s.path)]) // no references to the bodies
	s.path = s.path[:0]
	if s.l.memory()+s.n.memory() <= jsonScratchKeep {
		c.jsonScratch.Put(s)
	}
}

// jpathElem is one step of the path being walked: an object key (index
// segKey) or an array index.
type jpathElem struct {
	key   []byte
	index int
}

// jwalker walks the tapes a (legacy) and b (new) together.
type jwalker struct {
	c      *Comparer
	a, b   *jsonTape
	s      *jsonScratch // keys and path
	ignore bool         // c has ignore_json patterns
}

func (w *jwalker) push(e jpathElem) { w.s.path = append(w.s.path, e) }
func (w *jwalker) pop()             { w.s.path = w.s.path[:len(w.s.path)-1] }

// ignored reports whether the current path is under an ignore_json pattern.
// Only patterns as long as the path are tried: a shorter one that matches
// would have matched a parent, which the walks do not enter.
func (w *jwalker) ignored() bool {
	path := w.s.path
	for _, p := range w.c.ignoreJSON {
		if len(p) != len(path) {
			continue
		}
		match := true
		for i, ps := range p {
			switch e := path[i]; ps.index {
			case segWildcard:
			case segKey:
				match = e.index == segKey && string(e.key) == ps.key
			default:
				match = e.index == ps.index
			}
			if !match {
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// equal reports whether the values at a.nodes[ia] and b.nodes[ib], at the
// current path, are equal JSON values by the rules in json.go.
func (w *jwalker) equal(ia, ib uint32) bool {
	if w.ignore && w.ignored() {
		return true
	}
	x, y := &w.a.nodes[ia], &w.b.nodes[ib]
	if x.kind != y.kind {
		return false
	}
	switch x.kind {
	case jString:
		return sameText(w.a, x, w.b, y)
	case jNumber:
		a, b := w.a.literal(x), w.b.literal(y)
		return bytes.Equal(a, b) || numberLiteralsEqual(a, b, w.c.s.JSONNumberTolerance)
	case jArray:
		return w.equalArrays(ia, ib)
	case jObject:
		return w.equalObjects(ia, ib)
	}
	return true // null, true, false
}

func (w *jwalker) equalArrays(ia, ib uint32) bool {
	na, nb := w.a.nodes[ia].end, w.b.nodes[ib].end
	if na != nb && !w.ignore {
		return false
	}
	ca, cb := ia+1, ib+1
	for k := uint32(0); k < max(na, nb); k++ {
		w.push(jpathElem{index: int(k)})
		var eq bool
		if k < na && k < nb {
			eq = w.equal(ca, cb)
			ca, cb = w.a.nodes[ca].next, w.b.nodes[cb].next
		} else {
			eq = w.ignored() // missing on one side
		}
		w.pop()
		if !eq {
			return false
		}
	}
	return true
}

// maxLinearKeys is the most members an object may have to be matched by
// linear search (n² key comparisons, most of them ended by the lengths).
const maxLinearKeys = 16

func (w *jwalker) equalObjects(ia, ib uint32) bool {
	base := len(w.s.keys)
	defer func() { w.s.keys = w.s.keys[:base] }()
	if n := w.a.nodes[ia].end; n == w.b.nodes[ib].end && n <= maxLinearKeys && !w.a.repeatsKey(ia, n) {
		if !w.ignore {
			return w.equalMembers(ia, ib)
		}
		// Pair each of a's keys with b's (when a repeats no key, a pairing
		// of all n keys means b holds the same keys, none repeated), then
		// compare the pairs.
		if kb, ok := w.pairKeys(ia, ib, int(n)); ok {
			for k, ka := 0, ia+1; k < int(n); k, ka = k+1, w.a.nodes[ka+1].next {
				w.push(jpathElem{key: w.a.text(&w.a.nodes[ka]), index: segKey})
				eq := w.equal(ka+1, w.s.keys[kb+k]+1)
				w.pop()
				if !eq {
					return false
				}
			}
			return true
		}
		w.s.keys = w.s.keys[:base]
	}
	// Otherwise by sorted keys, which also finds repeated ones.
	la := w.sortedKeys(w.a, ia)
	lb := w.sortedKeys(w.b, ib)
	if la != lb && !w.ignore {
		return false
	}
	for i, j := 0, 0; i < la || j < lb; {
		ka, kb, order := w.nextKeys(base, la, lb, i, j)
		var eq bool
		switch {
		case order == 0:
			w.push(jpathElem{key: w.a.text(&w.a.nodes[ka]), index: segKey})
			eq = w.equal(ka+1, kb+1)
			i, j = i+1, j+1
		case order < 0:
			w.push(jpathElem{key: w.a.text(&w.a.nodes[ka]), index: segKey})
			eq = w.ignored()
			i++
		default:
			w.push(jpathElem{key: w.b.text(&w.b.nodes[kb]), index: segKey})
			eq = w.ignored()
			j++
		}
		w.pop()
		if !eq {
			return false
		}
	}
	return true
}

// equalMembers compares the objects at ia and ib, of as many members, a
// repeating no key, without ignore_json patterns: each of a's keys is looked
// for in b from just after the last one found (so keys in the same order
// cost one comparison each), and the values compared at once. A key of a
// missing in b, or paired with a different value, makes them differ (if b
// repeats a key, it has fewer keys than a, so they differ anyway); all n
// paired and equal make them equal.
func (w *jwalker) equalMembers(ia, ib uint32) bool {
	n := w.a.nodes[ia].end
	first, end := ib+1, w.b.nodes[ib].next
	kb := first
	for k, ka := uint32(0), ia+1; k < n; k, ka = k+1, w.a.nodes[ka+1].next {
		key := &w.a.nodes[ka]
		found := false
		for range n {
			if sameText(w.a, key, w.b, &w.b.nodes[kb]) {
				found = true
				break
			}
			if kb = w.b.nodes[kb+1].next; kb == end {
				kb = first
			}
		}
		if !found || !w.equal(ka+1, kb+1) {
			return false
		}
		if kb = w.b.nodes[kb+1].next; kb == end {
			kb = first
		}
	}
	return true
}

// pairKeys appends onto w.s.keys b's key nodes in b's order, then for each of
// a's keys in a's order the key node of b that equals it, and returns where
// the second list starts; ok is false when a key of a is not in b. Searching
// from just after the last match makes keys in the same order cost one
// comparison each.
func (w *jwalker) pairKeys(ia, ib uint32, n int) (start int, ok bool) {
	base := len(w.s.keys)
	for k, x := 0, ib+1; k < n; k, x = k+1, w.b.nodes[x+1].next {
		w.s.keys = append(w.s.keys, x)
	}
	start = len(w.s.keys)
	pos := 0
	for k, ka := 0, ia+1; k < n; k, ka = k+1, w.a.nodes[ka+1].next {
		key := &w.a.nodes[ka]
		found := false
		for m := 0; m < n; m++ {
			p := pos + m
			if p >= n {
				p -= n
			}
			if kb := w.s.keys[base+p]; sameText(w.a, key, w.b, &w.b.nodes[kb]) {
				w.s.keys = append(w.s.keys, kb)
				pos, found = p+1, true
				break
			}
		}
		if !found {
			return start, false
		}
	}
	return start, true
}

// nextKeys returns the key nodes at positions i and j of the two sorted
// lists at w.s.keys[base:] (la keys of a, then lb keys of b) and which comes
// first: 0 both, -1 a's, 1 b's.
func (w *jwalker) nextKeys(base, la, lb, i, j int) (ka, kb uint32, order int) {
	switch {
	case i >= la:
		return 0, w.s.keys[base+la+j], 1
	case j >= lb:
		return w.s.keys[base+i], 0, -1
	}
	ka, kb = w.s.keys[base+i], w.s.keys[base+la+j]
	return ka, kb, compareText(w.a, &w.a.nodes[ka], w.b, &w.b.nodes[kb])
}

// sameText reports whether the jString nodes x of ta and y of tb hold the
// same text.
func sameText(ta *jsonTape, x *jnode, tb *jsonTape, y *jnode) bool {
	l := x.end - x.start
	return x.word == y.word && l == y.end-y.start && (l <= 8 || bytes.Equal(ta.text(x)[8:], tb.text(y)[8:]))
}

// compareText orders the jString nodes x of ta and y of tb by text, as
// bytes.Compare does, mostly from their words.
func compareText(ta *jsonTape, x *jnode, tb *jsonTape, y *jnode) int {
	if x.word != y.word {
		// The first differing byte decides (or the shorter text, padded
		// with zeros, comes first).
		return stdcmp.Compare(bits.ReverseBytes64(x.word), bits.ReverseBytes64(y.word))
	}
	return bytes.Compare(ta.text(x), tb.text(y))
}

// repeatsKey reports whether a key occurs twice in the object at i, of n
// members.
func (t *jsonTape) repeatsKey(i, n uint32) bool {
	// A 256-bit set of hashed keys settles most objects in one pass.
	var seen [4]uint64
	for k, x := uint32(0), i+1; k < n; k, x = k+1, t.nodes[x+1].next {
		kx := &t.nodes[x]
		h := uint8((kx.word ^ uint64(kx.end-kx.start)) * 0x9E3779B97F4A7C15 >> 56)
		if seen[h>>6]&(1<<(h&63)) != 0 {
			return t.repeatsKeySlow(i, n)
		}
		seen[h>>6] |= 1 << (h & 63)
	}
	return false
}

func (t *jsonTape) repeatsKeySlow(i, n uint32) bool {
	for k, x := uint32(0), i+1; k < n; k, x = k+1, t.nodes[x+1].next {
		kx := &t.nodes[x]
		for y := t.nodes[x+1].next; y < t.nodes[i].next; y = t.nodes[y+1].next {
			if sameText(t, kx, t, &t.nodes[y]) {
				return true
			}
		}
	}
	return false
}

// sortedKeys appends the key nodes of the object at i onto w.s.keys, sorted
// by key, keeping of a repeated key only its last member (encoding/json's
// rule), and returns how many it appended.
func (w *jwalker) sortedKeys(t *jsonTape, i uint32) int {
	base := len(w.s.keys)
	for k, x := uint32(0), i+1; k < t.nodes[i].end; k, x = k+1, t.nodes[x+1].next {
		w.s.keys = append(w.s.keys, x)
	}
	keys := w.s.keys[base:]
	less := func(x, y uint32) int {
		if c := compareText(t, &t.nodes[x], t, &t.nodes[y]); c != 0 {
			return c
		}
		return int(x) - int(y) // document order among repeated keys
	}
	if len(keys) <= 12 {
		for a := 1; a < len(keys); a++ {
			for b := a; b > 0 && less(keys[b-1], keys[b]) > 0; b-- {
				keys[b-1], keys[b] = keys[b], keys[b-1]
			}
		}
	} else {
		slices.SortFunc(keys, less)
	}
	// Keep the last of each run of equal keys.
	m := 0
	for a := range keys {
		if a+1 < len(keys) && sameText(t, &t.nodes[keys[a]], t, &t.nodes[keys[a+1]]) {
			continue
		}
		keys[m] = keys[a]
		m++
	}
	w.s.keys = w.s.keys[:base+m]
	return m
}

// size is the number of tape nodes of the value at i and below it.
func (t *jsonTape) size(i uint32) uint32 { return t.nodes[i].next - i }

// jsonDiffer collects go-cmp's differences over the parts diff hands it.
type jsonDiffer struct {
	r    *jsonReporter
	opts []cmp.Option
}

func (c *Comparer) newJSONDiffer() *jsonDiffer {
	r := &jsonReporter{ignore: c.ignoreJSON}
	opts := []cmp.Option{
		cmp.Reporter(r),
		cmp.Comparer(func(a, b json.Number) bool { return numbersEqual(a, b, c.s.JSONNumberTolerance) }),
	}
	if len(c.ignoreJSON) > 0 {
		opts = append(opts, cmp.FilterPath(func(cmp.Path) bool { return r.ignored() }, cmp.Ignore()))
	}
	return &jsonDiffer{r: r, opts: opts}
}

// cmp runs go-cmp on x and y, found at path.
func (d *jsonDiffer) cmp(path []segment, x, y any) {
	d.r.segs = append(d.r.segs[:0], path...)
	cmp.Equal(x, y, d.opts...)
}

// full reports whether no more differences would be listed.
func (d *jsonDiffer) full() bool { return len(d.r.diffs) >= 2*maxJSONDiffs }

// differences returns the differences between the two tapes' documents,
// known to differ.
func (w *jwalker) differences() []Difference {
	d := w.c.newJSONDiffer()
	x, y := &w.a.nodes[0], &w.b.nodes[0]
	if x.kind == y.kind && (x.kind == jObject || x.kind == jArray) {
		w.diff(0, 0, d)
	} else {
		d.cmp(nil, w.a.toAny(0), w.b.toAny(0))
	}
	return d.r.diffs
}

// segments returns the current path as segments.
func (w *jwalker) segments() []segment {
	segs := make([]segment, len(w.s.path))
	for i, e := range w.s.path {
		if e.index == segKey {
			segs[i] = keySeg(string(e.key))
		} else {
			segs[i] = indexSeg(e.index)
		}
	}
	return segs
}

// diff reports the differences between the containers, of the same kind, at
// a.nodes[ia] and b.nodes[ib] and the current path: members or elements
// small enough, or of different kinds, go to go-cmp in a container holding
// just them (consecutive ones together), and diff walks into larger ones.
func (w *jwalker) diff(ia, ib uint32, d *jsonDiffer) {
	if w.a.nodes[ia].kind == jArray {
		w.diffArrays(ia, ib, d)
	} else {
		w.diffObjects(ia, ib, d)
	}
}

// walkInto reports whether diff should walk into the children at ca and cb
// rather than hand them to go-cmp.
func (w *jwalker) walkInto(ca, cb uint32) bool {
	k := w.a.nodes[ca].kind
	return k == w.b.nodes[cb].kind && (k == jObject || k == jArray) &&
		(w.a.size(ca) > jsonCmpNodes || w.b.size(cb) > jsonCmpNodes)
}

func (w *jwalker) diffArrays(ia, ib uint32, d *jsonDiffer) {
	var px, py jsonArray // pending for go-cmp
	flush := func() {
		if px != nil {
			d.cmp(w.segments(), px, py)
			px, py = nil, nil
		}
	}
	add := func(k int, x, y any, okx, oky bool) {
		if px == nil {
			px, py = jsonArray{}, jsonArray{}
		}
		if okx {
			px[k] = x
		}
		if oky {
			py[k] = y
		}
	}
	na, nb := w.a.nodes[ia].end, w.b.nodes[ib].end
	ca, cb := ia+1, ib+1
	for k := uint32(0); k < max(na, nb) && !d.full(); k++ {
		w.push(jpathElem{index: int(k)})
		switch {
		case w.ignored():
		case k < na && k < nb:
			if w.walkInto(ca, cb) {
				w.pop()
				flush()
				w.push(jpathElem{index: int(k)})
				w.diff(ca, cb, d)
			} else if !w.equal(ca, cb) {
				add(int(k), w.a.toAny(ca), w.b.toAny(cb), true, true)
			}
		case k < na:
			add(int(k), w.a.toAny(ca), nil, true, false)
		default:
			add(int(k), nil, w.b.toAny(cb), false, true)
		}
		w.pop()
		if len(px) >= jsonCmpBatch {
			flush() // and maybe stop, full
		}
		if k < na {
			ca = w.a.nodes[ca].next
		}
		if k < nb {
			cb = w.b.nodes[cb].next
		}
	}
	flush()
}

func (w *jwalker) diffObjects(ia, ib uint32, d *jsonDiffer) {
	var px, py map[string]any // pending for go-cmp
	flush := func() {
		if px != nil {
			d.cmp(w.segments(), px, py)
			px, py = nil, nil
		}
	}
	add := func(k string, x, y any, okx, oky bool) {
		if px == nil {
			px, py = map[string]any{}, map[string]any{}
		}
		if okx {
			px[k] = x
		}
		if oky {
			py[k] = y
		}
	}
	base := len(w.s.keys)
	la := w.sortedKeys(w.a, ia)
	lb := w.sortedKeys(w.b, ib)
	for i, j := 0, 0; (i < la || j < lb) && !d.full(); {
		ka, kb, order := w.nextKeys(base, la, lb, i, j)
		var key []byte
		if order <= 0 {
			key = w.a.text(&w.a.nodes[ka])
		} else {
			key = w.b.text(&w.b.nodes[kb])
		}
		e := jpathElem{key: key, index: segKey}
		w.push(e)
		switch {
		case w.ignored():
		case order == 0:
			if w.walkInto(ka+1, kb+1) {
				w.pop()
				flush()
				w.push(e)
				w.diff(ka+1, kb+1, d)
			} else if !w.equal(ka+1, kb+1) {
				add(string(key), w.a.toAny(ka+1), w.b.toAny(kb+1), true, true)
			}
		case order < 0:
			add(string(key), w.a.toAny(ka+1), nil, true, false)
		default:
			add(string(key), nil, w.b.toAny(kb+1), false, true)
		}
		w.pop()
		if len(px) >= jsonCmpBatch {
			flush()
		}
		if order <= 0 {
			i++
		}
		if order >= 0 {
			j++
		}
	}
	flush()
	w.s.keys = w.s.keys[:base]
}

// toAny returns the value at i as parseJSON decodes it, with arrays as
// jsonArray (as indexArrays leaves them).
func (t *jsonTape) toAny(i uint32) any {
	n := &t.nodes[i]
	switch n.kind {
	case jFalse:
		return false
	case jTrue:
		return true
	case jNumber:
		return json.Number(t.literal(n))
	case jString:
		return string(t.text(n))
	case jArray:
		a := make(jsonArray, n.end)
		for k, x := 0, i+1; k < int(n.end); k, x = k+1, t.nodes[x].next {
			a[k] = t.toAny(x)
		}
		return a
	case jObject:
		m := make(map[string]any, n.end)
		for k, x := uint32(0), i+1; k < n.end; k, x = k+1, t.nodes[x+1].next {
			m[string(t.text(&t.nodes[x]))] = t.toAny(x + 1) // a repeated key: the last wins
		}
		return m
	}
	return nil
}

// kindName names the kind of the document's root value, as jsonKind does.
func (t *jsonTape) kindName() string {
	switch t.nodes[0].kind {
	case jObject:
		return "object"
	case jArray:
		return "array"
	case jString:
		return "string"
	case jNumber:
		return "number"
	case jTrue, jFalse:
		return "boolean"
	}
	return "null"
}

// numberLiteralsEqual is numbersEqual on two literals, without allocating
// (beyond what strconv.ParseFloat may need for a literal over 32 bytes when
// tol is set).
func numberLiteralsEqual(a, b []byte, tol float64) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if tol > 0 {
		x, err1 := strconv.ParseFloat(string(a), 64)
		y, err2 := strconv.ParseFloat(string(b), 64)
		if err1 == nil && err2 == nil && !math.IsInf(x, 0) && !math.IsInf(y, 0) {
			return math.Abs(x-y) <= tol
		}
	}
	return canonicalOf(a).equal(canonicalOf(b))
}

// canonNum is canonicalNumber's result held as parts of the literal: sign,
// the significant digits ip+fr[lo:hi] (integer and fraction digits taken
// together) and the exponent.
type canonNum struct {
	neg    bool
	ip, fr []byte
	lo, hi int
	exp    int
}

func (c *canonNum) digit(k int) byte {
	if k < len(c.ip) {
		return c.ip[k]
	}
	return c.fr[k-len(c.ip)]
}

// canonicalOf is canonicalNumber without building the string; the
// arithmetic (and the exponent's saturation) is the same.
func canonicalOf(s []byte) canonNum {
	var c canonNum
	if len(s) > 0 && s[0] == '-' {
		c.neg, s = true, s[1:]
	}
	if i := bytes.IndexAny(s, "eE"); i >= 0 {
		e := s[i+1:]
		s = s[:i]
		eneg := len(e) > 0 && e[0] == '-'
		for _, d := range bytes.TrimLeft(e, "+-") {
			if c.exp < 1e9 {
				c.exp = c.exp*10 + int(d-'0')
			}
		}
		if eneg {
			c.exp = -c.exp
		}
	}
	c.ip = s
	if i := bytes.IndexByte(s, '.'); i >= 0 {
		c.ip, c.fr = s[:i], s[i+1:]
	}
	n := len(c.ip) + len(c.fr)
	c.exp -= len(c.fr)
	for c.lo < n && c.digit(c.lo) == '0' {
		c.lo++
	}
	c.hi = n
	for c.hi > c.lo && c.digit(c.hi-1) == '0' {
		c.hi--
	}
	c.exp += n - c.hi
	return c
}

func (c canonNum) equal(d canonNum) bool {
	if c.lo == c.hi || d.lo == d.hi { // zero, whatever its sign and exponent
		return c.lo == c.hi && d.lo == d.hi
	}
	if c.neg != d.neg || c.exp != d.exp || c.hi-c.lo != d.hi-d.lo {
		return false
	}
	for k := 0; k < c.hi-c.lo; k++ {
		if c.digit(c.lo+k) != d.digit(d.lo+k) {
			return false
		}
	}
	return true
}
