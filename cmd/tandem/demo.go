package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/app"
	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/internal/samples"
	"github.com/tandem-proxy/tandem/loadtest"
	"github.com/tandem-proxy/tandem/store"
)

// demoConfig is the embedded configuration of `tandem demo`. %s are the
// data dir and the three sample services.
const demoConfig = `# tandem demo: a thumbnail service being rewritten
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: %q
backends:
  legacy:  {url: %q, timeout: 10s}
  legacy2: {url: %q, timeout: 10s}   # a second legacy instance: differences it shows are noise
  new:     {url: %q, timeout: 10s}
routes:
  - name: thumbnail                  # answers the thumbnail itself: compared as pictures
    match: {path_prefix: /thumbnail, methods: [POST]}
    legacy: legacy
    secondary: legacy2
    new: new
    mirror: 100
    sticky: header:X-User-Id
    compare: {noise_min_samples: 15}
  - name: upload                     # answers JSON about the thumbnail
    match: {path_prefix: /upload, methods: [POST]}
    legacy: legacy
    secondary: legacy2
    new: new
    mirror: 100
    sticky: header:X-User-Id
    compare:
      # the hash and size of a re-encoded thumbnail always differ between two
      # resamplers; the thumbnail route compares the pictures themselves
      ignore_json: ["$.sha256", "$.bytes"]
      noise_min_samples: 15
`

// demoEnv is what a client verb in another terminal needs to reach the
// demo's instance: its admin address and token.
type demoEnv struct{ admin, token string }

func demoEnvOf(run *app.Instance) demoEnv {
	return demoEnv{admin: "http://" + run.AdminAddr(), token: run.Token()}
}

// pasteLine is one shell line that points the client verbs in another
// terminal at the demo: the environment variables they read. TANDEM_ADMIN
// wins over a -config's admin.listen; TANDEM_ADMIN_TOKEN is the token when
// no config names a token_file. The values are a URL and hex, so they need
// no quoting.
func pasteLine(e demoEnv) string {
	return fmt.Sprintf("export %s=%s %s=%s", AdminEnv, e.admin, admin.TokenEnv, e.token)
}

// demoTry is what to run after pasteLine.
const demoTry = "then: tandem status -watch, tandem report, tandem promote upload 10 (in a source checkout: go run ./cmd/tandem status -watch, ...)"

// demoSummary is what `tandem demo -json` prints at the end.
type demoSummary struct {
	Reports     []store.RouteReport `json:"reports"`
	Regressions []demoPath          `json:"regressions"`
	Noise       []demoPath          `json:"noise"`
	Matched     map[string]int64    `json:"matched"`
	Promote     demoSplit           `json:"promote"`
	Rollback    demoSplit           `json:"rollback"`
	UI          string              `json:"ui"`
	// Env is the line to paste into another terminal (pasteLine), and Log
	// the demo's log file.
	Env   string `json:"env"`
	Log   string `json:"log"`
	Admin string `json:"admin"`
	Proxy string `json:"proxy"`
}

type demoPath struct {
	Route string  `json:"route"`
	Kind  string  `json:"kind"`
	Path  string  `json:"path"`
	Count int64   `json:"count"`
	Rate  float64 `json:"rate"`
}

type demoSplit struct {
	Percent     float64 `json:"serve_new"`
	Requests    int64   `json:"requests"`
	ServedByNew int64   `json:"served_by_new"`
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", "demo [-duration 0] [-no-load] [-data DIR] [-rate 20] [-json]", stderr)
	duration := fs.Duration("duration", 0, "stop by itself after this long (0: run until Ctrl-C)")
	noLoad := fs.Bool("no-load", false, "start everything but send no traffic")
	dataDir := fs.String("data", "", "data directory (default: a temporary one, removed at exit)")
	rate := fs.Int("rate", 20, "uploads per second per route while the story runs")
	load := fs.Duration("load", 20*time.Second, "how long the shadow phase sends traffic")
	asJSON := fs.Bool("json", false, "print a JSON summary at the end instead of the story")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	start := time.Now()
	out := stdout
	if *asJSON {
		out = io.Discard
	}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }

	dir := *dataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "tandem-demo-")
		if err != nil {
			return fail1(stderr, "demo", err)
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil { // it holds the token and mirrored uploads
		return fail1(stderr, "demo", fmt.Errorf("cannot create -data %s: %w", dir, unwrapPathError(err)))
	}
	var svcs []*samples.Server
	defer func() {
		for _, s := range svcs {
			s.Close()
		}
	}()
	for _, f := range []samples.Flavour{samples.Legacy, samples.Legacy, samples.New} {
		s, err := samples.Listen("127.0.0.1:0", f)
		if err != nil {
			return fail1(stderr, "demo", err)
		}
		svcs = append(svcs, s)
	}
	cfgText := fmt.Sprintf(demoConfig, filepath.Join(dir, "data"), svcs[0].URL(), svcs[1].URL(), svcs[2].URL())
	cfgPath := filepath.Join(dir, "tandem.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return fail1(stderr, "demo", err)
	}
	cfg, errs := config.Load(cfgPath)
	if len(errs) > 0 {
		return fail1(stderr, "demo", fmt.Errorf("embedded config: %v", errs))
	}

	// tandem itself, in this process; its log goes to a file in the data dir.
	logPath := filepath.Join(dir, "tandem.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fail1(stderr, "demo", err)
	}
	defer logFile.Close()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	run, err := app.Open(cfg, app.Options{ConfigPath: cfgPath, Logger: slog.New(slog.NewTextHandler(logFile, nil))})
	if err != nil {
		return fail1(stderr, "demo", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- run.Run(ctx) }()
	var stopErr error
	var stopOnce sync.Once
	stopServe := func() error {
		stopOnce.Do(func() {
			cancel()
			stopErr = <-served
			if cerr := run.Close(); stopErr == nil {
				stopErr = cerr
			}
		})
		return stopErr
	}
	defer stopServe() // on an early return too
	api := &apiClient{base: "http://" + run.AdminAddr(), token: run.Token(), hc: newHTTPClient()}
	ui := fmt.Sprintf("http://%s/ui/", run.AdminAddr())

	say("tandem demo: a thumbnail service is being rewritten.")
	say("  legacy  %s (Catmull-Rom thumbnails)", svcs[0].URL())
	say("  legacy2 %s (a second legacy instance, to learn what is noise)", svcs[1].URL())
	say("  new     %s (bilinear thumbnails; ignores EXIF orientation; flattens transparency)", svcs[2].URL())
	say("  tandem  http://%s  (admin http://%s)", run.Addr(), run.AdminAddr())
	say("  log     %s", logPath)
	if *dataDir == "" {
		say("  data    %s (temporary: removed at exit; keep it with -data DIR)", dir)
	} else {
		say("  data    %s", dir)
	}
	say("")
	say("To follow along from another terminal, paste this line there:")
	say("  %s", pasteLine(demoEnvOf(run)))
	say("  %s", demoTry)
	say("")

	sum := demoSummary{UI: ui, Admin: "http://" + run.AdminAddr(), Proxy: "http://" + run.Addr(), Matched: map[string]int64{},
		Env: pasteLine(demoEnvOf(run)), Log: logPath}
	if !*noLoad {
		corpus := samples.Corpus(samples.CorpusOptions{Seed: 1})
		var bodies []loadtest.Body
		for _, it := range corpus {
			bodies = append(bodies, loadtest.Body{Name: it.Name, ContentType: it.ContentType, Data: it.Body})
		}
		say("1. Shadow: every upload is served by legacy and mirrored to new (and legacy2).")
		if err := demoLoad(run.Addr(), bodies, *rate, *load, out); err != nil {
			return fail1(stderr, "demo", err)
		}
		// Let the last shadows finish and the counters reach the store.
		time.Sleep(1500 * time.Millisecond)
		var rep struct{ Routes []store.RouteReport }
		if err := api.do("GET", "/api/v1/report", nil, &rep); err != nil {
			return fail1(stderr, "demo", err)
		}
		sum.Reports = rep.Routes
		for _, r := range rep.Routes {
			sum.Matched[r.Route] = r.Matched
			for _, d := range r.Diffs {
				p := demoPath{Route: r.Route, Kind: string(d.Kind), Path: d.Path, Count: d.Count, Rate: d.Rate}
				if d.Noise {
					sum.Noise = append(sum.Noise, p)
				} else {
					sum.Regressions = append(sum.Regressions, p)
				}
			}
		}
		say("")
		say("2. The report (tandem report):")
		renderReport(out, rep.Routes, 8)
		say("")
		say("   Harmless resampling differences compared equal: %d thumbnails matched as pictures (PSNR and colour shift within limits) although their bytes differ.", sum.Matched["thumbnail"])
		say("   (Noise is applied when numbers are read: the first comparisons, made before the noise below was learned, count as noise too.)")
		say("   Learned as noise from legacy vs legacy2 (not regressions): %s", pathList(sum.Noise))
		say("   Real regressions, by name: %s", pathList(sum.Regressions))

		say("")
		say("3. Promote: serve 10%% of users from new (tandem promote upload 10).")
		for _, route := range []string{"thumbnail", "upload"} {
			if err := api.do("POST", "/api/v1/routes/"+route+"/promote", map[string]any{"percent": 10, "reason": "demo: canary"}, nil); err != nil {
				return fail1(stderr, "demo", err)
			}
		}
		sum.Promote, err = demoSplitLoad(run, bodies, 10, out)
		if err != nil {
			return fail1(stderr, "demo", err)
		}
		say("   %d of %d requests were served by new (%.1f%%), each user always by the same side.",
			sum.Promote.ServedByNew, sum.Promote.Requests, pct(sum.Promote.ServedByNew, sum.Promote.Requests))

		say("")
		say("4. Roll back (tandem rollback upload): new serves nothing again, at once.")
		for _, route := range []string{"thumbnail", "upload"} {
			if err := api.do("POST", "/api/v1/routes/"+route+"/rollback", map[string]any{"reason": "demo: regressions found"}, nil); err != nil {
				return fail1(stderr, "demo", err)
			}
		}
		sum.Rollback, err = demoSplitLoad(run, bodies, 0, out)
		if err != nil {
			return fail1(stderr, "demo", err)
		}
		say("   %d of %d requests were served by new.", sum.Rollback.ServedByNew, sum.Rollback.Requests)
	}
	say("")
	say("Open the UI: %s  (token: %s)", ui, run.Token())
	say("Or ask the API: curl -H 'Authorization: Bearer %s' http://%s/api/v1/report", run.Token(), run.AdminAddr())
	say("Or the CLI, from another terminal:")
	say("  %s", pasteLine(demoEnvOf(run)))
	say("  %s", demoTry)

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(sum)
	}
	if *duration > 0 {
		if left := *duration - time.Since(start); left > 0 {
			select {
			case <-time.After(left):
			case <-sigs:
			}
		}
	} else {
		say("tandem keeps running; press Ctrl-C to stop.")
		<-sigs
	}
	if err := stopServe(); err != nil {
		return fail1(stderr, "demo", err)
	}
	return 0
}

// demoLoad sends paced uploads to both routes for d, with a progress line.
func demoLoad(addr string, bodies []loadtest.Body, rate int, d time.Duration, out io.Writer) error {
	var attackers []*loadtest.Attacker
	for _, route := range []string{"thumbnail", "upload"} {
		a, err := loadtest.NewAttacker(&loadtest.Targets{
			Method: "POST", URL: "http://" + addr + "/" + route, Bodies: bodies,
			UserHeader: "X-User-Id", Users: 500,
		}, loadtest.Options{Pacer: loadtest.ConstantPacer{Freq: uint64(rate), Per: time.Second}, Duration: d, Timeout: 10 * time.Second})
		if err != nil {
			return err
		}
		attackers = append(attackers, a)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(attackers))
	for i, a := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.Run(context.Background())
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	tty := isTerminal(out)
	for {
		select {
		case <-done:
			if tty {
				fmt.Fprint(out, "\r\033[K")
			}
			for _, err := range errs {
				if err != nil {
					return err
				}
			}
			return nil
		case <-tick.C:
			if !tty {
				continue
			}
			var sent uint64
			var el time.Duration
			for _, a := range attackers {
				p := a.Progress()
				sent += p.Sent
				el = max(el, p.Elapsed)
			}
			n := int(30 * el / d)
			fmt.Fprintf(out, "\r   [%-30s] %4.0fs/%.0fs  %d uploads", strings.Repeat("=", min(n, 30)), el.Seconds(), d.Seconds(), sent)
		}
	}
}

// demoSplitLoad sends 400 uploads from 400 different users and counts who
// served them, from tandem's own counters.
func demoSplitLoad(run *app.Instance, bodies []loadtest.Body, percent float64, out io.Writer) (demoSplit, error) {
	before := run.Proxy().Counters()["upload"]
	a, err := loadtest.NewAttacker(&loadtest.Targets{
		Method: "POST", URL: "http://" + run.Addr() + "/upload", Bodies: bodies,
		UserHeader: "X-User-Id", Users: 400,
	}, loadtest.Options{Concurrency: 8, Requests: 400, Timeout: 10 * time.Second})
	if err != nil {
		return demoSplit{}, err
	}
	if _, err := a.Run(context.Background()); err != nil {
		return demoSplit{}, err
	}
	after := run.Proxy().Counters()["upload"]
	return demoSplit{
		Percent:     percent,
		Requests:    after.Requests() - before.Requests(),
		ServedByNew: after.ServedNew - before.ServedNew,
	}, nil
}

func pathList(ps []demoPath) string {
	if len(ps) == 0 {
		return "none"
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Route != ps[j].Route {
			return ps[i].Route < ps[j].Route
		}
		return ps[i].Path < ps[j].Path
	})
	var b []string
	for _, p := range ps {
		b = append(b, fmt.Sprintf("%s %s", p.Route, p.Path))
	}
	return strings.Join(b, ", ")
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
