package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/realservers"
)

// keepAliveConf is a static server for the corpus plus an upload location
// proxied to the echo upstream, with the keep-alive behaviour under test
// (KeepAlive: nginx directives at server level) and uploads over 64 KiB
// refused with 413, which nginx answers from the request's headers, before
// it reads the body.
const keepAliveConf = `
    server {
        listen {{.Listen}};
        {{.KeepAlive}}
        location / { root {{.Corpus}}; }
        location /upload {
            client_max_body_size 64k;
            proxy_pass http://{{.Echo}};
        }
    }`

func get(name string) request {
	return request{name: "GET " + name, method: "GET", target: "/" + name}
}

func post(name string, size int) request {
	return request{name: fmt.Sprintf("POST %s (%d bytes)", name, size), method: "POST", target: "/upload/" + name,
		ctype: "application/octet-stream", body: bytes.Repeat([]byte{'x'}, size)}
}

// TestWireRealPeers runs short sequences through tandem against nginx set
// up to close kept-alive connections in each of the ways real servers do,
// with the same nginx configuration as legacy and as new, and against a
// server that answers HTTP/1.0: every answer must be the server's own,
// nginx must have logged each request exactly once on each side (nothing
// added, nothing lost), every shadow compared, and the retry counter must
// be zero where the server announced every close (Connection: close) and
// no more than the connections it closed otherwise.
func TestWireRealPeers(t *testing.T) {
	files := loadCorpus(t)
	gets := func(n int) []request {
		var out []request
		for i := 0; i < n; i++ {
			out = append(out, get(files[i%len(files)].name))
		}
		return out
	}
	idle := func() []request {
		// Gaps longer than nginx's 1 s keepalive_timeout: nginx closes
		// the idle connections (tandem's to legacy and to new) without a
		// word.
		reqs := gets(7)
		reqs[3].gap = 1500 * time.Millisecond
		reqs[5].gap = 1500 * time.Millisecond
		return reqs
	}()
	for _, tc := range []struct {
		name      string
		keepAlive string
		reqs      []request
		announced bool // the server says Connection: close before every close
	}{
		{"keepalive_requests 3", "keepalive_requests 3;", gets(10), true},
		{"keepalive_timeout 1s, idle gaps", "keepalive_timeout 1s;", idle, false},
		{"Connection: close on every answer", "keepalive_timeout 0;", gets(8), true},
		{"413 before the body is read", "", []request{
			get("small.jpg"), post("big", 4<<20), get("medium.png"), post("small", 512),
			get("tiny.gif"), post("big-again", 1<<20), post("small-again", 100), get("small.png"),
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"KeepAlive": tc.keepAlive, "Corpus": corpusDir(t), "Echo": realservers.Echo(t)}
			legacy := realservers.StartNginx(t, keepAliveConf, vars)
			newSide := realservers.StartNginx(t, keepAliveConf, vars)
			direct, dc := run(t, legacy.Addr, tc.reqs)
			t.Logf("directly: statuses %v; %d connections (%d announced closes, %d found closed on reuse)",
				statuses(direct), dc.dials, dc.announce, dc.dead)
			before := len(legacy.Access(t, len(tc.reqs)))
			tn := startTandem(t, legacy.URL(), newSide.URL())
			proxied, pc := run(t, tn.addr, tc.reqs)
			t.Logf("through tandem: statuses %v; %d connections (%d announced closes, %d found closed on reuse)",
				statuses(proxied), pc.dials, pc.announce, pc.dead)
			sameAnswers(t, tc.reqs, direct, proxied)
			m := tn.awaitCompared(t, len(tc.reqs))
			for _, side := range []struct {
				backend string
				n       *realservers.Nginx
				skip    int
			}{{"legacy", legacy, before}, {"new", newSide, 0}} {
				got := side.n.Access(t, side.skip+len(tc.reqs))[side.skip:]
				if len(got) != len(tc.reqs) {
					t.Errorf("%s nginx logged %d requests from tandem, want %d (each once): %+v", side.backend, len(got), len(tc.reqs), got)
				}
				conns := distinctConns(got)
				retries := checkRetries(t, m, side.backend, conns)
				if tc.announced && retries != 0 {
					t.Errorf("%v retries to %s, want 0: nginx announced every close with Connection: close", retries, side.backend)
				}
				t.Logf("%s: %d requests on %d connections, %v retries", side.backend, len(got), conns, retries)
			}
			if errs, _ := sum(m, "tandem_backend_errors_total", `route="media"`); errs != 0 {
				t.Errorf("%v backend errors counted, want 0 (the server answered everything):\n%s", errs, series(m, "tandem_backend_errors_total"))
			}
		})
	}
}

// TestWireHTTP10Peer is the same against Python's http.server, which
// answers every request with an HTTP/1.0 status line and closes the
// connection after it (legacy and new alike).
func TestWireHTTP10Peer(t *testing.T) {
	files := loadCorpus(t)
	var reqs []request
	for i := 0; i < 8; i++ {
		reqs = append(reqs, get(files[i].name))
	}
	reqs = append(reqs, get("no-such-file.png"))
	legacy := realservers.PythonHTTP10(t, corpusDir(t))
	newSide := realservers.PythonHTTP10(t, corpusDir(t))
	direct, dc := run(t, legacy.Addr, reqs)
	t.Logf("directly: statuses %v; %d connections (%d announced closes)", statuses(direct), dc.dials, dc.announce)
	if dc.announce != len(reqs) {
		t.Fatalf("python's http.server closed after %d of %d answers, want all (HTTP/1.0)", dc.announce, len(reqs))
	}
	tn := startTandem(t, legacy.URL(), newSide.URL())
	proxied, _ := run(t, tn.addr, reqs)
	sameAnswers(t, reqs, direct, proxied)
	m := tn.awaitCompared(t, len(reqs))
	for _, side := range []struct {
		backend string
		p       *realservers.Process
		want    int
	}{{"legacy", legacy, 2 * len(reqs)}, {"new", newSide, len(reqs)}} {
		if got := strings.Count(side.p.Output(), `"GET /`); got != side.want {
			t.Errorf("%s (python) logged %d requests, want %d", side.backend, got, side.want)
		}
		retries := checkRetries(t, m, side.backend, len(reqs))
		if retries != 0 {
			t.Errorf("%v retries to %s, want 0: every answer was HTTP/1.0 without keep-alive", retries, side.backend)
		}
	}
	if errs, _ := sum(m, "tandem_backend_errors_total", `route="media"`); errs != 0 {
		t.Errorf("%v backend errors counted, want 0:\n%s", errs, series(m, "tandem_backend_errors_total"))
	}
}
