package rules

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseRules(t *testing.T) {
	cases := []struct {
		why  string
		doc  string
		want []string // substrings of the joined errors; empty: valid
	}{
		{"the GET shape with a reason for the audit log",
			`{"version": 3, "reason": "more users", "routes": [{"name": "r", "legacy": "a", "new": "b", "serve_new": 5}]}`, nil},
		{"YAML works too", "version: 1\nroutes:\n  - {name: r, legacy: a}\n", nil},
		{"an empty route list is explicit", `{"version": 1, "routes": []}`, nil},
		{"unknown key, with its line", "{\"version\": 1,\n \"routes\": [{\"name\": \"r\", \"legacy\": \"a\",\n \"serve_neww\": 5}]}",
			[]string{`line 3: routes[0].serve_neww: unknown key "serve_neww"`}},
		{"routes missing", `{"version": 1}`, []string{"routes: required"}},
		{"wrong type", `{"version": "x", "routes": []}`, []string{"line 1"}},
		{"semantic errors name their lines", "routes:\n  - name: r\n    legacy: a\n    serve_new: 101\n",
			[]string{"line 4: routes[0].serve_new: 101 must be within 0..100", "has no new backend"}},
		{"ramp must end at 100", "routes:\n  - {name: r, legacy: a, new: b, ramp: {steps: [1, 50]}}\n",
			[]string{"routes[0].ramp.steps[1]: the last step is 50: it must be 100"}},
		{"NaN and infinity are not rates", "routes:\n  - {name: r, legacy: a, new: b, ramp: {max_diff_rate: .nan, max_error_rate: .inf, max_latency_ratio: .nan}}\n",
			[]string{"max_diff_rate: NaN must be within 0..1", "max_error_rate: +Inf must be within 0..1", "max_latency_ratio: NaN must be a number greater than 0"}},
		{"negative version", `{"version": -1, "routes": []}`, []string{"version: must not be negative"}},
		{"not a mapping", `[1, 2]`, []string{"cannot unmarshal"}},
		{"empty", ``, []string{"empty document"}},
		{"syntax error", `{"routes": [`, []string{"line"}},
	}
	for _, tc := range cases {
		t.Run(tc.why, func(t *testing.T) {
			_, errs := ParseRules([]byte(tc.doc))
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			joined := strings.Join(msgs, "\n")
			if len(tc.want) == 0 && len(errs) > 0 {
				t.Fatalf("unexpected errors:\n%s", joined)
			}
			if len(tc.want) > 0 && len(errs) == 0 {
				t.Fatal("no errors")
			}
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("errors lack %q:\n%s", w, joined)
				}
			}
		})
	}
}

// Keys left out of a route take the documented defaults.
func TestParseRulesDefaults(t *testing.T) {
	r, errs := ParseRules([]byte(`{"routes": [{"name": "r", "legacy": "a", "new": "b", "ramp": {"hold": "1m"}}]}`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	rt := r.Routes[0]
	want := DefaultRamp()
	want.Hold = Duration(60e9)
	if rt.Mirror != 100 || rt.Sticky != "none" || rt.Match.PathPrefix != "/" || rt.Ramp == nil || rt.Ramp.MinCompared != want.MinCompared || rt.Ramp.Hold != want.Hold || len(rt.Ramp.Steps) != 5 {
		t.Errorf("defaults not applied: %+v %+v", rt, rt.Ramp)
	}
}

// The JSON rules document never panics the decoder or the validator, and a
// document that parses survives encoding and parsing again.
func FuzzParseRules(f *testing.F) {
	f.Add([]byte(`{"version": 3, "routes": [{"name": "images", "match": {"path_prefix": "/upload", "methods": ["POST", "PUT"]}, "legacy": "legacy", "new": "new", "serve_new": 5, "mirror": 100, "sticky": "header:X-User-Id", "compare": {"ignore_headers": ["Date"], "ignore_json": ["$.id"], "image_min_psnr": 30}, "ramp": {"steps": [1, 5, 25, 50, 100], "hold": "10m0s", "min_compared": 500, "max_diff_rate": 0.005, "max_error_rate": 0.001, "max_latency_ratio": 1.25}}]}`))
	f.Add([]byte(`{"version": 1, "routes": [], "reason": "empty"}`))
	f.Add([]byte("routes:\n  - {name: r, legacy: a, serve_new: 12.345}\n"))
	f.Add([]byte(`{"routes": [{"name": "r", "legacy": "a", "ramp": {"steps": [50, 1], "hold": "x"}}]}`))
	f.Add([]byte(`{"routes": [{"sticky": "cookie:", "serve_new": -1e308}]}`))
	f.Add([]byte("routes: [{name: r, legacy: a, new: b, serve_new: .nan, ramp: {max_latency_ratio: .inf}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, errs := ParseRules(data)
		if len(errs) > 0 {
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("a parsed document does not encode: %v", err)
		}
		if _, errs := ParseRules(b); len(errs) > 0 {
			t.Fatalf("re-parsing %s: %v", b, errs)
		}
	})
}
