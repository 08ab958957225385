package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gaugeValue reads one series from the instance's /metrics; ok is false
// when it is absent.
func gaugeValue(t *testing.T, in *Instance, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + in.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f, true
		}
	}
	return 0, false
}

// apiDiffRate is route's diff_rate in GET /api/v1/report, and its compared.
func apiDiffRate(t *testing.T, in *Instance, route string) (float64, int64) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+in.AdminAddr()+"/api/v1/report?route="+route, nil)
	req.Header.Set("Authorization", "Bearer "+in.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep struct {
		Routes []struct {
			Route    string  `json:"route"`
			Compared int64   `json:"compared"`
			DiffRate float64 `json:"diff_rate"`
		} `json:"routes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET report: %d %v", resp.StatusCode, err)
	}
	for _, r := range rep.Routes {
		if r.Route == route {
			return r.DiffRate, r.Compared
		}
	}
	return 0, 0
}

// tandem_report_diff_rate{route} is exported from start-up (0 before any
// comparison), refreshed by its job, and equals GET /api/v1/report's
// diff_rate — also after a mark changes what the report reads: marking the
// only differing path brings both to 0 for the comparisons made before.
func TestReportDiffRateGauge(t *testing.T) {
	backend := func(side string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if strings.HasPrefix(r.URL.Path, "/diff/") {
				fmt.Fprintf(w, `{"x": %q}`, side)
				return
			}
			fmt.Fprint(w, `{"x": "same"}`)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	cfg, _ := loadConfig(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
backends:
  legacy: {url: %q}
  new: {url: %q}
routes:
  - {name: up, match: {path_prefix: /}, legacy: legacy, new: new, mirror: 100}
  - {name: idle, match: {path_prefix: /idle}, legacy: legacy, new: new, mirror: 100}
`, backend("legacy"), backend("new")))
	in, err := Open(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() { cancel(); <-done }()

	up, idle := `tandem_report_diff_rate{route="up"}`, `tandem_report_diff_rate{route="idle"}`
	for _, s := range []string{up, idle} {
		if v, ok := gaugeValue(t, in, s); !ok || v != 0 {
			t.Fatalf("before any traffic: %s = %v (present %v), want 0", s, v, ok)
		}
	}

	const diffs, same = 3, 5
	for i := 0; i < diffs+same; i++ {
		p := fmt.Sprintf("/same/%d", i)
		if i < diffs {
			p = fmt.Sprintf("/diff/%d", i)
		}
		resp, err := http.Get("http://" + in.Addr() + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// The job refreshes the gauge on its own within its interval once the
	// store has the comparisons.
	deadline := time.Now().Add(diffRateEvery + 5*time.Second)
	for {
		rate, compared := apiDiffRate(t, in, "up")
		v, _ := gaugeValue(t, in, up)
		if compared == diffs+same && v == rate {
			if rate != float64(diffs)/(diffs+same) {
				t.Fatalf("report diff rate %v, want %d/%d", rate, diffs, diffs+same)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gauge %v, report %v over %d compared: the job did not catch up in %v", v, rate, compared, diffRateEvery+5*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, _ := gaugeValue(t, in, idle); v != 0 {
		t.Errorf("%s = %v, want 0", idle, v)
	}
	// GET /api/v1/routes carries the same report numbers next to the
	// proxy's record-time ones.
	for _, rs := range in.rates.fill(routeStatus(in.state, in.px, in.ctl)) {
		if rs.Name == "up" && (rs.ReportDiffRate != float64(diffs)/(diffs+same) || rs.ReportCompared != diffs+same || rs.DiffRate != rs.ReportDiffRate) {
			t.Errorf("routes view of up: %+v", rs)
		}
	}

	// A mark changes what the report reads; after a refresh the gauge
	// says the same as the report again.
	req, _ := http.NewRequest("POST", "http://"+in.AdminAddr()+"/api/v1/routes/up/noise", strings.NewReader(`{"path": "$.x", "reason": "gauge test"}`))
	req.Header.Set("Authorization", "Bearer "+in.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("mark: %d", resp.StatusCode)
	}
	in.rates.refresh()
	rate, _ := apiDiffRate(t, in, "up")
	if v, _ := gaugeValue(t, in, up); v != rate || rate != 0 {
		t.Errorf("after $.x was marked: gauge %v, report %v; want both 0 (noise applied when read)", v, rate)
	}
}
