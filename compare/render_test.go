package compare

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// renderCases are results covering each outcome and awkward values.
var renderCases = []struct {
	name string
	r    Result
}{
	{"match", Result{Outcome: OutcomeMatch}},
	{"mismatch", Result{Outcome: OutcomeMismatch, Diffs: []Difference{
		{Kind: KindStatus, Path: "$.status", Legacy: "200", New: "500"},
		{Kind: KindHeader, Path: "$.header.Cache-Control", Legacy: "max-age=60", New: missing, Noise: true},
		{Kind: KindJSON, Path: "$.items[3].width", Legacy: "800", New: "801"},
		{Kind: KindImage, Path: "$.image.psnr", Legacy: "30.00 dB min", New: "22.41 dB"},
		{Kind: KindBody, Path: "$.body", Legacy: "sha256:0123456789ab… size:12", New: "sha256:ba9876543210… size:13; line 3 of 4: \"x\""},
	}}},
	{"noise", Result{Outcome: OutcomeNoise, Diffs: []Difference{
		{Kind: KindJSON, Path: "$.processed_at", Legacy: `"2024-05-01T10:00:00Z"`, New: `"2024-05-01T10:00:03Z"`, Noise: true},
	}}},
	{"error", Result{Outcome: OutcomeError, Diffs: []Difference{
		{Kind: KindStatus, Path: "$.error", Legacy: "status 200", New: "error: dial tcp 127.0.0.1:9002: connect: connection refused"},
	}}},
	{"awkward values", Result{Outcome: OutcomeMismatch, Diffs: []Difference{
		{Kind: KindHeader, Path: "$.header.X-Empty", Legacy: "", New: "tab\there"},
		{Kind: KindJSON, Path: `$["odd key"]`, Legacy: "line\nbreak", New: "\x00"},
	}}},
}

func TestRenderText(t *testing.T) {
	var b strings.Builder
	for _, tc := range renderCases {
		b.WriteString("== " + tc.name + "\n")
		b.WriteString(tc.r.Text())
	}
	golden(t, "text.golden", b.String())
}

func TestRenderJSON(t *testing.T) {
	var b strings.Builder
	for _, tc := range renderCases {
		out, err := json.MarshalIndent(tc.r, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("== " + tc.name + "\n")
		b.Write(out)
		b.WriteString("\n")
	}
	golden(t, "json.golden", b.String())
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (go test -run %s -update rewrites it):\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}
