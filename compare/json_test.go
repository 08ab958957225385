package compare

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func jsonPair(l, n string) (Response, Response) {
	return resp(200, []byte(l), "Content-Type", ctJSON), resp(200, []byte(n), "Content-Type", ctJSON)
}

func TestJSONDiff(t *testing.T) {
	tests := []struct {
		name     string
		why      string
		legacy   string
		new      string
		settings Settings
		want     []Difference // nil: match
	}{
		{name: "changed value", why: "the basic case",
			legacy: `{"a":1,"b":"x"}`, new: `{"a":1,"b":"y"}`,
			want: []Difference{{Kind: KindJSON, Path: "$.b", Legacy: `"x"`, New: `"y"`}}},
		{name: "missing field", why: "absent on new reads <missing>",
			legacy: `{"a":1,"b":{"c":[1,2]}}`, new: `{"a":1}`,
			want: []Difference{{Kind: KindJSON, Path: "$.b", Legacy: `{"c":[1,2]}`, New: missing}}},
		{name: "added field", why: "absent on legacy reads <missing>",
			legacy: `{}`, new: `{"z":null}`,
			want: []Difference{{Kind: KindJSON, Path: "$.z", Legacy: missing, New: "null"}}},
		{name: "null vs value", why: "null is a value, not a missing field",
			legacy: `{"a":null}`, new: `{"a":0}`,
			want: []Difference{{Kind: KindJSON, Path: "$.a", Legacy: "null", New: "0"}}},
		{name: "type change", why: "a number that became a string",
			legacy: `{"w":400}`, new: `{"w":"400"}`,
			want: []Difference{{Kind: KindJSON, Path: "$.w", Legacy: "400", New: `"400"`}}},
		{name: "array element", why: "index by index",
			legacy: `{"items":[{"w":1},{"w":2}]}`, new: `{"items":[{"w":1},{"w":3}]}`,
			want: []Difference{{Kind: KindJSON, Path: "$.items[1].w", Legacy: "2", New: "3"}}},
		{name: "array shorter", why: "dropped element",
			legacy: `[1,2,3]`, new: `[1,2]`,
			want: []Difference{{Kind: KindJSON, Path: "$[2]", Legacy: "3", New: missing}}},
		{name: "root type", why: "object vs array at the root",
			legacy: `{"a":1}`, new: `[1]`,
			want: []Difference{{Kind: KindJSON, Path: "$", Legacy: `{"a":1}`, New: `[1]`}}},
		{name: "odd keys", why: "keys that are not names are bracket-quoted",
			legacy: `{"a.b":1,"x y":{"3":true}}`, new: `{"a.b":2,"x y":{"3":false}}`,
			want: []Difference{
				{Kind: KindJSON, Path: `$["a.b"]`, Legacy: "1", New: "2"},
				{Kind: KindJSON, Path: `$["x y"]["3"]`, Legacy: "true", New: "false"}}},
		{name: "key order and space", why: "no meaning in JSON",
			legacy: `{"a":1,"b":[1,{"c":2,"d":3}]}`, new: "{ \"b\" : [1, {\"d\":3, \"c\":2}],\n\"a\":1 }"},
		{name: "numbers by value", why: "1 = 1.0 = 1e0 = 10e-1; exact, no float rounding",
			legacy: `[1, 100, 0.5, -0, 12345678901234567890]`, new: `[1.0, 1e2, 5e-1, 0, 12345678901234567890.0]`},
		{name: "big integers exact", why: "float64 would call these equal",
			legacy: `{"id":12345678901234567890}`, new: `{"id":12345678901234567891}`,
			want: []Difference{{Kind: KindJSON, Path: "$.id", Legacy: "12345678901234567890", New: "12345678901234567891"}}},
		{name: "number tolerance", why: "within 0.01 counts as equal",
			legacy: `{"ratio":1.333,"score":0.5}`, new: `{"ratio":1.3334,"score":0.52}`,
			settings: Settings{JSONNumberTolerance: 0.01},
			want:     []Difference{{Kind: KindJSON, Path: "$.score", Legacy: "0.5", New: "0.52"}}},
		{name: "tolerance boundary", why: "tolerance is inclusive",
			legacy: `[10]`, new: `[10.5]`, settings: Settings{JSONNumberTolerance: 0.5}},
		{name: "ignore field", why: "processed_at is a timestamp",
			legacy: `{"id":1,"processed_at":"10:00"}`, new: `{"id":1,"processed_at":"10:01"}`,
			settings: Settings{IgnoreJSON: []string{"$.processed_at"}}},
		{name: "ignore missing field", why: "an ignored field may also be absent",
			legacy: `{"id":1,"processed_at":"10:00"}`, new: `{"id":1}`,
			settings: Settings{IgnoreJSON: []string{"$.processed_at"}}},
		{name: "ignore array wildcard", why: "every item has its own generated id",
			legacy: `{"items":[{"id":"a","w":1},{"id":"b","w":2}]}`, new: `{"items":[{"id":"x","w":1},{"id":"y","w":5}]}`,
			settings: Settings{IgnoreJSON: []string{"$.items[*].id"}},
			want:     []Difference{{Kind: KindJSON, Path: "$.items[1].w", Legacy: "2", New: "5"}}},
		{name: "ignore object wildcard", why: "everything under meta is diagnostic",
			legacy: `{"meta":{"host":"a","took":3},"v":1}`, new: `{"meta":{"host":"b","took":4,"extra":1},"v":1}`,
			settings: Settings{IgnoreJSON: []string{"$.meta.*"}}},
		{name: "ignore subtree", why: "a pattern covers everything below it",
			legacy: `{"debug":{"a":[1,2,{"b":3}]}}`, new: `{"debug":{"a":[4]}}`,
			settings: Settings{IgnoreJSON: []string{"$.debug"}}},
		{name: "ignore one index", why: "only the first element is volatile",
			legacy: `[{"t":1},{"t":2}]`, new: `[{"t":9},{"t":8}]`,
			settings: Settings{IgnoreJSON: []string{"$[0]"}},
			want:     []Difference{{Kind: KindJSON, Path: "$[1].t", Legacy: "2", New: "8"}}},
		{name: "ignore quoted key", why: "bracket syntax for odd keys",
			legacy: `{"a.b":1,"c":1}`, new: `{"a.b":2,"c":1}`,
			settings: Settings{IgnoreJSON: []string{`$['a.b']`}}},
		{name: "ignore does not over-match", why: "$.meta.* leaves $.metadata alone",
			legacy: `{"metadata":1}`, new: `{"metadata":2}`,
			settings: Settings{IgnoreJSON: []string{"$.meta.*", "$.meta"}},
			want:     []Difference{{Kind: KindJSON, Path: "$.metadata", Legacy: "1", New: "2"}}},
		{name: "invalid on new", why: "one side parses, the other not",
			legacy: `{"a":1}`, new: `{"a":1`,
			want: []Difference{{Kind: KindJSON, Path: "$", Legacy: "valid JSON object", New: "invalid JSON: unexpected EOF"}}},
		{name: "trailing data", why: "two documents are not one",
			legacy: `{"a":1}`, new: `{"a":1}{"b":2}`,
			want: []Difference{{Kind: KindJSON, Path: "$", Legacy: "valid JSON object", New: "invalid JSON: data after the JSON value at offset 7"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, n := jsonPair(tc.legacy, tc.new)
			got := Compare(l, n, tc.settings)
			wantOutcome := OutcomeMatch
			if tc.want != nil {
				wantOutcome = OutcomeMismatch
			}
			if got.Outcome != wantOutcome || !slices.Equal(got.Diffs, tc.want) {
				t.Errorf("%s (%s):\ngot  %s\nwant %s %+v", tc.name, tc.why, got.Text(), wantOutcome, tc.want)
			}
		})
	}
}

func TestJSONFallbacks(t *testing.T) {
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	deep2 := strings.Repeat("[", 100) + "1" + strings.Repeat("]", 100)
	tests := []struct {
		name     string
		why      string
		legacy   Response
		new      Response
		settings Settings
		want     Difference
	}{
		{name: "too deep", why: "nesting beyond max_json_depth is compared by hash",
			legacy: resp(200, []byte(deep), "Content-Type", ctJSON), new: resp(200, []byte(deep2), "Content-Type", ctJSON),
			want: Difference{Kind: KindBody, Path: "$.body"}},
		{name: "too large", why: "bodies beyond max_json_bytes are compared by hash",
			legacy: resp(200, []byte(`{"a":1}`), "Content-Type", ctJSON), new: resp(200, []byte(`{"a":2}`), "Content-Type", ctJSON),
			settings: Settings{MaxJSONBytes: 4}, want: Difference{Kind: KindBody, Path: "$.body"}},
		{name: "both invalid", why: "not JSON after all: compare bytes",
			legacy: resp(200, []byte(`{nope`), "Content-Type", ctJSON), new: resp(200, []byte(`{nah`), "Content-Type", ctJSON),
			want: Difference{Kind: KindBody, Path: "$.body"}},
		{name: "sniffed without Content-Type", why: "objects are recognised by shape",
			legacy: resp(200, []byte(` {"a":1}`)), new: resp(200, []byte(`{"a":2}`)),
			want: Difference{Kind: KindJSON, Path: "$.a", Legacy: "1", New: "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(tc.legacy, tc.new, tc.settings)
			if got.Outcome != OutcomeMismatch || len(got.Diffs) != 1 || got.Diffs[0].Kind != tc.want.Kind || got.Diffs[0].Path != tc.want.Path {
				t.Fatalf("%s (%s): got %s", tc.name, tc.why, got.Text())
			}
			if tc.want.Legacy != "" && got.Diffs[0] != tc.want {
				t.Errorf("%s (%s): got %+v, want %+v", tc.name, tc.why, got.Diffs[0], tc.want)
			}
		})
	}
}

func TestJSONTruncatedBody(t *testing.T) {
	full := []byte(`{"a":1,"b":2}`)
	l := resp(200, full, "Content-Type", ctJSON)
	n := resp(200, []byte(`{"a":1,"b":3}`), "Content-Type", ctJSON)
	n.Body = n.Body[:5] // captured prefix only; Size and SHA256 are of the whole body
	got := Compare(l, n, Settings{})
	if len(got.Diffs) != 1 || got.Diffs[0].Path != "$.body" || !strings.Contains(got.Diffs[0].New, "truncated") {
		t.Fatalf("got %s", got.Text())
	}
}

func TestJSONDiffCap(t *testing.T) {
	var a, b strings.Builder
	a.WriteString(`{"items":[`)
	b.WriteString(`{"items":[`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			a.WriteByte(',')
			b.WriteByte(',')
		}
		fmt.Fprintf(&a, `{"w":%d}`, i)
		fmt.Fprintf(&b, `{"w":%d}`, i+1)
	}
	a.WriteString(`],"other":1}`)
	b.WriteString(`],"other":2}`)
	l, n := jsonPair(a.String(), b.String())
	got := Compare(l, n, Settings{})
	if len(got.Diffs) != maxJSONDiffs+1 {
		t.Fatalf("got %d differences, want %d (the cap, then one of a new shape)", len(got.Diffs), maxJSONDiffs+1)
	}
	if last := got.Diffs[len(got.Diffs)-1]; last.Path != "$.other" {
		t.Errorf("the new shape past the cap: got %+v", last)
	}
}

func TestCanonicalNumber(t *testing.T) {
	same := [][]string{
		{"1", "1.0", "1e0", "10e-1", "0.1e1", "1.000E+0"},
		{"0", "-0", "0.0", "0e10"},
		{"-15e1", "-150", "-1.50e2"},
		{"12345678901234567890", "1234567890123456789e1"},
	}
	for _, group := range same {
		for _, s := range group {
			if got, want := canonicalNumber(s), canonicalNumber(group[0]); got != want {
				t.Errorf("canonicalNumber(%q) = %q, want %q like %q", s, got, want, group[0])
			}
		}
	}
	if canonicalNumber("1") == canonicalNumber("-1") || canonicalNumber("1e2") == canonicalNumber("1e3") {
		t.Error("different numbers compare equal")
	}
}
