package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tandem-proxy/tandem/loadtest"
)

const loadtestSynopsis = "loadtest -url URL (-rate N[/DUR] | -concurrency N) [-duration 10s] [-requests N]\n" +
	"       [-method M] [-corpus DIR | -sizes 1KiB,64KiB] [-user-header X-User-Id -users 1000]\n" +
	"       [-header 'K: V' ...] [-max-workers N] [-timeout 30s] [-json]\n" +
	"       [-expect-status 2xx,3xx] [-max-error-rate 1%] [-max-p99 250ms] [-min-rps N]\n\n" +
	"Exit status: 0 when every threshold passed, 1 when one failed (always when no\n" +
	"hit got an expected answer), 2 on a usage or setup error."

// Exit codes of tandem loadtest.
const (
	loadtestPass   = 0 // every threshold passed
	loadtestFailed = 1 // a threshold failed, or no hit got an expected answer
	loadtestSetup  = 2 // bad flags, unreadable corpus, bad URL: nothing was judged
)

// runLoadtest is the thin CLI over package loadtest: it turns flags into
// Targets, Options and Thresholds, runs the attack (Ctrl-C stops it early
// and still reports; a second Ctrl-C kills), draws a progress line on
// stderr when stderr is a terminal, prints the results on stdout, and
// exits 1 with the failed thresholds on one stderr line when one failed.
func runLoadtest(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("loadtest", loadtestSynopsis, stderr)
	target := fs.String("url", "", "target `URL` (required), e.g. http://127.0.0.1:8080/upload")
	rate := fs.String("rate", "", "open loop: hits per second, or N/DURATION such as 30/1m; exclusive with -concurrency")
	concurrency := fs.Int("concurrency", 0, "closed loop: `N` workers each sending back to back; exclusive with -rate")
	maxWorkers := fs.Int("max-workers", loadtest.DefaultMaxWorkers, "open loop: most workers (one connection each) added when all are busy")
	duration := fs.Duration("duration", 10*time.Second, "how long to send; 0 means until -requests are sent or the run is interrupted")
	requests := fs.Uint64("requests", 0, "stop after `N` hits; 0 means no limit")
	method := fs.String("method", "", "request method (default POST with bodies, GET without)")
	corpus := fs.String("corpus", "", "send the files of `DIR` as bodies, round-robin (read once, held in memory)")
	sizes := fs.String("sizes", "", "send synthetic bodies of these `SIZES`, round-robin, e.g. 1KiB,64KiB,1MiB")
	userHeader := fs.String("user-header", "", "send a sticky user id in header `NAME`, e.g. X-User-Id (with -users)")
	users := fs.Int("users", 0, "draw user ids from a pool of `N` (with -user-header)")
	var headers []string
	fs.Func("header", "add a request header `'Name: value'` (repeatable)", func(s string) error {
		if _, _, err := loadtest.ParseHeader(s); err != nil {
			return err
		}
		headers = append(headers, s)
		return nil
	})
	timeout := fs.Duration("timeout", loadtest.DefaultTimeout, "per-request timeout, from connecting to the end of the response")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	expectStatus := fs.String("expect-status", "", "statuses that count as success, a `LIST` such as 2xx,3xx or 200,400 or 200-204\n"+
		"(default: a corpus's expect.txt per file, else 2xx,3xx); overrides expect.txt")
	var maxErrorRate *float64
	fs.Func("max-error-rate", "fail (exit 1) when more than this share of hits fail, as `F` (0.01) or a percentage (1%)", func(s string) error {
		v, err := loadtest.ParseRatio(s)
		if err != nil {
			return err
		}
		maxErrorRate = &v
		return nil
	})
	maxP99 := fs.Duration("max-p99", 0, "fail (exit 1) when the p99 latency is above this `DURATION`; 0 means no limit")
	minRPS := fs.Float64("min-rps", 0, "fail (exit 1) when fewer than `N` successful responses per second came back; 0 means no limit")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}

	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "tandem loadtest: "+format+"\n", a...)
		return loadtestSetup
	}
	switch {
	case *target == "":
		return usage("-url is required")
	case *rate != "" && *concurrency > 0:
		return usage("-rate (open loop) and -concurrency (closed loop) are exclusive; cap open-loop workers with -max-workers")
	case *rate == "" && *concurrency <= 0:
		return usage("need -rate N (open loop) or -concurrency N (closed loop)")
	case *corpus != "" && *sizes != "":
		return usage("-corpus and -sizes are exclusive")
	case (*userHeader == "") != (*users <= 0):
		return usage("-user-header and -users go together")
	case *duration < 0 || *timeout < 0 || *maxWorkers < 0:
		return usage("-duration, -timeout and -max-workers must not be negative")
	case *maxP99 < 0 || *minRPS < 0:
		return usage("-max-p99 and -min-rps must not be negative")
	}
	var expect loadtest.StatusSet
	if *expectStatus != "" {
		var err error
		if expect, err = loadtest.ParseStatusSet(*expectStatus); err != nil {
			return usage("-expect-status: %v", err)
		}
	}
	setup := func(err error) int {
		fmt.Fprintf(stderr, "tandem loadtest: %v\n", err)
		return loadtestSetup
	}

	t := &loadtest.Targets{Method: strings.ToUpper(*method), URL: *target, UserHeader: *userHeader, Users: *users}
	if len(headers) > 0 {
		t.Header = http.Header{}
		for _, h := range headers {
			k, v, _ := loadtest.ParseHeader(h) // checked when parsed
			t.Header.Add(k, v)
		}
	}
	var err error
	switch {
	case *corpus != "":
		t.Bodies, err = loadtest.LoadCorpus(*corpus)
	case *sizes != "":
		var ns []int64
		if ns, err = loadtest.ParseSizes(*sizes); err == nil {
			t.Bodies, err = loadtest.SyntheticBodies(ns)
		}
	}
	if err != nil {
		return setup(err)
	}
	if !expect.IsZero() {
		for i := range t.Bodies {
			t.Bodies[i].Expect = loadtest.StatusSet{} // the flag overrides expect.txt
		}
	}
	o := loadtest.Options{
		Expect:      expect,
		Concurrency: *concurrency,
		MaxWorkers:  *maxWorkers,
		Duration:    *duration,
		Requests:    *requests,
		Timeout:     *timeout,
	}
	if *rate != "" {
		p, err := loadtest.ParseRate(*rate)
		if err != nil {
			return usage("-rate: %v", err)
		}
		o.Pacer = p
		o.Concurrency = 0
	}
	a, err := loadtest.NewAttacker(t, o)
	if err != nil {
		return setup(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal gets the default behaviour: exit

	stopProgress := func() {}
	if isTerminal(stderr) {
		finished, done := make(chan struct{}), make(chan struct{})
		go drawProgress(stderr, a, o, finished, done)
		stopProgress = func() { close(finished); <-done }
	}
	res, err := a.Run(ctx)
	stopProgress() // erase the line before the report is printed
	if err != nil {
		return setup(err)
	}
	pass := res.Check(loadtest.Thresholds{MaxErrorRate: maxErrorRate, MaxP99: *maxP99, MinRPS: *minRPS})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		fmt.Fprintf(stdout, "%-12s%s %s%s\n", "Target", methodOf(t), t.URL, describeBodies(t))
		err = res.WriteText(stdout)
	}
	if err != nil {
		return setup(err)
	}
	if !pass {
		fmt.Fprintf(stderr, "tandem loadtest: FAIL: %s\n", res.Failures())
		return loadtestFailed
	}
	return loadtestPass
}

func methodOf(t *loadtest.Targets) string {
	switch {
	case t.Method != "":
		return t.Method
	case len(t.Bodies) > 0:
		return http.MethodPost
	}
	return http.MethodGet
}

func describeBodies(t *loadtest.Targets) string {
	var parts []string
	if n := len(t.Bodies); n > 0 {
		parts = append(parts, fmt.Sprintf("%d bodies", n))
		if n == 1 {
			parts[len(parts)-1] = "1 body"
		}
	}
	if t.Users > 0 {
		parts = append(parts, fmt.Sprintf("%d users in %s", t.Users, t.UserHeader))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// isTerminal reports whether w is a character device such as a terminal,
// so that a progress line is drawn only where someone is watching.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// drawProgress redraws one status line on w every 200 ms until finished
// is closed, then erases it and closes done.
func drawProgress(w io.Writer, a *loadtest.Attacker, o loadtest.Options, finished <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			fmt.Fprint(w, "\r\x1b[K")
			return
		case <-tick.C:
		}
		p := a.Progress()
		frac := -1.0
		switch {
		case o.Duration > 0:
			frac = p.Elapsed.Seconds() / o.Duration.Seconds()
		case o.Requests > 0:
			frac = float64(p.Sent) / float64(o.Requests)
		}
		bar := ""
		if frac >= 0 {
			const width = 20
			n := min(int(frac*width), width)
			bar = "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] "
		}
		rate := 0.0
		if s := p.Elapsed.Seconds(); s > 0 {
			rate = float64(p.Sent) / s
		}
		fmt.Fprintf(w, "\r\x1b[K%s%s  %d sent (%.0f/s)  %d done  %d failed  %d in flight  %d workers",
			bar, p.Elapsed.Truncate(100*time.Millisecond), p.Sent, rate, p.Done, p.Failed, p.Sent-p.Done, p.Workers)
	}
}
