package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// vmHWM returns a process's peak resident set size in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// 16 concurrent 64 MiB uploads, all mirrored, keep the proxy under 128 MiB
// peak RSS: memory does not grow with upload size.
func TestMemoryBoundedLargeUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GiB through the proxy")
	}
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	p := startServe(t, legacy.URL, newb.URL, "")
	const n, size = 16, 64 << 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("POST", "http://"+p.s.addr+"/upload", tb.PatternReader(int64(i), size))
			req.ContentLength = size
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("status %d", resp.StatusCode)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if !newb.WaitCount(n, 60*time.Second) {
		t.Fatalf("only %d of %d shadows arrived", newb.Count(), n)
	}
	for _, r := range newb.Received() {
		if r.BodySize != size || !r.Complete {
			t.Fatalf("shadow got %d bytes complete=%v", r.BodySize, r.Complete)
		}
	}
	hwm := vmHWM(t, p.cmd.Process.Pid)
	t.Logf("peak RSS of tandem: %.1f MiB", float64(hwm)/(1<<20))
	if hwm > 128<<20 {
		t.Fatalf("peak RSS %d MiB, want under 128 MiB", hwm>>20)
	}
}

// SIGTERM under load: every request that reached legacy is answered, and
// the process exits 0.
func TestSIGTERMUnderLoadLosesNothing(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash, Delay: 300 * time.Millisecond})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash, Delay: 100 * time.Millisecond})
	p := startServe(t, legacy.URL, newb.URL, "")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	var (
		mu       sync.Mutex
		answered = map[string]bool{}
		wg       sync.WaitGroup
	)
	stopAt := time.Now().Add(1500 * time.Millisecond)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; time.Now().Before(stopAt) && i < 100; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				req, _ := http.NewRequest("POST", "http://"+p.s.addr+"/upload", strings.NewReader(id))
				req.Header.Set("X-Request-Id", id)
				resp, err := client.Do(req)
				if err != nil {
					time.Sleep(10 * time.Millisecond) // refused after shutdown began
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					answered[id] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(700 * time.Millisecond)
	p.stop() // SIGTERM; requires exit 0 and a clean stop in the log
	wg.Wait()
	got := legacy.Received()
	if len(got) == 0 || len(answered) == 0 {
		t.Fatalf("no load: legacy %d answered %d", len(got), len(answered))
	}
	for _, r := range got {
		if r.Complete && !answered[r.RequestID] {
			t.Errorf("request %s reached legacy but its client got no answer", r.RequestID)
		}
	}
	t.Logf("legacy received %d, clients answered %d", len(got), len(answered))
}
