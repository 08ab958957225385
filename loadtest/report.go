package loadtest

import (
	"encoding/json"
	"fmt"
	"github.com/tandem-proxy/tandem/internal/latencyfmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
)

// WriteText writes r as a short human-readable report.
func (r *Results) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := fmt.Sprintf("closed loop, %d workers", r.MaxWorkers)
	if r.Mode == "open" {
		mode = fmt.Sprintf("open loop, %d workers (max %d)", r.Workers, r.MaxWorkers)
		if r.TargetRate > 0 {
			mode = fmt.Sprintf("open loop at %s/s, %d workers (max %d)", formatFloat(r.TargetRate), r.Workers, r.MaxWorkers)
		}
	}
	fmt.Fprintf(tw, "Mode\t%s\n", mode)
	fmt.Fprintf(tw, "Requests\t%d sent, %d answered, %.2f%% success", r.Requests, r.Responses, 100*r.SuccessRatio())
	if r.Missed > 0 {
		fmt.Fprintf(tw, ", %d missed", r.Missed)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "Rate\t%s/s offered, %s/s successful\n", formatFloat(r.Rate), formatFloat(r.Throughput))
	fmt.Fprintf(tw, "Duration\t%s sending, %s waiting\n", round(r.Duration), round(r.Wait))
	fmt.Fprintf(tw, "Bytes\t%s out, %s in\n", humanize.IBytes(r.BytesOut), humanize.IBytes(r.BytesIn))
	l := r.Latency
	fmt.Fprintf(tw, "Latency\tp50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (min %s, mean %s)\n",
		latencyfmt.Duration(l.P50), latencyfmt.Duration(l.P90), latencyfmt.Duration(l.P99), latencyfmt.Duration(l.P999),
		latencyfmt.Duration(l.Max), latencyfmt.Duration(l.Min), latencyfmt.Duration(l.Mean))
	fmt.Fprintf(tw, "Status\t%s", joinCounts(r.Status))
	if r.Expect != "" {
		fmt.Fprintf(tw, "  (expected: %s)", r.Expect)
	}
	fmt.Fprintln(tw)
	if len(r.Unexpected) > 0 {
		fmt.Fprintf(tw, "Unexpected\t%s\n", joinCounts(r.Unexpected))
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(tw, "Errors\t%s\n", joinCounts(r.Errors))
	}
	if r.Missed > 0 {
		fmt.Fprintf(tw, "Warning\tall %d workers were busy: %d due hits were never sent, so the target rate was not offered\n", r.MaxWorkers, r.Missed)
	}
	for i, c := range r.Checks {
		head := ""
		if i == 0 {
			head = "Thresholds"
		}
		verdict := "pass"
		if !c.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s  %s\n", head, verdict, c.Reason)
	}
	if len(r.Checks) > 0 {
		verdict := "PASS"
		if !r.Passed() {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "Result\t%s\n", verdict)
	}
	return tw.Flush()
}

// joinCounts formats counts as "k: n  k: n" in key order, or "none".
func joinCounts[K int | string](m map[K]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%v: %d", k, m[k])
	}
	return strings.Join(parts, "  ")
}

// round shortens d to about four significant digits for display.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

// jsonResults is the JSON form of Results: durations in seconds, status
// codes as object keys.
type jsonResults struct {
	Mode           string            `json:"mode"`
	TargetRate     float64           `json:"target_rate,omitempty"`
	Requests       uint64            `json:"requests"`
	Responses      uint64            `json:"responses"`
	Success        uint64            `json:"success"`
	SuccessRatio   float64           `json:"success_ratio"`
	ErrorRatio     float64           `json:"error_ratio"`
	Expect         string            `json:"expect"`
	Unexpected     map[string]uint64 `json:"unexpected"`
	Missed         uint64            `json:"missed"`
	Status         map[string]uint64 `json:"status"`
	Errors         map[string]uint64 `json:"errors"`
	BytesOut       uint64            `json:"bytes_out"`
	BytesIn        uint64            `json:"bytes_in"`
	Duration       float64           `json:"duration_seconds"`
	Wait           float64           `json:"wait_seconds"`
	Rate           float64           `json:"rate"`
	Throughput     float64           `json:"throughput"`
	LatencySeconds jsonLatency       `json:"latency_seconds"`
	Workers        int               `json:"workers"`
	MaxWorkers     int               `json:"max_workers"`
	Checks         []Check           `json:"thresholds,omitempty"`
	Pass           *bool             `json:"pass,omitempty"`
}

type jsonLatency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// MarshalJSON encodes r with durations in seconds (latency_seconds.p50,
// duration_seconds, …) and rates in hits per second; after Check, with
// "thresholds" (each check) and "pass".
func (r *Results) MarshalJSON() ([]byte, error) {
	byCode := func(m map[int]uint64) map[string]uint64 {
		out := make(map[string]uint64, len(m))
		for k, v := range m {
			out[strconv.Itoa(k)] = v
		}
		return out
	}
	var pass *bool
	if r.Checks != nil {
		p := r.Passed()
		pass = &p
	}
	errs := r.Errors
	if errs == nil {
		errs = map[string]uint64{}
	}
	l := r.Latency
	return json.Marshal(jsonResults{
		Mode:         r.Mode,
		TargetRate:   r.TargetRate,
		Requests:     r.Requests,
		Responses:    r.Responses,
		Success:      r.Success,
		SuccessRatio: r.SuccessRatio(),
		ErrorRatio:   r.ErrorRatio(),
		Expect:       r.Expect,
		Unexpected:   byCode(r.Unexpected),
		Missed:       r.Missed,
		Status:       byCode(r.Status),
		Errors:       errs,
		BytesOut:     r.BytesOut,
		BytesIn:      r.BytesIn,
		Duration:     r.Duration.Seconds(),
		Wait:         r.Wait.Seconds(),
		Rate:         r.Rate,
		Throughput:   r.Throughput,
		LatencySeconds: jsonLatency{
			Min: l.Min.Seconds(), Mean: l.Mean.Seconds(), P50: l.P50.Seconds(), P90: l.P90.Seconds(),
			P99: l.P99.Seconds(), P999: l.P999.Seconds(), Max: l.Max.Seconds(),
		},
		Workers:    r.Workers,
		MaxWorkers: r.MaxWorkers,
		Checks:     r.Checks,
		Pass:       pass,
	})
}
