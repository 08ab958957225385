package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tandem-proxy/tandem/internal/realservers"
)

// nginx configurations (the part inside nginx's http block; see
// realservers.StartNginx).
const (
	// imageFilterConf resizes with image_filter: uploads POSTed to
	// /resize are sent to the echo upstream, whose answer is the upload
	// itself, and image_filter works on that answer, so nginx answers an
	// upload with its real behaviour for that file: the resized image, the
	// file itself when it is already small enough, 415 for what it cannot
	// decode. GET /128x128/NAME does the same for the corpus file NAME on
	// disk.
	imageFilterConf = `
    server {
        listen {{.Listen}};
        client_max_body_size 32m;
        location /resize {
            image_filter resize 128 128;
            image_filter_buffer 32M;
            proxy_pass http://{{.Echo}};
        }
        location /128x128/ {
            alias {{.Corpus}}/;
            image_filter resize 128 128;
            image_filter_buffer 32M;
        }
    }`
	// staticConf serves the corpus as files (the origin imageproxy fetches
	// from).
	staticConf = `
    server {
        listen {{.Listen}};
        location / { root {{.Corpus}}; }
    }`
	// proxyConf is a plain reverse proxy in front of one upstream.
	proxyConf = `
    server {
        listen {{.Listen}};
        client_max_body_size 32m;
        location / { proxy_pass http://{{.Upstream}}; }
    }`
)

// upload is the corpus request imaginary and imageFilterConf both answer.
func upload(f corpusFile) request {
	return request{method: "POST", target: "/resize?width=128&height=128", ctype: f.ctype, body: f.data}
}

// fetch is the corpus request imageproxy and imageFilterConf both answer.
func fetch(f corpusFile) request {
	return request{method: "GET", target: "/128x128/" + f.name}
}

type server struct {
	name  string
	start func(t *testing.T) string // returns host:port
}

func nginxImageFilter(t *testing.T) *realservers.Nginx {
	return realservers.StartNginx(t, imageFilterConf, map[string]string{"Echo": realservers.Echo(t), "Corpus": corpusDir(t)})
}

// TestCorpusRealServers sends the corpus three times in a fixed order on one
// kept-alive connection to each real server, then the same through tandem
// with that server as legacy and another as the mirrored new one, and
// requires every answer through tandem to be the server's own, no 502 or
// 504, and every mirrored request compared.
func TestCorpusRealServers(t *testing.T) {
	files := loadCorpus(t)
	uploads := times(3, upload, files)
	fetches := times(3, fetch, files)
	for _, tc := range []struct {
		name   string
		reqs   []request
		legacy func(t *testing.T) (addr string, nginx *realservers.Nginx)
		new    func(t *testing.T) string
	}{
		{"nginx-image_filter/imaginary", uploads,
			func(t *testing.T) (string, *realservers.Nginx) { n := nginxImageFilter(t); return n.Addr, n },
			func(t *testing.T) string { return realservers.Imaginary(t, "").Addr }},
		{"imaginary/nginx-image_filter", uploads,
			func(t *testing.T) (string, *realservers.Nginx) { return realservers.Imaginary(t, "").Addr, nil },
			func(t *testing.T) string { return nginxImageFilter(t).Addr }},
		{"nginx-proxy_pass-imaginary/imaginary", uploads,
			func(t *testing.T) (string, *realservers.Nginx) {
				n := realservers.StartNginx(t, proxyConf, map[string]string{"Upstream": realservers.Imaginary(t, "").Addr})
				return n.Addr, n
			},
			func(t *testing.T) string { return realservers.Imaginary(t, "").Addr }},
		{"imageproxy/nginx-image_filter", fetches,
			func(t *testing.T) (string, *realservers.Nginx) {
				origin := realservers.StartNginx(t, staticConf, map[string]string{"Corpus": corpusDir(t)})
				return realservers.Imageproxy(t, origin.URL()+"/").Addr, nil
			},
			func(t *testing.T) string { return nginxImageFilter(t).Addr }},
		{"nginx-image_filter/imageproxy", fetches,
			func(t *testing.T) (string, *realservers.Nginx) { n := nginxImageFilter(t); return n.Addr, n },
			func(t *testing.T) string {
				origin := realservers.StartNginx(t, staticConf, map[string]string{"Corpus": corpusDir(t)})
				return realservers.Imageproxy(t, origin.URL()+"/").Addr
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			legacy, nginx := tc.legacy(t)
			newAddr := tc.new(t)
			direct, dc := run(t, legacy, tc.reqs)
			t.Logf("directly: statuses %v; %d connections (%d announced closes, %d found closed on reuse)",
				statuses(direct), dc.dials, dc.announce, dc.dead)
			if dc.dead > 0 {
				t.Logf("directly, the server closed a kept-alive connection unannounced after: %s", strings.Join(dc.closedAfter, ", "))
			}
			var before int
			if nginx != nil {
				before = len(nginx.Access(t, len(tc.reqs)))
			}
			tn := startTandem(t, "http://"+legacy, "http://"+newAddr)
			proxied, pc := run(t, tn.addr, tc.reqs)
			t.Logf("through tandem: statuses %v; %d connections (%d announced closes, %d found closed on reuse)",
				statuses(proxied), pc.dials, pc.announce, pc.dead)
			for i, a := range proxied {
				if (a.Status == 502 || a.Status == 504) && direct[i].Status != a.Status {
					prev := "none"
					if i > 0 {
						prev = fmt.Sprintf("%d to %s", direct[i-1].Status, tc.reqs[i-1].name)
					}
					t.Errorf("request %d (%s): tandem answered %d %q; the server itself answered %d (previous answer: %s)",
						i+1, tc.reqs[i].name, a.Status, clip(a.Body), direct[i].Status, prev)
				}
			}
			sameAnswers(t, tc.reqs, direct, proxied)
			m := tn.awaitCompared(t, len(tc.reqs))
			if errs, _ := sum(m, "tandem_backend_errors_total", `route="media"`, `backend="legacy"`); errs != 0 {
				t.Errorf("%v legacy errors counted, want 0: the server answered every request directly", errs)
			}
			if nginx != nil {
				got := nginx.Access(t, before+len(tc.reqs))[before:]
				if len(got) != len(tc.reqs) {
					t.Errorf("nginx logged %d requests from tandem, want %d (each once)", len(got), len(tc.reqs))
				}
				conns := distinctConns(got)
				t.Logf("nginx (legacy): %d requests from tandem on %d connections, %v retries",
					len(got), conns, checkRetries(t, m, "legacy", conns))
			}
		})
	}
}

func distinctConns(es []realservers.AccessEntry) int {
	m := map[int64]bool{}
	for _, e := range es {
		m[e.Conn] = true
	}
	return len(m)
}

// retriesMetric is DESIGN.md's counter of requests sent again on a fresh
// connection after a kept-alive one was found dead.
const retriesMetric = "tandem_backend_retries_total"

// checkRetries holds the retry counter to what can have happened: a retry
// follows a kept-alive connection the backend closed, so there are at most
// as many as connections the backend served (conns) less one; the counter's
// reasons must be named. When the metric is not exported at all (a tandem
// from before it), that is logged, not failed.
func checkRetries(t *testing.T, m map[string]float64, backend string, conns int) float64 {
	t.Helper()
	retries, found := sum(m, retriesMetric, `route="media"`, `backend="`+backend+`"`)
	if !found {
		t.Logf("%s is not exported by this tandem; retry count not checked", retriesMetric)
		return 0
	}
	if max := float64(conns - 1); retries > max || retries < 0 {
		t.Errorf("%s for %s = %v, but the backend served only %d connections (at most %v retries possible):\n%s",
			retriesMetric, backend, retries, conns, max, series(m, retriesMetric))
	}
	for k := range m {
		if strings.HasPrefix(k, retriesMetric+"{") && !strings.Contains(k, "reason=") {
			t.Errorf("%s has no reason label: %s", retriesMetric, k)
		}
	}
	return retries
}
