package loadtest

import (
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStatusSet(t *testing.T) {
	tests := []struct {
		in       string
		has, not []int
		why      string
	}{
		{"200", []int{200}, []int{199, 201, 400}, "one code"},
		{"2xx", []int{200, 250, 299}, []int{199, 300}, "a class"},
		{"2XX,400", []int{204, 400}, []int{401, 302}, "a class in capitals and a code"},
		{"200-204, 404", []int{200, 202, 204, 404}, []int{205, 199}, "an inclusive range, spaces"},
		{"5xx", []int{500, 599}, []int{600, 499}, "error class"},
	}
	for _, tt := range tests {
		s, err := ParseStatusSet(tt.in)
		if err != nil {
			t.Errorf("%s: %q: %v", tt.why, tt.in, err)
			continue
		}
		for _, c := range tt.has {
			if !s.Has(c) {
				t.Errorf("%s: %q does not hold %d", tt.why, tt.in, c)
			}
		}
		for _, c := range tt.not {
			if s.Has(c) {
				t.Errorf("%s: %q holds %d", tt.why, tt.in, c)
			}
		}
	}
	for _, bad := range []string{"", ",", "ok", "99", "1000", "0xx", "2x", "300-200", "200-", "-5"} {
		if _, err := ParseStatusSet(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if !DefaultExpect.Has(200) || !DefaultExpect.Has(399) || DefaultExpect.Has(400) || DefaultExpect.Has(199) {
		t.Errorf("DefaultExpect %v is not 200 to 399", DefaultExpect)
	}
}

func TestParseExpectFile(t *testing.T) {
	rules, err := parseExpectFile("expect.txt", []byte("# comment\n\nbroken-* 400 # refused\nbig.jpg 413,400\n* 2xx\n"))
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"broken-empty.jpg": "400", "big.jpg": "413,400", "photo.jpg": "2xx"} {
		if got := matchExpect(rules, file).String(); got != want {
			t.Errorf("%s: %q, want %q (first match wins)", file, got, want)
		}
	}
	for _, bad := range []string{"broken-*\n", "a b c\n", "[ 400\n", "x 4000\n"} {
		if _, err := parseExpectFile("expect.txt", []byte("* 200\n"+bad)); err == nil || !strings.Contains(err.Error(), "expect.txt:2") {
			t.Errorf("%q: error %v, want one naming expect.txt:2", bad, err)
		}
	}
}

// A corpus's expect.txt sets each body's expectation and is not sent.
func TestLoadCorpusExpect(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"ok.jpg": "x", "broken-a.jpg": "", ExpectFile: "broken-* 400\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bodies, err := LoadCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 2 || bodies[0].Name != "broken-a.jpg" || bodies[1].Name != "ok.jpg" {
		t.Fatalf("bodies %+v, want broken-a.jpg and ok.jpg", bodies)
	}
	if !bodies[0].Expect.Has(400) || bodies[0].Expect.Has(200) || !bodies[1].Expect.IsZero() {
		t.Errorf("expectations %v and %v, want 400 and none", bodies[0].Expect, bodies[1].Expect)
	}
	os.WriteFile(filepath.Join(dir, ExpectFile), []byte("broken-* fourhundred\n"), 0o644)
	if _, err := LoadCorpus(dir); err == nil {
		t.Error("a bad expect.txt: no error")
	}
}

// A body's expected 400 is a success, an unexpected one is a failure, and
// both are counted per status.
func TestExpectedStatusCounts(t *testing.T) {
	b := newBackend(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	bad, _ := ParseStatusSet("400")
	tg := &Targets{URL: b.URL, Method: "POST", Bodies: []Body{{Name: "ok", Data: []byte("x")}, {Name: "empty", Expect: bad}}}
	res := attack(t, tg, Options{Concurrency: 1, Requests: 10})
	if res.Success != 10 || res.Status[200] != 5 || res.Status[400] != 5 || len(res.Unexpected) != 0 {
		t.Errorf("success %d, status %v, unexpected %v; want all 10 as expected", res.Success, res.Status, res.Unexpected)
	}
	if res.Expect != "2xx,3xx for 1 body, 400 for 1 body" && res.Expect != "400 for 1 body, 2xx,3xx for 1 body" {
		t.Errorf("expect %q", res.Expect)
	}
	// Told to expect only 200: the 400s fail.
	only200, _ := ParseStatusSet("200")
	tg.Bodies[1].Expect = StatusSet{}
	res = attack(t, tg, Options{Concurrency: 1, Requests: 10, Expect: only200})
	if res.Success != 5 || res.Unexpected[400] != 5 || res.Expect != "200" {
		t.Errorf("success %d, unexpected %v, expect %q; want 5 and five 400s", res.Success, res.Unexpected, res.Expect)
	}
	if got := res.ErrorRatio(); got != 0.5 {
		t.Errorf("error ratio %v, want 0.5", got)
	}
}

func TestCheck(t *testing.T) {
	pct := func(f float64) *float64 { return &f }
	base := Results{Requests: 100, Success: 90, Expect: "2xx,3xx", Throughput: 50, Latency: Latency{P99: 200 * time.Millisecond}}
	tests := []struct {
		why    string
		r      Results
		th     Thresholds
		pass   bool
		failed string // substring of Failures
	}{
		{"no thresholds, some success", base, Thresholds{}, true, ""},
		{"no success at all fails whatever the thresholds", Results{Requests: 5, Expect: "2xx,3xx"}, Thresholds{}, false, "no hit got an expected answer"},
		{"nothing sent fails", Results{}, Thresholds{}, false, "no hit was sent"},
		{"10% errors within 10%", base, Thresholds{MaxErrorRate: pct(0.10)}, true, ""},
		{"10% errors above 5%", base, Thresholds{MaxErrorRate: pct(0.05)}, false, "error rate 10.00% > max 5.00%"},
		{"zero errors allowed", base, Thresholds{MaxErrorRate: pct(0)}, false, "error rate 10.00% > max 0.00%"},
		{"p99 within", base, Thresholds{MaxP99: 200 * time.Millisecond}, true, ""},
		{"p99 above", base, Thresholds{MaxP99: 100 * time.Millisecond}, false, "p99 latency 200 ms > max 100 ms"},
		{"rps below", base, Thresholds{MinRPS: 60}, false, "successful rate 50.00/s < min 60.00/s"},
		{"rps at", base, Thresholds{MinRPS: 50}, true, ""},
	}
	for _, tt := range tests {
		r := tt.r
		if got := r.Check(tt.th); got != tt.pass || got != r.Passed() {
			t.Errorf("%s: pass %v, want %v (%+v)", tt.why, got, tt.pass, r.Checks)
		}
		if f := r.Failures(); (tt.failed == "") != (f == "") || !strings.Contains(f, tt.failed) {
			t.Errorf("%s: failures %q, want %q", tt.why, f, tt.failed)
		}
	}
}

func TestParseRatio(t *testing.T) {
	for in, want := range map[string]float64{"0.01": 0.01, "1%": 0.01, " 50 % ": 0.5, "0": 0, "100%": 1} {
		if got, err := ParseRatio(in); err != nil || math.Abs(got-want) > 1e-12 {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "1.5", "-1%", "101%", "NaN"} {
		if _, err := ParseRatio(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
