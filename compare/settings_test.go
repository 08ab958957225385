package compare

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestValidate(t *testing.T) {
	if errs := (Settings{}).Validate(); errs != nil {
		t.Fatalf("zero settings: %v", errs)
	}
	bad := Settings{
		IgnoreHeaders:       []string{"X-Ok", "", "Bad Header"},
		CompareHeaders:      []string{"ETag", "Content-Type"},
		IgnoreJSON:          []string{"$.ok", "$.[", "items", "$..a"},
		JSONNumberTolerance: math.NaN(),
		MaxJSONBytes:        -1,
		MaxJSONDepth:        20000,
		ImageMinPSNR:        -1,
		ImageMinSSIM:        1.5,
		ImageMaxDeltaE:      -0.5,
		ImageMaxMeanShift:   300,
		ImageDimTolerance:   -2,
		MaxImagePixels:      -5,
		NoiseMinSamples:     -1,
		NoiseAbsTolerance:   2,
		NoiseRelTolerance:   math.Inf(1),
	}
	want := []string{
		`ignore_headers[1]: empty header name`,
		`ignore_headers[2]: "Bad Header" is not a valid header name`,
		`compare_headers[1]: "Content-Type" is compared anyway`,
		`ignore_json[1]: bad path "$.[": empty name`,
		`ignore_json[2]: bad path "items": must start with "$"`,
		`ignore_json[3]: bad path "$..a": recursive descent`,
		`json_number_tolerance: must be a finite number`,
		`max_json_bytes: must not be negative, got -1 (0 means 8 MiB)`,
		`max_json_depth: must be at most 10000`,
		`image_min_psnr: must not be negative, got -1 (0 means 30 dB)`,
		`image_min_ssim: must be in (0, 1], got 1.5 (0 means 0.9)`,
		`image_max_delta_e: must not be negative, got -0.5 (0 means 0.6)`,
		`image_max_mean_shift: must be at most 255`,
		`image_dim_tolerance: must not be negative`,
		`max_image_pixels: must not be negative`,
		`noise_min_samples: must not be negative`,
		`noise_abs_tolerance: must be at most 1`,
		`noise_rel_tolerance: must be a finite number`,
	}
	errs := bad.Validate()
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i := range min(len(errs), len(want)) {
		if !strings.HasPrefix(errs[i].Error(), want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, errs[i], want[i])
		}
	}
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "image_min_psnr") {
		t.Errorf("New: got %v, want the joined errors", err)
	}
	res := Compare(resp(200, nil), resp(200, nil), bad)
	if res.Outcome != OutcomeError || !strings.Contains(res.Diffs[0].New, "invalid settings") {
		t.Errorf("Compare with bad settings: %s", res.Text())
	}
}

func TestDefaults(t *testing.T) {
	c, err := New(Settings{})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Settings()
	if s.ImageMinPSNR != 30 || s.ImageMinSSIM != 0.9 || s.ImageMaxDeltaE != 0.6 || s.MaxImagePixels != 50e6 || s.MaxJSONBytes != 8<<20 ||
		s.MaxJSONDepth != 64 || s.NoiseMinSamples != 100 || s.NoiseAbsTolerance != 0.001 || s.NoiseRelTolerance != 0.2 {
		t.Errorf("defaults: %+v", s)
	}
	if s.JSONNumberTolerance != 0 || s.ImageDimTolerance != 0 {
		t.Errorf("exact by default: %+v", s)
	}
	if s.ImageMaxMeanShift != 0 {
		t.Errorf("the per-channel limit is off by default: %+v", s)
	}
}

// TestSettingsTags checks that every field has a snake_case yaml tag and the
// same json name, so the config file and the API agree.
func TestSettingsTags(t *testing.T) {
	typ := reflect.TypeOf(Settings{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		y := f.Tag.Get("yaml")
		j, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if y == "" || y != j || strings.ToLower(y) != y {
			t.Errorf("field %s: yaml %q, json %q", f.Name, y, j)
		}
	}
	doc := `
ignore_headers: [X-Trace]
compare_headers: [ETag]
ignore_json: ["$.processed_at", "$.items[*].id"]
json_number_tolerance: 0.01
max_json_bytes: 1048576
max_json_depth: 32
image_min_psnr: 32
image_min_ssim: 0.95
image_max_delta_e: 1.2
image_max_mean_shift: 2
image_dim_tolerance: 1
max_image_pixels: 1000000
noise_min_samples: 50
noise_abs_tolerance: 0.002
noise_rel_tolerance: 0.1
`
	var s Settings
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		t.Fatal(err)
	}
	want := Settings{
		IgnoreHeaders: []string{"X-Trace"}, CompareHeaders: []string{"ETag"},
		IgnoreJSON: []string{"$.processed_at", "$.items[*].id"}, JSONNumberTolerance: 0.01,
		MaxJSONBytes: 1 << 20, MaxJSONDepth: 32, ImageMinPSNR: 32, ImageMinSSIM: 0.95, ImageMaxDeltaE: 1.2, ImageMaxMeanShift: 2, ImageDimTolerance: 1,
		MaxImagePixels: 1e6, NoiseMinSamples: 50, NoiseAbsTolerance: 0.002, NoiseRelTolerance: 0.1,
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("yaml:\ngot  %+v\nwant %+v", s, want)
	}
	if errs := s.Validate(); errs != nil {
		t.Errorf("valid document: %v", errs)
	}
	b, _ := json.Marshal(s)
	var back Settings
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, s) {
		t.Errorf("json round trip: %s → %+v (%v)", b, back, err)
	}
	if b, _ := json.Marshal(Settings{}); string(b) != "{}" {
		t.Errorf("zero settings marshal to %s, want {}", b)
	}
}

// TestValidateImageMeasures checks the bounds of the image measures' keys
// one at a time.
func TestValidateImageMeasures(t *testing.T) {
	cases := []struct {
		name string
		s    Settings
		want string // error prefix; "" = valid
	}{
		{"ssim 1 is the top", Settings{ImageMinSSIM: 1}, ""},
		{"ssim in range", Settings{ImageMinSSIM: 0.5}, ""},
		{"ssim above 1", Settings{ImageMinSSIM: 1.01}, "image_min_ssim: must be in (0, 1]"},
		{"ssim negative", Settings{ImageMinSSIM: -0.1}, "image_min_ssim: must be in (0, 1]"},
		{"ssim NaN", Settings{ImageMinSSIM: math.NaN()}, "image_min_ssim: must be a finite number"},
		{"delta_e large is allowed", Settings{ImageMaxDeltaE: 100}, ""},
		{"delta_e negative", Settings{ImageMaxDeltaE: -1}, "image_max_delta_e: must not be negative"},
		{"delta_e infinite", Settings{ImageMaxDeltaE: math.Inf(1)}, "image_max_delta_e: must be a finite number"},
		{"mean shift negative", Settings{ImageMaxMeanShift: -1}, "image_max_mean_shift: must not be negative, got -1 (0 means off)"},
	}
	for _, c := range cases {
		errs := c.s.Validate()
		switch {
		case c.want == "" && errs != nil:
			t.Errorf("%s: %v", c.name, errs)
		case c.want != "" && (len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, errs, c.want)
		}
	}
}
