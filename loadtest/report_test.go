package loadtest

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestJSONOutputDecodes: the JSON report decodes, with every documented
// field and durations in seconds.
func TestJSONOutputDecodes(t *testing.T) {
	b := newBackend(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		time.Sleep(2 * time.Millisecond)
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	res := attack(t, &Targets{URL: b.URL}, Options{Pacer: ConstantPacer{Freq: 500, Per: time.Second}, Requests: 20})
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Mode         string             `json:"mode"`
		TargetRate   float64            `json:"target_rate"`
		Requests     uint64             `json:"requests"`
		Responses    uint64             `json:"responses"`
		Success      uint64             `json:"success"`
		SuccessRatio float64            `json:"success_ratio"`
		ErrorRatio   float64            `json:"error_ratio"`
		Expect       string             `json:"expect"`
		Unexpected   map[string]uint64  `json:"unexpected"`
		Checks       []Check            `json:"thresholds"`
		Pass         *bool              `json:"pass"`
		Missed       *uint64            `json:"missed"`
		Status       map[string]uint64  `json:"status"`
		Errors       map[string]uint64  `json:"errors"`
		BytesOut     uint64             `json:"bytes_out"`
		BytesIn      uint64             `json:"bytes_in"`
		Duration     float64            `json:"duration_seconds"`
		Wait         float64            `json:"wait_seconds"`
		Rate         float64            `json:"rate"`
		Throughput   float64            `json:"throughput"`
		Latency      map[string]float64 `json:"latency_seconds"`
		Workers      int                `json:"workers"`
		MaxWorkers   int                `json:"max_workers"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("cannot decode %s: %v", data, err)
	}
	if got.Mode != "open" || got.TargetRate != 500 || got.Requests != 20 || got.Responses != 20 || got.Success != 19 || got.Missed == nil || got.MaxWorkers != DefaultMaxWorkers {
		t.Errorf("decoded %+v from %s", got, data)
	}
	if got.Status["200"] != 19 || got.Status["503"] != 1 || got.Errors == nil {
		t.Errorf("status %v errors %v", got.Status, got.Errors)
	}
	if got.Expect != "2xx,3xx" || got.Unexpected["503"] != 1 || got.ErrorRatio != 0.05 || got.Checks != nil || got.Pass != nil {
		t.Errorf("expect %q, unexpected %v, error ratio %v, checks %v before Check", got.Expect, got.Unexpected, got.ErrorRatio, got.Checks)
	}
	// After Check: the checks and the verdict.
	res.Check(Thresholds{MaxP99: time.Nanosecond})
	data, _ = json.Marshal(res)
	got.Checks, got.Pass = nil, nil
	if err := json.Unmarshal(data, &got); err != nil || got.Pass == nil || *got.Pass || len(got.Checks) != 2 ||
		got.Checks[0].Name != "success" || !got.Checks[0].Pass || got.Checks[1].Name != "p99" || got.Checks[1].Pass || got.Checks[1].Limit != 1e-9 {
		t.Errorf("after Check: %v %s", err, data)
	}
	for _, k := range []string{"min", "mean", "p50", "p90", "p99", "p99.9", "max"} {
		v, ok := got.Latency[k]
		if !ok || v < 0.002 || v > 1 {
			t.Errorf("latency_seconds.%s = %v (present %v), want about 0.002", k, v, ok)
		}
	}
	// Durations are seconds. (How long the 20 hits took depends on when the
	// first one got out, so it is not asserted here; the pacing tests do.)
	if got.Duration != res.Duration.Seconds() || got.Wait != res.Wait.Seconds() || got.Duration <= 0 || got.Duration > 1 {
		t.Errorf("duration_seconds %v, wait_seconds %v; the run took %v and waited %v", got.Duration, got.Wait, res.Duration, res.Wait)
	}
	if want := 19 / got.Duration; math.Abs(got.Rate-want) > 1e-9*want || got.Throughput <= 0 {
		t.Errorf("rate %v, want %v (19 intervals over duration_seconds); throughput %v", got.Rate, want, got.Throughput)
	}
}

func TestTextReport(t *testing.T) {
	r := &Results{
		Mode: "open", TargetRate: 200, Requests: 1000, Responses: 990, Success: 980, Missed: 3,
		Status:   map[int]uint64{200: 980, 503: 10},
		Errors:   map[string]uint64{ErrTimeout: 10},
		BytesOut: 1 << 20, Duration: 5 * time.Second, Rate: 199.8, Throughput: 195.9,
		Latency: Latency{P50: 1500 * time.Microsecond, P99: 120 * time.Millisecond, Max: 2 * time.Second},
		Workers: 12, MaxWorkers: 12,
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"open loop at 200.00/s, 12 workers (max 12)",
		"1000 sent, 990 answered, 98.00% success, 3 missed",
		"199.80/s offered",
		"1.0 MiB out",
		"p50 1.50 ms", "p99 120 ms", "p99.9", "max 2.00 s",
		"200: 980  503: 10",
		"timeout: 10",
		"Warning",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Thresholds") || strings.Contains(out, "Result") {
		t.Errorf("thresholds shown before Check:\n%s", out)
	}

	// After Check: the expected statuses, the unexpected ones, each check
	// with its verdict, value and limit, and the result.
	r.Expect, r.Unexpected = "2xx,3xx", map[int]uint64{503: 10}
	maxErr := 0.01
	r.Check(Thresholds{MaxErrorRate: &maxErr, MaxP99: 100 * time.Millisecond})
	buf.Reset()
	r.WriteText(&buf)
	out = buf.String()
	for _, want := range []string{
		"200: 980  503: 10  (expected: 2xx,3xx)",
		"Unexpected  503: 10",
		"Thresholds  pass  980 of 1000 hits got an expected answer (2xx,3xx)",
		"            FAIL  error rate 2.00% > max 1.00% (20 of 1000 hits failed)",
		"            FAIL  p99 latency 120 ms > max 100 ms",
		"Result      FAIL",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if got, want := r.Failures(), "error rate 2.00% > max 1.00% (20 of 1000 hits failed); p99 latency 120 ms > max 100 ms"; got != want {
		t.Errorf("failures %q, want %q", got, want)
	}
}
