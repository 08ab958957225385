package proxy

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// nginxCase is one nginx configuration and a sequence of requests that
// makes nginx close its side of kept-alive connections.
type nginxCase struct {
	name       string
	httpConf   string
	serverConf string
	steps      []step
}

func nginxCases() []nginxCase {
	big := bytes.Repeat([]byte("0123456789abcdef"), 256<<10/16) // 256 KiB
	huge := bytes.Repeat([]byte("x"), 4<<20)
	small := []byte("name=value")
	ok := func(p string) step { return step{method: "GET", path: p} }
	post := func(p string, b []byte) step { return step{method: "POST", path: p, body: b} }
	seq := func(n int, mk func(i int) step) []step {
		var s []step
		for i := 0; i < n; i++ {
			s = append(s, mk(i))
		}
		return s
	}
	return []nginxCase{
		{
			// image_filter resizes what the upstream (an echo of the
			// upload) returns: 415 for what is not an image, the image
			// itself when it is already small enough.
			name: "image_filter",
			serverConf: `location /resize {
            image_filter resize 16 16;
            image_filter_buffer 8M;
            proxy_pass http://{{echo}};
        }`,
			steps: []step{post("/resize", pngOf(64, 32)), post("/resize", []byte("not an image")), post("/resize", pngOf(8, 8)),
				post("/resize", pngOf(40, 40)), post("/resize", pngOf(4, 4)), post("/resize", []byte("GIF89a broken")),
				post("/resize", pngOf(64, 64)), post("/resize", pngOf(2, 2)), post("/resize", pngOf(32, 16))},
		},
		{
			// nginx answers the third request of a connection with
			// Connection: close and closes.
			name:       "keepalive_requests",
			httpConf:   "keepalive_requests 3;",
			serverConf: `location / { return 200 "ok $request_uri\n"; }`,
			steps: seq(10, func(i int) step {
				if i%2 == 1 {
					return post(fmt.Sprintf("/p%d", i), small)
				}
				return ok(fmt.Sprintf("/g%d", i))
			}),
		},
		{
			// nginx closes a kept-alive connection idle for a second,
			// with no answer to say so: tandem's pooled connection is
			// dead when the next request comes.
			name:       "keepalive_timeout",
			httpConf:   "keepalive_timeout 1s;",
			serverConf: `location / { return 200 "ok $request_uri\n"; }`,
			steps: seq(4, func(i int) step {
				s := ok(fmt.Sprintf("/g%d", i))
				if i%2 == 1 {
					s = post(fmt.Sprintf("/p%d", i), small)
				}
				if i > 0 {
					s.gap = 1500 * time.Millisecond
				}
				return s
			}),
		},
		{
			// 400, 413 and 500 answers close the connection (nginx's
			// special response handler turns keep-alive off for them).
			name: "error_statuses",
			serverConf: `location /ok { return 200 "ok $request_uri\n"; }
        location /e400 { return 400; }
        location /e413 { return 413; }
        location /e500 { return 500; }
        location /e404 { return 404; }`,
			steps: []step{ok("/ok1"), ok("/e400"), ok("/ok2"), post("/e500", small), post("/ok3", small),
				ok("/e404"), ok("/ok4"), post("/e413", small), ok("/ok5"), ok("/e500"), ok("/ok6")},
		},
		{
			// nginx answers 413 as soon as it has the headers of an
			// upload over client_max_body_size, before reading the body,
			// and `return 413` answers without reading it either.
			name: "early_413",
			serverConf: `client_max_body_size 64k;
        location /ok { return 200 "ok $request_uri\n"; }
        location /limited { return 200 "read $content_length\n"; }
        location /r413 { return 413; }`,
			steps: []step{ok("/ok1"), post("/limited", big), ok("/ok2"), post("/r413", big), ok("/ok3"),
				post("/limited", huge), ok("/ok4"), post("/limited", small), post("/r413", huge), ok("/ok5")},
		},
	}
}

// Through tandem, every client gets what nginx gives directly for the same
// sequence on one kept-alive connection: no 502 for a connection nginx
// closed, nothing sent twice, nothing lost; served (pass-through) and
// mirrored to a second nginx, whose copies must not fail either.
func TestNginxReuse(t *testing.T) {
	needNginx(t)
	for _, c := range nginxCases() {
		for _, mirrored := range []bool{false, true} {
			name := c.name + "/pass"
			if mirrored {
				name = c.name + "/mirrored"
			}
			t.Run(name, func(t *testing.T) {
				conf := strings.ReplaceAll(c.serverConf, "{{echo}}", echoServer(t))
				ng := startNginx(t, c.httpConf, conf)
				want, _ := runSequence(t, ng.addr, c.steps)
				n := len(c.steps)
				pollUntil(5*time.Second, func() bool { return ng.requests(t) >= n })
				direct := ng.requests(t)
				relays := map[string]*relay{"legacy": startRelay(t, ng.addr)}
				urls := map[string]string{"legacy": "http://" + relays["legacy"].addr}
				yaml := fmt.Sprintf(nginxPassConfig, "")
				var shadow *nginxServer
				if mirrored {
					shadow = startNginx(t, c.httpConf, conf)
					relays["new"] = startRelay(t, shadow.addr)
					urls["new"] = "http://" + relays["new"].addr
					yaml = fmt.Sprintf(nginxMirrorConfig, "", "")
				}
				f := startProxy(t, yaml, urls)
				got, conns := runSequence(t, f.addr, c.steps)
				for i := range c.steps {
					if !got[i].same(want[i]) {
						t.Errorf("step %d %s %s: through tandem %v, nginx directly %v", i, c.steps[i].method, c.steps[i].path, got[i], want[i])
					}
				}
				if conns != 1 {
					t.Errorf("the client needed %d connections to tandem, want 1", conns)
				}
				pollUntil(5*time.Second, func() bool { return ng.requests(t)-direct >= n })
				if got := ng.requests(t) - direct; got != n {
					t.Errorf("nginx logged %d requests through tandem, want %d", got, n)
				}
				if mirrored {
					pollUntil(5*time.Second, func() bool { return shadow.requests(t) >= n })
					f.waitIdle()
					if got := shadow.requests(t); got != n {
						t.Errorf("the shadow nginx logged %d requests, want %d", got, n)
					}
				}
				// Each request written on a connection nginx had closed is
				// one retry; the check before reuse finds most such
				// connections first (nginx's image_filter closes some
				// only after the next request came).
				for b, rl := range relays {
					unanswered, conns := rl.counts()
					if r := f.retries("r", b); r != float64(unanswered) {
						t.Errorf("%g retries to %s, but %d requests were written on a connection it had closed", r, b, unanswered)
					}
					t.Logf("%s: %d connections, %d retries", b, conns, unanswered)
					if e := f.metric(`tandem_backend_errors_total{route="r",backend="` + b + `",reason="reset"}`); e != 0 {
						t.Errorf("%g resets charged to %s", e, b)
					}
				}
			})
		}
	}
}

// pngOf encodes a w×h grey PNG.
func pngOf(w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// echoServer starts an upstream on 127.0.0.1 that answers every request with
// its own body: behind nginx's proxy_pass it lets image_filter work on an
// upload.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
