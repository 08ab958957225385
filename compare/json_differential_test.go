package compare

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tape-based JSON comparison must give exactly what today's code
// (json_baseline_test.go) gives: the same differences in the same order,
// with the same values, the same Limit, the same "not JSON" verdict.

// differentialSettings are the settings the differential tests run under:
// the defaults, every ignore_json form, a number tolerance, and bounds small
// enough for generated documents to cross them.
var differentialSettings = []Settings{
	{},
	{IgnoreJSON: []string{"$.items[*].id", "$.meta.*", `$["a.b"]`, "$[1]", "$.k0", "$.*.k1"}},
	{IgnoreJSON: []string{"$"}},
	{JSONNumberTolerance: 0.01},
	{MaxJSONDepth: 3, MaxJSONNodes: 40, MaxJSONBytes: 300},
}

// differentialComparers builds one Comparer per differentialSettings entry.
func differentialComparers(t testing.TB) []*Comparer {
	var cs []*Comparer
	for _, s := range differentialSettings {
		c, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// checkAgainstBaseline fails t unless diffJSON and baseDiffJSON agree on the
// pair (legacy a, new b) under c, and the tape accepts exactly what
// encoding/json accepts.
func checkAgainstBaseline(t *testing.T, c *Comparer, a, b []byte) {
	t.Helper()
	l := resp(200, a, "Content-Type", ctJSON)
	n := resp(200, b, "Content-Type", ctJSON)
	got, gotOK, gotLimit := c.diffJSON(nil, &l, &n)
	want, wantOK, wantLimit := c.baseDiffJSON(nil, &l, &n)
	if gotOK != wantOK || gotLimit != wantLimit || !slices.Equal(got, want) {
		t.Fatalf("settings %+v\nlegacy %q\nnew    %q\ngot  ok=%v limit=%q %+v\nwant ok=%v limit=%q %+v",
			c.s, a, b, gotOK, gotLimit, got, wantOK, wantLimit, want)
	}
	// So does the fallback over encoding/json's trees.
	if got, ok, limit := c.diffJSONTrees(nil, &l, &n); ok != wantOK || limit != wantLimit || !slices.Equal(got, want) {
		t.Fatalf("diffJSONTrees: legacy %q, new %q: got ok=%v limit=%q %+v", a, b, ok, limit, got)
	}
	// The equality walk alone agrees too (a wrong "unequal" would cost
	// time only, as go-cmp would then find nothing).
	var s jsonScratch
	if s.l.parse(a, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes) == nil &&
		s.n.parse(b, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes) == nil {
		w := jwalker{c: c, a: &s.l, b: &s.n, s: &s, ignore: len(c.ignoreJSON) > 0}
		if eq := w.equal(0, 0); eq != (len(want) == 0) {
			t.Fatalf("settings %+v\nlegacy %q\nnew    %q\nequal = %v, but baseline found %+v", c.s, a, b, eq, want)
		}
	}
	for _, body := range [][]byte{a, b} {
		var tape jsonTape
		terr := tape.parse(body, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
		if terr == errSyntax {
			terr = checkJSONBounds(body, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
			if terr == nil {
				terr = errSyntax
			}
		}
		_, jerr := baseParseJSON(body, c.s.MaxJSONBytes, c.s.MaxJSONDepth, c.s.MaxJSONNodes)
		if (terr == nil) != (jerr == nil) || terr != nil && terr != errSyntax && terr != jerr {
			// The tape falls back to encoding/json when it refuses what
			// encoding/json takes; that must not be needed.
			t.Fatalf("settings %+v, body %q: tape says %v, encoding/json %v", c.s, body, terr, jerr)
		}
	}
}

func TestJSONAgainstBaselineFixed(t *testing.T) {
	docs := [][2]string{
		{`null`, `1`}, {`1`, `null`}, {`"a"`, `"b"`}, {`true`, `false`}, {`[]`, `{}`}, {`{}`, `[]`},
		{`{"a":null}`, `{"a":0}`}, {`[null]`, `[]`}, {`[]`, `[null]`}, {`{"a":[]}`, `{"a":{}}`},
		{`{"a":1,"a":2}`, `{"a":2}`}, {`{"a":1,"a":2}`, `{"a":1}`}, {`{"a":1,"\u0061":3}`, `{"a":3}`},
		{`{"a":1,"a":1}`, `{"a":1,"b":1}`}, {`{"b":1,"a":1,"b":2}`, `{"a":1,"b":2}`},
		{`"\ud800"`, `"\ufffd"`}, {`"\ud83d\ude00"`, `"😀"`}, {"\"\xff\"", "\"\xfe\""}, {"\"\xff\"", `"\ufffd"`},
		{`{"é":1}`, `{"\u00e9":2}`}, {`["\b\f\r\t\n\"\\"]`, "[\"\b\f\r\t\n\\\"\\\\\"]"}, {`["\u0000"]`, `["\u0001"]`}, {`["a\/b"]`, `["a/b"]`}, {`"\u00E9"`, `"\u00e9"`},
		{`[1, 100, 0.5, -0, 12345678901234567890]`, `[1.0, 1e2, 5e-1, 0, 12345678901234567890.0]`},
		{`[1e99999999999]`, `[1e99999999998]`}, {`[0e5]`, `[-0.0E-7]`}, {`[1E+2]`, `[100]`}, {`[10]`, `[10.005]`},
		{`{"a":1}` + "\u00a0", `{"a":1}` + "\v"}, {`{"a":1}` + "\f", `{"a":1} x`}, {`1x`, `1 x`},
		{`{"a":1`, `{"a":1}`}, {``, ` `}, {`{"a":1}{}`, `[`}, {"\ufeff{}", `{}`}, {`[01]`, `[1]`}, {`{"a":'x'}`, `{}`},
		{`{"a":"\x01"}`, `{"a":"\u0001"}`}, {`{"a":"\q"}`, `{}`}, {`{"a":"\u12"}`, `{}`}, {`[1.]`, `[1]`}, {`[-]`, `[.5]`},
		{`[[[[1]]]]`, `[[[[2]]]]`}, {`[[[[1]]]] x`, `[[[[2]]]]`}, {strings.Repeat(`[1,`, 30), `[]`},
		{`{"items":[{"id":"a","w":1},{"id":"b","w":2}]}`, `{"items":[{"id":"x","w":1},{"id":"y","w":5},{"w":6}]}`},
		{`{"meta":{"host":"a","took":3},"v":1}`, `{"meta":{"host":"b","took":4,"extra":1},"v":2}`},
		{`{"k0":1,"x":{"k1":2,"k2":3}}`, `{"x":{"k1":5,"k2":3,"k3":[]},"k9":null}`},
		{corpusDoc, strings.Replace(corpusDoc, "800", "801", 1)},
		{corpusDoc, strings.Replace(corpusDoc, `"owner":"ana",`, "", 1)},
		{string(jsonDoc(false, false)), string(jsonDoc(true, true))},
		{string(jsonDoc(false, false)), string(jsonDoc(false, true))},
	}
	for _, c := range differentialComparers(t) {
		for _, d := range docs {
			checkAgainstBaseline(t, c, []byte(d[0]), []byte(d[1]))
			checkAgainstBaseline(t, c, []byte(d[1]), []byte(d[0]))
		}
	}
}

// TestJSONAgainstBaselineGenerated compares generated documents with
// mutations of themselves (a changed, dropped, added or retyped value,
// reordered keys, other number spellings and escapes, a repeated key, a cut
// or extended body) under every differentialSettings entry.
func TestJSONAgainstBaselineGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 6))
	cs := differentialComparers(t)
	pairs, kinds := 0, map[string]int{}
	for i := 0; i < 1500; i++ {
		v := genValue(rng, 0)
		a := genWrite(rng, v)
		b := genWrite(rng, genMutate(rng, v))
		switch rng.IntN(10) {
		case 0:
			b = b[:rng.IntN(len(b)+1)] // cut: usually invalid
		case 1:
			b = append(b, genJunk[rng.IntN(len(genJunk))]...)
		case 2:
			a, b = a[:rng.IntN(len(a)+1)], append(b, genJunk[rng.IntN(len(genJunk))]...)
		}
		for _, c := range cs {
			checkAgainstBaseline(t, c, a, b)
			pairs++
			l, n := resp(200, a, "Content-Type", ctJSON), resp(200, b, "Content-Type", ctJSON)
			diffs, ok, limit := c.baseDiffJSON(nil, &l, &n)
			switch {
			case limit != "":
				kinds["limit"]++
			case !ok:
				kinds["both invalid"]++
			case len(diffs) == 1 && diffs[0].Path == "$" && strings.Contains(diffs[0].Legacy+diffs[0].New, "invalid"):
				kinds["one invalid"]++
			case len(diffs) == 0:
				kinds["equal"]++
			default:
				kinds["differ"]++
			}
		}
	}
	// The generator covers every case, each often.
	for _, k := range []string{"limit", "both invalid", "one invalid", "equal", "differ"} {
		if kinds[k] < 100 {
			t.Errorf("only %d generated pairs of kind %q: %v", kinds[k], k, kinds)
		}
	}
	// Many differences in one document: the cap and the new shapes past it.
	var big1, big2 strings.Builder
	big1.WriteString(`{"items":[`)
	big2.WriteString(`{"items":[`)
	for i := 0; i < 400; i++ {
		if i > 0 {
			big1.WriteByte(',')
			big2.WriteByte(',')
		}
		fmt.Fprintf(&big1, `{"w":%d,"id":"%d","s":{"x%d":1}}`, i, i, i%7)
		fmt.Fprintf(&big2, `{"id":"%d","w":%d,"s":{"x%d":2}}`, i+1, i+i%2, i%5)
	}
	big1.WriteString(`],"other":1,"zz":[1,2]}`)
	big2.WriteString(`],"other":2,"zz":{"0":1}}`)
	for _, c := range cs {
		checkAgainstBaseline(t, c, []byte(big1.String()), []byte(big2.String()))
		checkAgainstBaseline(t, c, []byte(big2.String()), []byte(big1.String()))
	}
	t.Logf("%d pairs: %v", pairs, kinds)
}

// genJunk is what may follow a generated document.
var genJunk = []string{" ", "\n\t", "\u00a0", "\u2028", "\v", "x", "{}", "]", ",", "\x00", "[[[[["}

// genValue returns a random JSON value: any (nil, bool, string, number
// literal as genNumber, []any, or genObject) nested at most 4 deep.
func genValue(rng *rand.Rand, depth int) any {
	k := rng.IntN(10)
	if depth >= 4 && k >= 6 {
		k = rng.IntN(6)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2, 3:
		return genString(rng)
	case 4, 5:
		return genNumber(rng.IntN(1000) - 500)
	case 6, 7:
		n := rng.IntN(6)
		if depth < 2 && rng.IntN(4) == 0 {
			n = 10 + rng.IntN(30) // wide: more than jsonCmpNodes nodes below
		}
		a := make([]any, n)
		for i := range a {
			a[i] = genValue(rng, depth+1)
		}
		return a
	}
	n := rng.IntN(7)
	if depth < 2 && rng.IntN(4) == 0 {
		n = 10 + rng.IntN(30) // wide, and past maxLinearKeys
	}
	o := genObject{}
	for range n {
		o = append(o, genMember{genKey(rng), genValue(rng, depth+1)})
	}
	return o
}

// genNumber is an integer value, written in one of several spellings by
// genWrite.
type genNumber int

// genObject is an object with its members in order (keys may repeat).
type genObject []genMember

type genMember struct {
	key string
	val any
}

var genKeys = []string{"id", "w", "a.b", "items", "meta", "k0", "k1", "k2", "x y", "é", "", "3", "host", "took", "*"}

func genKey(rng *rand.Rand) string {
	if rng.IntN(3) == 0 {
		return "key" + strconv.Itoa(rng.IntN(40))
	}
	return genKeys[rng.IntN(len(genKeys))]
}

var genStrings = []string{"", "a", "ana", "jpeg", "https://cdn.example/u/8f14e45f/1.jpg", "é", "😀", "a\"b", "back\\slash",
	"line\nbreak", "tab\t", "\u2028", "\x7f", "x/y", "長い文字列のテキストです", "longer text than eight bytes"}

func genString(rng *rand.Rand) string { return genStrings[rng.IntN(len(genStrings))] }

// genMutate returns v with one change somewhere in it, or v itself.
func genMutate(rng *rand.Rand, v any) any {
	switch x := v.(type) {
	case []any:
		y := slices.Clone(x)
		switch k := rng.IntN(5); {
		case k == 0 && len(y) > 0:
			y = y[:len(y)-1]
		case k == 1:
			y = append(y, genValue(rng, 3))
		case len(y) > 0:
			i := rng.IntN(len(y))
			y[i] = genMutate(rng, y[i])
		}
		return y
	case genObject:
		y := slices.Clone(x)
		switch k := rng.IntN(7); {
		case k == 0 && len(y) > 0:
			i := rng.IntN(len(y))
			y = append(y[:i], y[i+1:]...)
		case k == 1:
			y = append(y, genMember{genKey(rng), genValue(rng, 3)})
		case k == 2 && len(y) > 0:
			y = append(y, y[rng.IntN(len(y))]) // a repeated key, same value
		case k == 3 && len(y) > 1:
			rng.Shuffle(len(y), func(i, j int) { y[i], y[j] = y[j], y[i] })
		case len(y) > 0:
			i := rng.IntN(len(y))
			y[i].val = genMutate(rng, y[i].val)
		}
		return y
	case genNumber:
		if rng.IntN(3) == 0 {
			return x // the same value, maybe spelled otherwise
		}
		return x + genNumber(rng.IntN(3)-1)
	}
	if rng.IntN(4) == 0 {
		return v
	}
	return genValue(rng, 4)
}

// genWrite writes v as JSON, choosing white space, number spellings and
// string escapes at random.
func genWrite(rng *rand.Rand, v any) []byte {
	var b []byte
	space := func() {
		if rng.IntN(8) == 0 {
			b = append(b, " \n\t\r"[rng.IntN(4)])
		}
	}
	var write func(v any)
	write = func(v any) {
		space()
		switch x := v.(type) {
		case nil:
			b = append(b, "null"...)
		case bool:
			b = strconv.AppendBool(b, x)
		case string:
			b = genQuote(rng, b, x)
		case genNumber:
			b = append(b, genSpell(rng, int(x))...)
		case []any:
			b = append(b, '[')
			for i, e := range x {
				if i > 0 {
					b = append(b, ',')
				}
				write(e)
			}
			space()
			b = append(b, ']')
		case genObject:
			b = append(b, '{')
			for i, m := range x {
				if i > 0 {
					b = append(b, ',')
				}
				space()
				b = genQuote(rng, b, m.key)
				space()
				b = append(b, ':')
				write(m.val)
			}
			space()
			b = append(b, '}')
		}
		space()
	}
	write(v)
	return b
}

// genSpell writes n in one of its JSON spellings, or, rarely, as a close
// value (a float within 0.01, a big integer).
func genSpell(rng *rand.Rand, n int) string {
	s := strconv.Itoa(n)
	switch rng.IntN(9) {
	case 0:
		return s + ".0"
	case 1:
		return s + "e0"
	case 2:
		return s + "0e-1"
	case 3:
		return s + ".000E+00"
	case 4:
		return s + ".004" // within json_number_tolerance 0.01
	case 5:
		return s + "12345678901234567890"
	case 6:
		if n == 0 {
			return "-0"
		}
	}
	return s
}

// genQuote appends s as a JSON string, escaping at random where JSON allows,
// and sometimes with a lone surrogate or invalid UTF-8 in place of "😀".
func genQuote(rng *rand.Rand, b []byte, s string) []byte {
	if s == "😀" {
		switch rng.IntN(4) {
		case 0:
			return append(b, `"\ud83d\ude00"`...)
		case 1:
			return append(b, `"\ud83d"`...)
		case 2:
			return append(b, "\"\xf0\x9f\x98\""...)
		}
	}
	return appendJSONString(b, s, rng.IntN(3) == 0)
}

// appendJSONString appends s as a JSON string; escapeAll escapes every
// character JSON lets it (non-ASCII as \u escapes, surrogate pairs past
// U+FFFF, "/" as "\/"), else only those it must.
func appendJSONString(b []byte, s string, escapeAll bool) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r < 0x20:
			b = fmt.Appendf(b, `\u%04x`, r)
		case escapeAll && r == '/':
			b = append(b, `\/`...)
		case escapeAll && r > 0xffff:
			r -= 0x10000
			b = fmt.Appendf(b, `\u%04X\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		case escapeAll && (r >= 0x80 || r == 'a'):
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = append(b, string(r)...)
		}
	}
	return append(b, '"')
}

// FuzzJSONAgainstBaseline holds the tape-based comparison to today's code on
// arbitrary pairs of bodies. Run it with
// go test -run '^$' -fuzz FuzzJSONAgainstBaseline -fuzztime 60s -fuzzminimizetime 5s ./compare/
// (each input is compared under every differentialSettings entry, so
// minimising a new input at the default 60s stalls the run).
func FuzzJSONAgainstBaseline(f *testing.F) {
	rng := rand.New(rand.NewPCG(6, 22))
	for range 40 {
		v := genValue(rng, 0)
		f.Add(genWrite(rng, v), genWrite(rng, genMutate(rng, v)))
	}
	for _, d := range [][2]string{
		{`{"a":1,"a":2}`, `{"a":2}`}, {`"\ud800"`, `"\ufffd"`}, {"\"\xff\"", `"\ufffd"`}, {`[1e99999999999]`, `[1e99999999998]`},
		{`{"a":1}` + "\u00a0", `{"a":1} x`}, {corpusDoc, strings.Replace(corpusDoc, "800", "801", 1)},
		{`{"items":[{"id":"a","w":1}],"meta":{"x":1}}`, `{"meta":{"y":2},"items":[{"id":"b","w":1.0}]}`},
	} {
		f.Add([]byte(d[0]), []byte(d[1]))
	}
	cs := differentialComparers(f)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for _, c := range cs {
			checkAgainstBaseline(t, c, a, b)
		}
	})
}
