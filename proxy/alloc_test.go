//go:build !race

package proxy

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestPassThroughAllocs: a route without new allocates nothing per request
// in steady state — not in tandem's handler, not in fasthttp's server or
// client (third_party/fasthttp carries the two fixes that needed). The client
// and backend here are zero-allocation too, so the process-wide count is the
// proxy's. Streamed request and response bodies both take part: the body is
// larger than nothing and the backend answers with a body.
func TestPassThroughAllocs(t *testing.T) {
	for _, size := range []int{0, 1 << 10, 64 << 10} {
		t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
			cfg := strings.ReplaceAll(benchPassConfig, "{{legacy}}", fastBackend(t))
			cfg = strings.ReplaceAll(cfg, "{{data}}", t.TempDir())
			_, addr := mustServe(t, cfg)
			c := &fasthttp.HostClient{Addr: addr, MaxConns: 1, ReadTimeout: 10 * time.Second}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			body := bytes.Repeat([]byte("x"), size)
			do := func() {
				req.SetRequestURI("http://x/upload")
				req.Header.SetMethod("POST")
				req.SetBody(body)
				if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 || string(resp.Body()) != `{"ok":true}` {
					t.Fatalf("err %v status %d body %q", err, resp.StatusCode(), resp.Body())
				}
			}
			for i := 0; i < 200; i++ { // warm every pool
				do()
			}
			if n := testing.AllocsPerRun(500, do); n != 0 {
				t.Fatalf("pass-through %d B body: %.2f allocations per request, want 0 "+
					"(profile: go test -run '^$' -bench PassThrough -memprofile m.out -memprofilerate 1 ./proxy)", size, n)
			}
		})
	}
}
