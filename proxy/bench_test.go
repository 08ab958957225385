package proxy

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fastBackend is a zero-allocation fasthttp backend that reads the body and
// answers a fixed small JSON, so benchmarks measure the proxy's allocations.
func fastBackend(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	body := []byte(`{"ok":true}`)
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go s.Serve(ln)
	tb.Cleanup(func() { s.Shutdown() })
	return "http://" + ln.Addr().String()
}

// benchFixture starts a proxy for a benchmark (startProxy wants a *testing.T).
func benchFixture(b *testing.B, cfg string) *fasthttp.HostClient {
	b.Helper()
	urls := map[string]string{"legacy": fastBackend(b), "new": fastBackend(b)}
	for name, u := range urls {
		cfg = strings.ReplaceAll(cfg, "{{"+name+"}}", u)
	}
	cfg = strings.ReplaceAll(cfg, "{{data}}", b.TempDir())
	_, addr := mustServe(b, cfg)
	return &fasthttp.HostClient{Addr: addr, MaxConns: 64, ReadTimeout: 10 * time.Second}
}

func runBench(b *testing.B, c *fasthttp.HostClient, size int, parallel bool) {
	body := bytes.Repeat([]byte("x"), size)
	do := func(req *fasthttp.Request, resp *fasthttp.Response) {
		req.SetRequestURI("http://x/upload")
		req.Header.SetMethod("POST")
		req.SetBody(body)
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("err %v status %d", err, resp.StatusCode())
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	if !parallel {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			do(req, resp)
		}
		return
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		for pb.Next() {
			do(req, resp)
		}
	})
}

const benchPassConfig = `
data_dir: {{data}}
backends: {legacy: {url: "{{legacy}}"}}
routes: [{name: r, legacy: legacy}]
`

const benchMirrorConfig = `
data_dir: {{data}}
limits: {shadow_concurrency: 256}
backends: {legacy: {url: "{{legacy}}"}, new: {url: "{{new}}"}}
routes: [{name: r, legacy: legacy, new: new, mirror: 100}]
`

func BenchmarkPassThrough1KiB(b *testing.B) {
	runBench(b, benchFixture(b, benchPassConfig), 1<<10, false)
}

func BenchmarkMirrored1KiB(b *testing.B) {
	runBench(b, benchFixture(b, benchMirrorConfig), 1<<10, false)
}

func BenchmarkMirrored64KiBParallel(b *testing.B) {
	runBench(b, benchFixture(b, benchMirrorConfig), 64<<10, true)
}

func BenchmarkPassThrough64KiB(b *testing.B) {
	runBench(b, benchFixture(b, benchPassConfig), 64<<10, false)
}
