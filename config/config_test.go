package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// The example file in the repository is valid and spells out the defaults.
func TestExampleConfigIsValid(t *testing.T) {
	b, err := os.ReadFile("../tandem.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, errs := Parse(b)
	if len(errs) > 0 {
		t.Fatalf("example config: %v", errs)
	}
	d := Default()
	if c.Limits != d.Limits || c.Client != d.Client || c.Listen != d.Listen || c.Admin.Listen != d.Admin.Listen || c.Retention != d.Retention {
		t.Errorf("example does not match the defaults:\n got %+v %+v\nwant %+v %+v", c.Limits, c.Client, d.Limits, d.Client)
	}
	if got, want := *c.Backends["legacy"], withURL(DefaultBackend(), "http://127.0.0.1:9001", 1024); got.URL != want.URL || got.Timeout != want.Timeout || got.MaxConns != want.MaxConns || got.Breaker != want.Breaker {
		t.Errorf("legacy backend %+v", *c.Backends["legacy"])
	}
}

// The perceptual image keys of a route's compare block are read.
func TestImageMeasureKeys(t *testing.T) {
	c, errs := Parse([]byte(`backends: {legacy: {url: "http://a:1"}, new: {url: "http://b:1"}}
routes:
  - name: r
    legacy: legacy
    new: new
    compare: {image_min_psnr: 28, image_min_ssim: 0.95, image_max_delta_e: 1.5, image_max_mean_shift: 2}
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := c.Routes[0].Compare
	if s.ImageMinPSNR != 28 || s.ImageMinSSIM != 0.95 || s.ImageMaxDeltaE != 1.5 || s.ImageMaxMeanShift != 2 {
		t.Errorf("compare settings %+v", s)
	}
}

func withURL(b Backend, u string, conns int) Backend {
	b.URL, b.MaxConns = u, conns
	return b
}

// client.underscores_in_headers: true is read.
func TestUnderscoresInHeaders(t *testing.T) {
	c, errs := Parse([]byte(`
client: {underscores_in_headers: true}
backends: {legacy: {url: "http://127.0.0.1:1"}}
routes: [{name: r, legacy: legacy}]
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !c.Client.UnderscoresInHeaders {
		t.Fatal("client.underscores_in_headers: true was not read")
	}
}

// client.raw_syscalls: false is read (the switch that turns the raw calls off).
func TestRawSyscallsOff(t *testing.T) {
	c, errs := Parse([]byte(`
client: {raw_syscalls: false}
backends: {legacy: {url: "http://127.0.0.1:1"}}
routes: [{name: r, legacy: legacy}]
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if c.Client.RawSyscalls {
		t.Fatal("client.raw_syscalls: false was not read")
	}
}

// Absent keys take their documented defaults.
func TestDefaults(t *testing.T) {
	c, errs := Parse([]byte(`
backends: {legacy: {url: "http://127.0.0.1:1"}, new: {url: "http://127.0.0.1:2"}}
routes: [{name: r, legacy: legacy, new: new}]
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	r := c.Routes[0]
	if r.Mirror != 100 || r.ServeNew != 0 || r.Sticky != "none" || r.Match.PathPrefix != "/" {
		t.Errorf("route defaults: %+v", r)
	}
	b := c.Backends["new"]
	if b.Timeout.D() != 30*time.Second || b.Breaker.ConsecutiveFailures != 5 || b.Breaker.OpenFor.D() != 10*time.Second {
		t.Errorf("backend defaults: %+v", b)
	}
	if c.Client.UnderscoresInHeaders {
		t.Errorf("client.underscores_in_headers defaults to true; want false (drop, as nginx)")
	}
	if !c.Client.RawSyscalls {
		t.Errorf("client.raw_syscalls defaults to false; want true (raw calls, Linux only)")
	}
	if c.Fleet.Database != "" || c.Fleet.Instance != "" {
		t.Errorf("fleet defaults to %+v; want this instance alone", c.Fleet)
	}
	if c.Retention.Comparisons.D() != 24*time.Hour {
		t.Errorf("retention.comparisons defaults to %v; want 24h", c.Retention.Comparisons.D())
	}
	if c.Limits.MaxBody != 1<<30 || c.DataDir != "./tandem-data" || c.Admin.Listen != "127.0.0.1:9901" {
		t.Errorf("top-level defaults: %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		why, doc string
		want     []string
	}{
		{"unknown top-level key", "lisen: x\n", []string{"1:1: lisen: unknown key \"lisen\"; did you mean `listen`?"}},
		{"unknown nested key names its line", "backends:\n  legacy:\n    url: http://a:1\n    timeot: 3s\n", []string{`4:5: backends.legacy.timeot: unknown key`}},
		{"bad size", "limits: {max_body: huge}\n", []string{`1:20: limits.max_body: invalid size "huge"`}},
		{"bad duration", "client: {idle_timeout: forever}\n", []string{`1:24: client.idle_timeout: invalid duration "forever"`}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", []string{`2:1: listen: duplicate key "listen" (first at 1:1)`}},
		{"underscores_in_headers is a boolean", "client:\n  underscores_in_headers: drop\n", []string{`2:27: client.underscores_in_headers: want true or false, got "drop"`}},
		{"syntax error", "routes: [\n", []string{"1:9: unclosed `[` opened at 1:9"}},
		{"comparisons kept for no time", "retention:\n  comparisons: 0s\n", []string{"2:16: retention.comparisons: must be greater than 0"}},
		{"comparisons kept for negative time", "retention: {comparisons: -1h}\n", []string{"1:26: retention.comparisons: must be greater than 0"}},
		{"comparisons retention is a duration", "retention: {comparisons: a day}\n", []string{`1:26: retention.comparisons: invalid duration "a day"`}},
		{"fleet database of another scheme", "fleet: {database: \"mysql://u:secret@db/t\"}\n", []string{"1:19: fleet.database: is not a PostgreSQL URL (the scheme must be postgres:// or postgresql://)"}},
		{"fleet database neither URL nor DSN", "fleet:\n  database: tandem-db\n", []string{"2:13: fleet.database: is neither a URL nor key=value pairs"}},
		{"fleet database URL without a host", "fleet: {database: \"postgres:///tandem\"}\n", []string{"1:19: fleet.database: names no host"}},
		{"fleet database bad URL keeps its password out", "fleet: {database: \"postgres://u:s3cret@db:99x/t\"}\n", []string{"1:19: fleet.database: is not a valid URL"}},
		{"fleet instance with a space", "fleet: {instance: \"edge 3\"}\n", []string{`1:19: fleet.instance: "edge 3" has spaces`}},
		{"fleet unknown key", "fleet: {databse: x}\n", []string{"1:9: fleet.databse: unknown key \"databse\"; did you mean `database`?"}},
		{"empty", "", []string{"empty document"}},
		{"no backends or routes", "listen: 127.0.0.1:1\n", []string{"backends: at least one backend", "routes: at least one route"}},
		{"route problems each with a line", `backends: {legacy: {url: "http://a:1"}}
routes:
  - name: r
    legacy: legacy
    mirror: 100.001
  - name: r
    legacy: nope
    match: {path_prefix: upload}
`, []string{
			"5:13: routes[0].mirror: 100.001 must be within 0..100",
			`6:11: routes[1].name: "r" is also the name of routes[0]`,
			`7:13: routes[1].legacy: unknown backend "nope"`,
			`8:26: routes[1].match.path_prefix: "upload" must start with /`,
		}},
		{"ramp needs new and increasing steps", `backends: {legacy: {url: "http://a:1"}}
routes:
  - name: r
    legacy: legacy
    ramp: {steps: [5, 1]}
`, []string{"routes[0].ramp: needs a new backend", "routes[0].ramp.steps[1]: 1 must be greater"}},
		{"image measures out of range", `backends: {legacy: {url: "http://a:1"}, new: {url: "http://b:1"}}
routes:
  - name: r
    legacy: legacy
    new: new
    compare:
      image_min_ssim: 1.2
      image_max_delta_e: -1
      image_max_mean_shift: -2
`, []string{
			"7:23: routes[0].compare.image_min_ssim: must be in (0, 1], got 1.2",
			"8:26: routes[0].compare.image_max_delta_e: must not be negative, got -1",
			"9:29: routes[0].compare.image_max_mean_shift: must not be negative, got -2 (0 means off)",
		}},
		{"image measure misspelt", `backends: {legacy: {url: "http://a:1"}}
routes:
  - name: r
    legacy: legacy
    compare: {image_min_sim: 0.9}
`, []string{"5:15: routes[0].compare.image_min_sim: unknown key \"image_min_sim\"; did you mean `image_min_ssim`?"}},
	}
	for _, c := range cases {
		t.Run(c.why, func(t *testing.T) {
			_, errs := Parse([]byte(c.doc))
			var all []string
			for _, e := range errs {
				all = append(all, e.Error())
			}
			joined := strings.Join(all, "\n")
			for _, w := range c.want {
				if !strings.Contains(joined, w) {
					t.Errorf("errors lack %q; got:\n%s", w, joined)
				}
			}
			for _, secret := range []string{"secret", "s3cret"} {
				if strings.Contains(c.doc, secret) && strings.Contains(joined, secret) {
					t.Errorf("a password reached the error message:\n%s", joined)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../tandem.example.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("routes: [{name: r, legacy: a, ramp: {steps: [1, 100]}}]\n"))
	f.Add([]byte("limits: {max_body: 1GiB}\n"))
	if b, err := os.ReadFile("../cmd/tandem/testdata/nine-problems.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("routes:\n  - name: r\n    match: {methods: [GET, POST}\n"))
	f.Add([]byte("a: 'x\nb: \"y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, errs := Parse(b)
		if len(errs) == 0 && c == nil {
			t.Fatal("no config and no errors")
		}
		// Every problem is placed within the document.
		// YAML breaks lines at \r\n, \r, \n, NEL, LS and PS.
		lines := 1 + strings.Count(strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n").Replace(string(b)), "\n")
		for _, err := range errs {
			p, ok := err.(*Problem)
			if !ok {
				t.Fatalf("%T %v is not a *Problem", err, err)
			}
			if p.Line < 1 || p.Line > lines || p.Path != "" && p.Column < 1 {
				t.Fatalf("%v: outside the document's %d lines", p, lines)
			}
		}
	})
}

// problemsOf returns the *Problems of a document, failing on any other error.
func problemsOf(t *testing.T, doc string) []*Problem {
	t.Helper()
	_, errs := Parse([]byte(doc))
	var ps []*Problem
	for _, err := range errs {
		p, ok := err.(*Problem)
		if !ok {
			t.Fatalf("%T %v is not a *Problem", err, err)
		}
		ps = append(ps, p)
	}
	return ps
}

// Problems of every kind come in one pass, each at its node, sorted by
// position: a bad value does not hide an unknown key after it, and neither
// hides the semantic checks.
func TestParseReportsEveryKindInOnePass(t *testing.T) {
	doc := `listen: 127.0.0.1:8080
limtis:
  max_body: 1GiB
client:
  idle_timeout: forever
backends:
  legacy: {url: "http://127.0.0.1:9001", max_conns: many}
  new: {url: "ftp://x"}
routes:
  - name: upload
    legacy: legacy
    new: nwe
    serve_new: 101
  - name: upload
    legacy: legacy
    ramp: {steps: [5, 1], hold: 1 minute}
`
	want := []struct {
		line, col int
		path, msg string
	}{
		{2, 1, "limtis", `unknown key "limtis"`},
		{5, 17, "client.idle_timeout", `invalid duration "forever"`},
		{7, 53, "backends.legacy.max_conns", `want a whole number, got "many"`},
		{8, 14, "backends.new.url", `URL "ftp://x": scheme must be http or https`},
		{12, 10, "routes[0].new", `unknown backend "nwe"`},
		{13, 16, "routes[0].serve_new", "101 must be within 0..100"},
		{14, 11, "routes[1].name", `"upload" is also the name of routes[0]`},
		{16, 5, "routes[1].ramp", "needs a new backend"},
		{16, 23, "routes[1].ramp.steps[1]", "1 must be greater than the step before it (5)"},
		{16, 23, "routes[1].ramp.steps[1]", "the last step is 1: it must be 100"},
		{16, 33, "routes[1].ramp.hold", `invalid duration "1 minute"`},
	}
	got := problemsOf(t, doc)
	for i, w := range want {
		if i >= len(got) {
			t.Errorf("missing %d:%d %s: %s", w.line, w.col, w.path, w.msg)
			continue
		}
		g := got[i]
		if g.Line != w.line || g.Column != w.col || g.Path != w.path || !strings.Contains(g.Msg, w.msg) {
			t.Errorf("problem %d = %v\n           want %d:%d: %s: %s", i, g, w.line, w.col, w.path, w.msg)
		}
	}
	for _, g := range got[min(len(got), len(want)):] {
		t.Errorf("unexpected %v", g)
	}
	if len(got) > 0 && got[0].Suggestion != "limits" {
		t.Errorf("limtis: suggestion %q, want limits", got[0].Suggestion)
	}
	if len(got) > 4 && got[4].Suggestion != "new" {
		t.Errorf("backend nwe: suggestion %q, want new", got[4].Suggestion)
	}
}

// A near-miss key gets the valid key it most likely meant, among those
// valid at its place; a key near nothing gets none.
func TestUnknownKeySuggestion(t *testing.T) {
	cases := []struct{ why, doc, want string }{
		{"one letter dropped", "limits: {shadow_concurency: 4}\n", "shadow_concurrency"},
		{"case differs", "Limits: {}\n", "limits"},
		{"two letters swapped", "lmiits: {}\n", "limits"},
		{"keys of that place only: url is a backend key, not a route key", "routes: [{name: r, legacy: l, ulr: x}]\n", ""},
		{"a route key", "routes: [{name: r, legacy: l, serve_neww: 1}]\n", "serve_new"},
		{"far from every key", "colour: blue\n", ""},
	}
	for _, c := range cases {
		t.Run(c.why, func(t *testing.T) {
			var got *Problem
			for _, p := range problemsOf(t, c.doc) {
				if strings.HasPrefix(p.Msg, "unknown key") {
					got = p
				}
			}
			if got == nil {
				t.Fatalf("no unknown-key problem")
			}
			if got.Suggestion != c.want {
				t.Errorf("suggestion %q, want %q (%v)", got.Suggestion, c.want, got)
			}
		})
	}
}

// Syntax errors are placed at the mistake, not at the enclosing block
// where yaml.v3 puts them.
func TestSyntaxErrorPosition(t *testing.T) {
	head := "backends:\n  legacy: {url: \"http://a:1\"}\nroutes:\n  - name: r\n    legacy: legacy\n"
	cases := []struct {
		why, doc  string
		line, col int
		msg       string
	}{
		{"unclosed [ in a block", head + "    match:\n      methods: [GET, POST\n      path_prefix: /x\n", 7, 16, "unclosed `[` opened at 7:16: no `]`"},
		{"} closing a [", head + "    match: {methods: [GET, POST}\n", 6, 22, "unclosed `[` opened at 6:22: found `}` at 6:32"},
		{"unclosed { at the top", "limits: {max_body: 1GiB\nbackends: {}\n", 1, 9, "unclosed `{`"},
		{"stray ]", "listen: [a, b]]\n", 1, 15, "`]` at 1:15 closes nothing"},
		{"unclosed quote", head + "    new: \"legacy\n", 6, 10, "unclosed `\"` opened at 6:10"},
		{"over-indented key", "limits:\n  max_body: 1\n   spool_disk: 2\n", 3, 4, "mapping values are not allowed in this context (indented more than line 2, whose key has its value already)"},
		{"a colon missing on the line above", "backends:\n  legacy:\n    url http://a:1\n    timeout: 3s\n", 4, 12, "(is the `:` after the key on line 3 missing?)"},
		{"two colons", "listen: a: b\n", 1, 10, "mapping values are not allowed"},
		{"tab indentation", "limits:\n\tmax_body: 1\n", 2, 1, "a tab: indent with spaces"},
		{"bad indentation under a list", "routes:\n  - name: r\n legacy: x\n", 3, 2, "did not find expected"},
		{"unknown alias", "limits: {max_body: 1}\nclient: *nope\n", 2, 9, "unknown anchor"},
		{"brackets in quotes and comments do not count", "listen: \"[x\" # [y\nlimits: [\n", 2, 9, "unclosed `[` opened at 2:9"},
		{"a [ inside a plain scalar does not count", "data_dir: a[b\nlimits: {\n", 2, 9, "unclosed `{` opened at 2:9"},
		{"block scalars do not count", "data_dir: |\n  [ not a list\nlimits: {\n", 3, 9, "unclosed `{` opened at 3:9"},
	}
	for _, c := range cases {
		t.Run(c.why, func(t *testing.T) {
			ps := problemsOf(t, c.doc)
			if len(ps) != 1 {
				t.Fatalf("want 1 problem, got %v", ps)
			}
			p := ps[0]
			if p.Line != c.line || p.Column != c.col || !strings.Contains(p.Msg, c.msg) {
				t.Errorf("got %v\nwant %d:%d: …%s…", p, c.line, c.col, c.msg)
			}
		})
	}
}

// A value that cannot be read is reported once, not again by the checks
// that then see its default.
func TestFailedValueIsReportedOnce(t *testing.T) {
	ps := problemsOf(t, "backends: 5\nroutes: [{name: r, legacy: legacy}]\n")
	if len(ps) != 1 || ps[0].Path != "backends" || !strings.Contains(ps[0].Msg, "want a mapping") || ps[0].Line != 1 || ps[0].Column != 11 {
		t.Errorf("got %v, want only 1:11 backends: want a mapping", ps)
	}
	ps = problemsOf(t, "backends: {legacy: 5}\nroutes: [{name: r, legacy: legacy}]\n")
	if len(ps) != 1 || ps[0].Path != "backends.legacy" {
		t.Errorf("got %v, want only backends.legacy", ps)
	}
}

// Merge keys and aliases decode as yaml.v3 decodes them; an explicit key
// overrides a merged one without being a duplicate.
func TestMergeKeys(t *testing.T) {
	c, errs := Parse([]byte(`x-backend: &b {timeout: 3s, max_conns: 7}
backends:
  legacy: {<<: *b, url: "http://a:1", max_conns: 9}
routes: [{name: r, legacy: legacy}]
`))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `unknown key "x-backend"`) {
		t.Fatalf("errs %v, want only the unknown x-backend", errs)
	}
	_ = c
	c, errs = Parse([]byte(`backends:
  legacy: &b {url: "http://a:1", timeout: 3s, max_conns: 7}
  other: &o {url: "http://c:1", timeout: 4s, max_conns: 8}
  new: {<<: [*b, *o], url: "http://b:1", max_conns: 9}
routes: [{name: r, legacy: legacy, new: new}]
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	n := c.Backends["new"]
	if n.URL != "http://b:1" || n.Timeout.D() != 3*time.Second || n.MaxConns != 9 || n.Breaker.ConsecutiveFailures != 5 {
		t.Errorf("merged backend %+v", *n)
	}
}

// Aliases that expand to an enormous document are refused, not decoded:
// 2000 uses of a route whose methods are 1000 aliases would decode 2e6
// nodes.
func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("m: &m [" + strings.Repeat("GET, ", 999) + "GET]\n")
	b.WriteString("r: &r {name: r, legacy: l, match: {methods: *m}}\n")
	b.WriteString("routes: [" + strings.Repeat("*r, ", 1999) + "*r]\n")
	ps := problemsOf(t, b.String())
	var found *Problem
	for _, p := range ps {
		if strings.Contains(p.Msg, "expands aliases to more than") {
			found = p
		}
	}
	if found == nil {
		t.Fatalf("no expansion problem among %d", len(ps))
	}
}

// On valid documents the field-by-field decoder fills the Config exactly as
// yaml.v3's own Decode does (defaults, nulls, aliases, merge keys).
func TestDecodeAgreesWithYAMLv3(t *testing.T) {
	example, err := os.ReadFile("../tandem.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{
		"example": string(example),
		"nulls and empty blocks": `limits:
client: {}
backends:
  legacy: {url: "http://a:1", urls: ~}
routes:
  - name: r
    legacy: legacy
    match: {methods: ~}
    ramp: ~
`,
		"aliases and merges": `backends:
  legacy: &b {url: "http://a:1", timeout: 3s, breaker: {open_for: 1m}}
  new: {<<: *b, url: "http://b:1"}
routes:
  - &r {name: r, legacy: legacy, new: new, mirror: 50, ramp: {steps: [10, 100]}}
  - {<<: *r, name: s, match: {path_prefix: /s, methods: [GET]}}
`,
	}
	for why, doc := range docs {
		t.Run(why, func(t *testing.T) {
			got, errs := Parse([]byte(doc))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			want := Default()
			if err := yaml.Unmarshal([]byte(doc), want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse differs from yaml.v3 (-yaml.v3 +Parse):\n%s", diff)
			}
		})
	}
}

// A Problem prints the parts it has, position first.
func TestProblemError(t *testing.T) {
	cases := []struct {
		p    Problem
		want string
	}{
		{Problem{Line: 3, Column: 5, Path: "limts", Msg: `unknown key "limts"`, Suggestion: "limits"}, "3:5: limts: unknown key \"limts\"; did you mean `limits`?"},
		{Problem{Line: 3, Msg: "did not find expected key"}, "3: did not find expected key"}, // a syntax error placed at a line only
		{Problem{Msg: "cannot read config: no such file"}, "cannot read config: no such file"},
	}
	for _, c := range cases {
		if got := c.p.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}
