package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// dropper is a keep-alive backend that closes each connection, unanswered,
// as its second request arrives: what a server closing an idle connection
// does when the close crosses a request on the wire (the check before reuse
// cannot see a close that has not happened yet). It answers the others with
// the path and the SHA-256 of the body it read.
type dropper struct {
	addr  string
	mu    sync.Mutex
	drops int
}

func startDropper(t *testing.T) *dropper {
	t.Helper()
	d := &dropper{}
	d.addr = serveTCP(t, d.serve)
	return d
}

func (d *dropper) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for n := 1; ; n++ {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		h := sha256.New()
		io.Copy(h, req.Body)
		if n == 2 {
			d.mu.Lock()
			d.drops++
			d.mu.Unlock()
			return
		}
		body := req.URL.Path + " " + hex.EncodeToString(h.Sum(nil))
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}

func (d *dropper) dropped() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.drops
}

// A request a kept-alive connection dropped before any answer byte is sent
// again on another connection when its body can be replayed: no body, a
// body kept whole (in the spool when mirrored, in memory up to
// limits.spool_memory when not), and the backend gets the same bytes. A body
// too large to keep, already sent, cannot be: that request alone gets 502.
// Every retry is counted, with its reason.
func TestRetryDroppedRequest(t *testing.T) {
	type req struct {
		method, path string
		body         []byte
	}
	seq := []req{
		{"GET", "/upload/g1", nil},
		{"POST", "/upload/small", bytes.Repeat([]byte("s"), 1<<10)},
		{"POST", "/upload/medium", bytes.Repeat([]byte("m"), 200<<10)},
		{"GET", "/upload/g2", nil},
		{"POST", "/upload/large", bytes.Repeat([]byte("l"), 3<<20)}, // over spool_memory (1 MiB)
		{"POST", "/upload/after", []byte("after")},
		{"PUT", "/upload/put", bytes.Repeat([]byte("p"), 70<<10)},
	}
	for _, mirrored := range []bool{false, true} {
		name := "pass"
		if mirrored {
			name = "mirrored"
		}
		t.Run(name, func(t *testing.T) {
			legacy, shadow := startDropper(t), startDropper(t)
			yaml := fmt.Sprintf(nginxPassConfig, "")
			urls := map[string]string{"legacy": "http://" + legacy.addr}
			if mirrored {
				yaml = fmt.Sprintf(nginxMirrorConfig, "", "")
				urls["new"] = "http://" + shadow.addr
			}
			f := startProxy(t, yaml, urls)
			failed := 0
			for _, r := range seq {
				hr, _ := http.NewRequest(r.method, f.url+r.path, bytes.NewReader(r.body))
				if r.body == nil {
					hr.Body = nil
				}
				resp, err := f.client.Do(hr)
				if err != nil {
					t.Fatalf("%s %s: %v", r.method, r.path, err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				sum := sha256.Sum256(r.body)
				want := r.path + " " + hex.EncodeToString(sum[:])
				if !mirrored && r.path == "/upload/large" {
					// Sent, dropped, and kept nowhere: the backend's failure.
					failed++
					if resp.StatusCode != 502 || !strings.Contains(string(got), "reset") {
						t.Errorf("%s: %d %q, want 502 (reset)", r.path, resp.StatusCode, got)
					}
					continue
				}
				if resp.StatusCode != 200 || string(got) != want {
					t.Errorf("%s %s: %d %q, want 200 %q", r.method, r.path, resp.StatusCode, got, want)
				}
				f.waitIdle()
			}
			// The first request opens the first connection; each later one
			// is the second on its connection, dropped once, except the one
			// after a failure, which opens a connection again.
			if d := legacy.dropped(); d != len(seq)-1-failed {
				t.Errorf("legacy dropped %d requests, want %d", d, len(seq)-1-failed)
			}
			if got, want := f.metric(retriesMetric("r", "legacy", "reused_closed")), float64(legacy.dropped()-failed); got != want {
				t.Errorf("legacy retries %v, want %v (one per dropped request that could be replayed)", got, want)
			}
			if mirrored {
				f.waitMetric(`tandem_compare_total{route="r",result="match"}`, float64(len(seq)))
				if got, want := f.metric(retriesMetric("r", "new", "reused_closed")), float64(shadow.dropped()); got != want || want != float64(len(seq)-1) {
					t.Errorf("shadow retries %v, shadow drops %v, want both %d", got, want, len(seq)-1)
				}
			}
			if e := f.metric(`tandem_backend_errors_total{route="r",backend="legacy",reason="reset"}`); e != float64(failed) {
				t.Errorf("%v resets charged to legacy, want %d", e, failed)
			}
		})
	}
}
