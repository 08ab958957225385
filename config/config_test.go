package config

import (
	"os"
	"strings"
	"testing"
	"time"
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
		{"unknown top-level key", "lisen: x\n", []string{`line 1: lisen: unknown key "lisen"`}},
		{"unknown nested key names its line", "backends:\n  legacy:\n    url: http://a:1\n    timeot: 3s\n", []string{`line 4: backends.legacy.timeot: unknown key`}},
		{"bad size", "limits: {max_body: huge}\n", []string{"line 1:", `invalid size "huge"`}},
		{"bad duration", "client: {idle_timeout: forever}\n", []string{"line 1:", `invalid duration "forever"`}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", []string{"line 2:"}},
		{"underscores_in_headers is a boolean", "client:\n  underscores_in_headers: drop\n", []string{"line 2:", "drop"}},
		{"syntax error", "routes: [\n", []string{"line"}},
		{"comparisons kept for no time", "retention:\n  comparisons: 0s\n", []string{"line 2: retention.comparisons: must be greater than 0"}},
		{"comparisons kept for negative time", "retention: {comparisons: -1h}\n", []string{"line 1: retention.comparisons: must be greater than 0"}},
		{"comparisons retention is a duration", "retention: {comparisons: a day}\n", []string{"line 1:", `invalid duration "a day"`}},
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
			"line 5: routes[0].mirror: 100.001 must be within 0..100",
			`line 6: routes[1].name: "r" is also the name of routes[0]`,
			`line 7: routes[1].legacy: unknown backend "nope"`,
			`line 8: routes[1].match.path_prefix: "upload" must start with /`,
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
			"line 6: routes[0].compare: image_min_ssim: must be in (0, 1], got 1.2",
			"line 6: routes[0].compare: image_max_delta_e: must not be negative, got -1",
			"line 6: routes[0].compare: image_max_mean_shift: must not be negative, got -2 (0 means off)",
		}},
		{"image measure misspelt", `backends: {legacy: {url: "http://a:1"}}
routes:
  - name: r
    legacy: legacy
    compare: {image_min_sim: 0.9}
`, []string{`routes[0].compare.image_min_sim: unknown key`}},
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
		})
	}
}

func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../tandem.example.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("routes: [{name: r, legacy: a, ramp: {steps: [1, 100]}}]\n"))
	f.Add([]byte("limits: {max_body: 1GiB}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, errs := Parse(b)
		if len(errs) == 0 && c == nil {
			t.Fatal("no config and no errors")
		}
	})
}
