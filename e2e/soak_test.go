//go:build soak

package e2e

// The soak test runs only with -tags soak (make soak): it drives the built
// binary at a steady paced rate for SOAK_DURATION (default 10m) with a shadow
// that resets now and then, samples the process every 10 s and checks that
// nothing grows and that every counter reconciles at the end.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/faultbackend"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
	"github.com/tandem-proxy/tandem/loadtest"
)

// soakSample is one observation of the running tandem process.
type soakSample struct {
	at            time.Duration
	goroutines    float64 // go_goroutines from /metrics
	fds           int     // entries in /proc/PID/fd
	rssKiB        int64   // VmRSS
	legacyConns   int     // ESTABLISHED sockets to legacy's port
	newConns      int     // ESTABLISHED sockets to new's port
	newConnsOpen  int     // as counted by the fault backend
	served, mirrs float64 // requests served, shadow outcomes counted
}

func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv("SOAK_DURATION")
	if s == "" {
		return 10 * time.Minute
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 30*time.Second || d > 25*time.Minute {
		t.Fatalf("SOAK_DURATION=%q: want a duration from 30s to 25m", s)
	}
	return d
}

// sumPrefix sums the samples whose name starts with prefix.
func sumPrefix(m map[string]float64, prefix string) float64 {
	s := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			s += v
		}
	}
	return s
}

// established counts ESTABLISHED TCP sockets whose remote port is port.
func established(t *testing.T, port int) int {
	t.Helper()
	n := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "01" {
				continue
			}
			_, ph, ok := strings.Cut(f[2], ":")
			if p, err := strconv.ParseInt(ph, 16, 32); ok && err == nil && int(p) == port {
				n++
			}
		}
	}
	return n
}

func portOf(t *testing.T, addr string) int {
	i := strings.LastIndexByte(addr, ':')
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func procFDs(t *testing.T, pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("fds: %v", err)
	}
	return len(ents)
}

func vmRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestSoak(t *testing.T) {
	d := soakDuration(t)
	const rate = 50 // requests per second
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	// Every 25th shadow request is reset mid-response: a failing but never
	// breaker-opening shadow (5 consecutive failures are needed).
	newb := faultbackend.Start(t, faultbackend.Mode{Kind: faultbackend.KindResetResponse, Every: 25, N: 10, Body: make([]byte, 512)})
	p := startServe(t, legacy.URL, newb.URL, "")
	pid := p.cmd.Process.Pid
	legacyPort, newPort := portOf(t, legacy.Addr), portOf(t, newb.Addr)

	var bodies []loadtest.Body
	for i, size := range []int{100, 4 << 10, 32 << 10, 200 << 10} {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i + j)
		}
		bodies = append(bodies, loadtest.Body{Name: fmt.Sprint("b", size), ContentType: "application/octet-stream", Data: data})
	}
	att, err := loadtest.NewAttacker(&loadtest.Targets{URL: "http://" + p.s.addr + "/upload", Bodies: bodies},
		loadtest.Options{Pacer: loadtest.ConstantPacer{Freq: rate, Per: time.Second}, Duration: d, Timeout: 10 * time.Second, MaxWorkers: 256})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	defer cancel()
	type result struct {
		r   *loadtest.Results
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() { r, err := att.Run(ctx); done <- result{r, err} }()

	var samples []soakSample
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	var res result
	maxSamples := int(d/(10*time.Second)) + 3
wait:
	for len(samples) < maxSamples {
		select {
		case res = <-done:
			break wait
		case <-tick.C:
			m := scrapeMetrics(t, p.s.admin)
			s := soakSample{
				at:           time.Since(start).Round(time.Second),
				goroutines:   m["go_goroutines"],
				fds:          procFDs(t, pid),
				rssKiB:       vmRSS(t, pid),
				legacyConns:  established(t, legacyPort),
				newConns:     established(t, newPort),
				newConnsOpen: newb.Conns(),
				served:       sumPrefix(m, "tandem_requests_total{"),
				mirrs:        sumPrefix(m, "tandem_shadow_total{"),
			}
			samples = append(samples, s)
			t.Logf("t=%-5v goroutines=%.0f fds=%d rss=%.1fMiB conns legacy=%d new=%d (backend sees %d) served=%.0f shadow=%.0f",
				s.at, s.goroutines, s.fds, float64(s.rssKiB)/1024, s.legacyConns, s.newConns, s.newConnsOpen, s.served, s.mirrs)
		}
	}
	if res.r == nil {
		select {
		case res = <-done:
		case <-time.After(2 * time.Minute):
			t.Fatal("the attack did not finish")
		}
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	r := res.r
	var rep strings.Builder
	r.WriteText(&rep)
	t.Logf("load:\n%s", rep.String())

	// Counters reconcile: every request sent was served and answered 200,
	// and every one has exactly one shadow outcome.
	if r.Missed != 0 {
		t.Errorf("missed %d hits: the offered rate was not held", r.Missed)
	}
	if r.Success != r.Requests || r.Responses != r.Requests {
		t.Errorf("requests %d, responses %d, successes %d (status %v errors %v): want all 200",
			r.Requests, r.Responses, r.Success, r.Status, r.Errors)
	}
	var m map[string]float64
	deadline := time.Now().Add(60 * time.Second)
	for {
		m = scrapeMetrics(t, p.s.admin)
		if sumPrefix(m, "tandem_shadow_total{") >= float64(r.Requests) && m["tandem_shadow_in_flight"] == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	served := sumPrefix(m, "tandem_requests_total{")
	shadows := sumPrefix(m, "tandem_shadow_total{")
	sent := m[`tandem_shadow_total{route="up",outcome="sent"}`]
	errs := m[`tandem_shadow_total{route="up",outcome="error"}`]
	t.Logf("reconcile: requests %d served %.0f shadow outcomes %.0f (sent %.0f error %.0f) legacy got %d new got %d",
		r.Requests, served, shadows, sent, errs, legacy.Count(), newb.Count())
	if served != float64(r.Requests) {
		t.Errorf("served %.0f, want requests %d", served, r.Requests)
	}
	if shadows != float64(r.Requests) {
		t.Errorf("shadow outcomes sum to %.0f, want %d", shadows, r.Requests)
	}
	if int(sent+errs) != newb.Count() {
		t.Errorf("sent+error = %.0f but new recorded %d", sent+errs, newb.Count())
	}
	if legacy.Count() != int(r.Requests) {
		t.Errorf("legacy received %d, want %d", legacy.Count(), r.Requests)
	}
	if errs == 0 {
		t.Errorf("no shadow errors counted, though every 25th shadow was reset")
	}

	// Flat: the last third of the samples against the first third.
	if len(samples) < 3 {
		t.Fatalf("only %d samples", len(samples))
	}
	k := len(samples) / 3
	first, last := samples[:k], samples[len(samples)-k:]
	avg := func(ss []soakSample, f func(soakSample) float64) float64 {
		s := 0.0
		for _, x := range ss {
			s += f(x)
		}
		return s / float64(len(ss))
	}
	checks := []struct {
		name  string
		f     func(soakSample) float64
		slack float64 // absolute allowance on top of 25%
	}{
		{"goroutines", func(s soakSample) float64 { return s.goroutines }, 20},
		{"open fds", func(s soakSample) float64 { return float64(s.fds) }, 20},
		{"RSS KiB", func(s soakSample) float64 { return float64(s.rssKiB) }, 16 << 10},
		{"legacy conns", func(s soakSample) float64 { return float64(s.legacyConns) }, 8},
		{"new conns", func(s soakSample) float64 { return float64(s.newConns) }, 8},
	}
	for _, c := range checks {
		a, b := avg(first, c.f), avg(last, c.f)
		t.Logf("%-12s first third %.1f, last third %.1f", c.name, a, b)
		if b > a*1.25+c.slack {
			t.Errorf("%s grew: first third %.1f, last third %.1f", c.name, a, b)
		}
	}
}
