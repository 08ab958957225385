package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/samples"
)

// `tandem loadtest` as a user runs it: the exit status says whether the run
// passed (0), failed a threshold (1) or could not start (2), and a failed
// run says why on one stderr line.

// loadtestRun is one run of the binary.
type loadtestRun struct {
	code           int
	stdout, stderr string
}

// runLoadtestBin runs `tandem loadtest args...`, bounded at 30 s.
func runLoadtestBin(t *testing.T, args ...string) loadtestRun {
	t.Helper()
	cmd := exec.Command(tandemBin, append([]string{"loadtest"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	r := loadtestRun{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("tandem loadtest %v: %v", args, err)
	}
	if r.code < 0 {
		t.Fatalf("tandem loadtest %v was killed after 30 s:\n%s\n%s", args, r.stdout, r.stderr)
	}
	return r
}

func (r loadtestRun) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "stderr:\n" + r.stderr
}

// The sample service answers the corpus's broken files with 400, as
// expect.txt (written by `tandem sample-corpus`) says: the run passes
// with no error allowed. Without expect.txt, or told to expect only 2xx,
// those 400s are failures.
func TestLoadtestExpectedStatuses(t *testing.T) {
	srv, err := samples.Listen("", samples.Legacy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dir := filepath.Join(t.TempDir(), "corpus")
	if out, err := exec.Command(tandemBin, "sample-corpus", "-out", dir).CombinedOutput(); err != nil {
		t.Fatalf("sample-corpus: %v\n%s", err, out)
	}
	files, _ := os.ReadDir(dir)
	n := len(files) - 1                                        // expect.txt is not a body
	count := func(k int) string { return strconv.Itoa(k * n) } // k rounds of the corpus
	url := srv.URL() + "/upload"

	r := runLoadtestBin(t, "-url", url, "-corpus", dir, "-concurrency", "2", "-requests", count(2), "-max-error-rate", "0")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("the sample service answering as expect.txt says: want exit 0 and a quiet stderr\n%s", r)
	}
	for _, want := range []string{"400: ", "200: ", "(expected: 200 for ", ", 400 for ", "100.00% success", "pass  error rate 0.00% ≤ max 0.00%", "Result      PASS"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the report lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Unexpected") {
		t.Errorf("expected 400s listed as unexpected:\n%s", r.stdout)
	}

	// -expect-status overrides expect.txt: the 400s now fail.
	r = runLoadtestBin(t, "-url", url, "-corpus", dir, "-concurrency", "2", "-requests", count(1), "-expect-status", "2xx", "-max-error-rate", "1%")
	if r.code != 1 || !strings.Contains(r.stderr, "FAIL: error rate ") || !strings.Contains(r.stderr, "> max 1.00%") ||
		strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stdout, "Unexpected  400: ") {
		t.Errorf("-expect-status 2xx over a corpus with broken files: want exit 1, one stderr line with the error rate\n%s", r)
	}
	// Without expect.txt the default is 2xx,3xx for every file.
	if err := os.Remove(filepath.Join(dir, "expect.txt")); err != nil {
		t.Fatal(err)
	}
	r = runLoadtestBin(t, "-url", url, "-corpus", dir, "-concurrency", "2", "-requests", count(1), "-max-error-rate", "0", "-json")
	var js struct {
		Expect string `json:"expect"`
		Pass   *bool  `json:"pass"`
		Checks []struct {
			Name  string  `json:"name"`
			Value float64 `json:"value"`
			Limit float64 `json:"limit"`
			Pass  bool    `json:"pass"`
		} `json:"thresholds"`
		Unexpected map[string]uint64 `json:"unexpected"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil {
		t.Fatalf("-json: %v\n%s", err, r)
	}
	if r.code != 1 || js.Pass == nil || *js.Pass || js.Expect != "2xx,3xx" || js.Unexpected["400"] == 0 ||
		len(js.Checks) != 2 || js.Checks[1].Name != "error_rate" || js.Checks[1].Pass || js.Checks[1].Value <= 0 || js.Checks[1].Limit != 0 {
		t.Errorf("no expect.txt: want exit 1 and the failed error_rate check in the JSON\n%s", r)
	}
}

// A target that fails every other request fails -max-error-rate 1%, and
// the one stderr line gives the value and the limit; with 60% allowed the
// same target passes.
func TestLoadtestErrorRateThreshold(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	r := runLoadtestBin(t, "-url", srv.URL, "-concurrency", "1", "-requests", "40", "-max-error-rate", "1%")
	want := "tandem loadtest: FAIL: error rate 50.00% > max 1.00% (20 of 40 hits failed)\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("half failing: want exit 1 and stderr %q\n%s", want, r)
	}
	if !strings.Contains(r.stdout, "FAIL  error rate 50.00% > max 1.00%") || !strings.Contains(r.stdout, "Result      FAIL") ||
		!strings.Contains(r.stdout, "Unexpected  500: 20") {
		t.Errorf("the report does not show the failed threshold:\n%s", r.stdout)
	}
	r = runLoadtestBin(t, "-url", srv.URL, "-concurrency", "1", "-requests", "40", "-max-error-rate", "0.6")
	if r.code != 0 {
		t.Errorf("half failing with 60%% allowed: want exit 0\n%s", r)
	}
}

// A slow target fails -max-p99 and passes a limit above its latency.
func TestLoadtestMaxP99(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(60 * time.Millisecond)
	}))
	t.Cleanup(srv.Close)
	r := runLoadtestBin(t, "-url", srv.URL, "-rate", "50", "-duration", "400ms", "-max-p99", "20ms")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "tandem loadtest: FAIL: p99 latency ") || !strings.Contains(r.stderr, "> max 20.0 ms") {
		t.Errorf("60 ms answers against -max-p99 20ms: want exit 1 and the p99 on stderr\n%s", r)
	}
	r = runLoadtestBin(t, "-url", srv.URL, "-rate", "50", "-duration", "400ms", "-max-p99", "10s")
	if r.code != 0 || !strings.Contains(r.stdout, "pass  p99 latency ") {
		t.Errorf("60 ms answers against -max-p99 10s: want exit 0\n%s", r)
	}
}

// 0% success fails without any threshold: a target that answers only 503,
// and one that refuses connections. Bad flags are exit 2.
func TestLoadtestNoSuccessFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	r := runLoadtestBin(t, "-url", srv.URL, "-concurrency", "1", "-requests", "5")
	if r.code != 1 || !strings.Contains(r.stderr, "FAIL: no hit got an expected answer (2xx,3xx): 5 sent") {
		t.Errorf("only 503s: want exit 1\n%s", r)
	}
	// 503 expected: the same target passes.
	if r := runLoadtestBin(t, "-url", srv.URL, "-concurrency", "1", "-requests", "5", "-expect-status", "503"); r.code != 0 {
		t.Errorf("only 503s, 503 expected: want exit 0\n%s", r)
	}
	refused := "http://" + freeAddr(t) + "/"
	if r := runLoadtestBin(t, "-url", refused, "-concurrency", "1", "-requests", "3"); r.code != 1 || !strings.Contains(r.stderr, "no hit got an expected answer") {
		t.Errorf("connection refused: want exit 1\n%s", r)
	}
	for _, args := range [][]string{
		{"-url", srv.URL, "-concurrency", "1", "-expect-status", "2x"},
		{"-url", srv.URL, "-concurrency", "1", "-max-error-rate", "150%"},
		{"-url", srv.URL, "-concurrency", "1", "-max-p99", "-1s"},
		{"-url", srv.URL, "-concurrency", "1", "-corpus", filepath.Join(t.TempDir(), "missing")},
	} {
		if r := runLoadtestBin(t, args...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: want exit 2 with a message\n%s", args, r)
		}
	}
}
