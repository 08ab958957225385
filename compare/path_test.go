package compare

import (
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	valid := []struct {
		in, rendered string
	}{
		{"$", "$"},
		{"$.status", "$.status"},
		{"$.header.Content-Type", "$.header.Content-Type"},
		{"$.items[3].width", "$.items[3].width"},
		{"$.items[*].id", "$.items[*].id"},
		{"$.a.*", "$.a[*]"},
		{`$["a.b"]["x y"]`, `$["a.b"]["x y"]`},
		{`$['a.b']`, `$["a.b"]`},
		{`$["q\"uote"]`, `$["q\"uote"]`},
		{"$.3", `$["3"]`},
		{"$[0][1]", "$[0][1]"},
	}
	for _, tc := range valid {
		segs, err := parsePath(tc.in, true)
		if err != nil {
			t.Errorf("parsePath(%q): %v", tc.in, err)
			continue
		}
		if got := renderPath(segs); got != tc.rendered {
			t.Errorf("renderPath(parsePath(%q)) = %q, want %q", tc.in, got, tc.rendered)
		}
	}
	invalid := []struct{ in, errPart string }{
		{"", `start with "$"`},
		{"status", `start with "$"`},
		{"$.", "empty name"},
		{"$.[", "empty name"},
		{"$..a", "recursive descent"},
		{"$.a[", "unterminated"},
		{"$.a[x]", "want an index"},
		{"$.a[1", "unterminated ["},
		{"$.a[12x", "missing ]"},
		{`$["a]`, "unterminated string"},
		{"$.a b", "unexpected"},
		{"$[99999999999]", "too large"},
	}
	for _, tc := range invalid {
		if _, err := parsePath(tc.in, true); err == nil || !strings.Contains(err.Error(), tc.errPart) {
			t.Errorf("parsePath(%q) error = %v, want one containing %q", tc.in, err, tc.errPart)
		}
	}
	if _, err := parsePath("$.a[*]", false); err == nil {
		t.Error("a difference path must not hold wildcards")
	}
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"$.a", "$.a", true},
		{"$.a", "$.a.b[2]", true}, // covers everything below
		{"$.a", "$.ab", false},
		{"$.a.b", "$.a", false},
		{"$.items[*].id", "$.items[7].id", true},
		{"$.items[*].id", "$.items[7].name", false},
		{"$.*", "$[3]", true}, // * matches an index too
		{"$[*]", "$.x", true}, // and [*] a key
		{"$[1]", `$["1"]`, false},
		{"$.header.X-Trace", "$.header.X-Trace", true},
	}
	for _, tc := range tests {
		p, err := parsePath(tc.pattern, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := pattern(p).matchesPath(tc.path); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

func TestShapePath(t *testing.T) {
	for in, want := range map[string]string{
		"$.items[3].id":         "$.items[*].id",
		"$[0][12]":              "$[*][*]",
		"$.status":              "$.status",
		`$["a[1]"]`:             `$["a[1]"]`,
		"$.header.Content-Type": "$.header.Content-Type",
	} {
		if got := shapePath(in); got != want {
			t.Errorf("shapePath(%q) = %q, want %q", in, got, want)
		}
	}
}
