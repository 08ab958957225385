package proxy

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"image"
	"image/png"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/internal/imagefmt"
	"github.com/valyala/fasthttp"
)

// Comparison bombs: responses that are cheap to send and dear to compare,
// as the shadow side answers them. Each is built without holding its
// decoded pixels.

// tiffBomb is a 16-bit RGB TIFF of w×h black pixels in one
// deflate-compressed strip: a few hundred KiB that decode to w×h×6 bytes of
// samples and a w×h×8-byte image.
func tiffBomb(w, h int) []byte {
	var strip bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&strip, zlib.BestCompression)
	row := make([]byte, 6*w)
	for range h {
		zw.Write(row)
	}
	zw.Close()
	var b bytes.Buffer
	le16 := func(v uint16) { binary.Write(&b, binary.LittleEndian, v) }
	le32 := func(v uint32) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("II*\x00")
	le32(8)
	const entries = 9
	bps := uint32(8 + 2 + entries*12 + 4)
	data := bps + 6
	ifd := [][4]uint32{
		{256, 4, 1, uint32(w)},
		{257, 4, 1, uint32(h)},
		{258, 3, 3, bps},
		{259, 3, 1, 8}, // deflate
		{262, 3, 1, 2}, // RGB
		{273, 4, 1, data},
		{277, 3, 1, 3},
		{278, 4, 1, uint32(h)},
		{279, 4, 1, uint32(strip.Len())},
	}
	le16(entries)
	for _, e := range ifd {
		le16(uint16(e[0]))
		le16(uint16(e[1]))
		le32(e[2])
		le32(e[3])
	}
	le32(0)
	le16(16)
	le16(16)
	le16(16)
	b.Write(strip.Bytes())
	return b.Bytes()
}

// webpBomb is a lossless WebP of w×h transparent black pixels: a few dozen
// bytes, since a channel of one value costs no bits a pixel. It is the 1×1
// file with its dimensions rewritten.
func webpBomb(w, h int) []byte {
	b, err := imagefmt.EncodeWebP(image.NewNRGBA(image.Rect(0, 0, 1, 1)))
	if err != nil {
		panic(err)
	}
	// RIFF header (12), "VP8L" and its size (8), signature byte 0x2f; then
	// 14 bits of width-1, 14 of height-1, alpha, 3 bits of version.
	hdr := binary.LittleEndian.Uint32(b[21:25])
	hdr = hdr&^(1<<28-1) | uint32(w-1) | uint32(h-1)<<14
	binary.LittleEndian.PutUint32(b[21:25], hdr)
	return b
}

// jsonBomb is an object of n keys, each with a value that differs from the
// legacy side's.
func jsonBomb(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"`)
		b.WriteString(strconv.FormatInt(int64(i), 36))
		b.WriteString(`":`)
		b.WriteString(strconv.Itoa(i % 7))
	}
	b.WriteByte('}')
	return b.Bytes()
}

type bomb struct {
	name        string
	ctype       string
	legacy, new []byte
}

func makeBombs(tb testing.TB) []bomb {
	var small bytes.Buffer
	png.Encode(&small, image.NewNRGBA(image.Rect(0, 0, 64, 64)))
	bombs := []bomb{
		// The three: 16-bit TIFF (1.58 GB to decode), a tiny WebP
		// of huge dimensions (200 MB, 3.8 s), 700,000 keys (9.7 s of go-cmp).
		{"tiff16", "image/tiff", small.Bytes(), tiffBomb(7000, 7000)},
		{"webp", "image/webp", small.Bytes(), webpBomb(7000, 7000)},
		{"json", "application/json", []byte(`{"k0":1}`), jsonBomb(700_000)},
		// And one that fits the decode budget, so is decoded: 12 Mpx of
		// lossless WebP, about 1 s of one CPU and 108 MiB each.
		{"webp-fits", "image/webp", small.Bytes(), webpBomb(4000, 3000)},
	}
	// The control: as many bytes as the JSON bomb, compared by hash alone,
	// so what it costs is the shadow's transfer, not the comparison.
	bombs = append(bombs, bomb{"bytes-control", "application/octet-stream", []byte("x"), bytes.Repeat([]byte("y"), len(bombs[2].new))})
	for _, b := range bombs {
		tb.Logf("bomb %s: %d bytes", b.name, len(b.new))
	}
	return bombs
}

// bombBackend answers /upload/steady with a small JSON and
// /upload/bomb/NAME with that bomb's legacy or new side.
func bombBackend(tb testing.TB, bombs []bomb, side string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	steady := []byte(`{"ok":true,"items":[1,2,3]}`)
	byPath := map[string]bomb{}
	for _, b := range bombs {
		byPath["/upload/bomb/"+b.name] = b
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if b, ok := byPath[string(ctx.Path())]; ok {
			ctx.SetContentType(b.ctype)
			if side == "legacy" {
				ctx.Response.SetBodyRaw(b.legacy) // no copy: the bombs are shared, read-only
			} else {
				ctx.Response.SetBodyRaw(b.new)
			}
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBody(steady)
	}}
	go s.Serve(ln)
	tb.Cleanup(func() { s.Shutdown() })
	return "http://" + ln.Addr().String()
}

// memSampler records the peak RSS and live heap while it runs, reading
// /proc/self/statm and runtime/metrics (neither stops the world).
type memSampler struct {
	stop     chan struct{}
	done     chan struct{}
	peakRSS  atomic.Int64
	peakHeap atomic.Int64
}

func startMemSampler() *memSampler {
	m := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	page := int64(os.Getpagesize())
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(m.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if b, err := os.ReadFile("/proc/self/statm"); err == nil {
				if f := strings.Fields(string(b)); len(f) > 1 {
					if n, err := strconv.ParseInt(f[1], 10, 64); err == nil && n*page > m.peakRSS.Load() {
						m.peakRSS.Store(n * page)
					}
				}
			}
			metrics.Read(sample)
			if h := int64(sample[0].Value.Uint64()); h > m.peakHeap.Load() {
				m.peakHeap.Store(h)
			}
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memSampler) finish() (rss, heap int64) {
	close(m.stop)
	<-m.done
	return m.peakRSS.Load(), m.peakHeap.Load()
}

// steadyLoad sends POST /upload/steady at rate per second for d, open loop
// (a goroutine per request, never waiting for earlier answers), and returns
// the latencies, each from when the request was handed to the client: the
// sender shares this process's CPUs with the proxy, so timing from when it
// was due would charge the proxy with the sender's own scheduling delays.
func steadyLoad(tb testing.TB, c *fasthttp.HostClient, rate int, d time.Duration) []time.Duration {
	n := int(d.Seconds() * float64(rate))
	lat := make([]time.Duration, n)
	interval := time.Second / time.Duration(rate)
	body := bytes.Repeat([]byte("s"), 1<<10)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://x/upload/steady")
			req.Header.SetMethod("POST")
			req.SetBody(body)
			sent := time.Now()
			if err := c.DoTimeout(req, resp, 30*time.Second); err != nil || resp.StatusCode() != 200 {
				failed.Add(1)
			}
			lat[i] = time.Since(sent)
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		tb.Errorf("%d of %d served requests failed", f, n)
	}
	return lat
}

// bombLoad sends every bomb kind, one of each in flight per kind, until
// stop is closed, and counts what it sent.
func bombLoad(c *fasthttp.HostClient, bombs []bomb, every time.Duration, stop chan struct{}, sent *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, b := range bombs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				req.SetRequestURI("http://x/upload/bomb/" + b.name)
				req.Header.SetMethod("POST")
				req.SetBodyString("b")
				if err := c.DoTimeout(req, resp, 30*time.Second); err == nil {
					sent.Add(1)
				}
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(resp)
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
	}
	return &wg
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

const bombConfig = `
data_dir: {{data}}
backends: {legacy: {url: "{{legacy}}"}, new: {url: "{{new}}"}}
routes: [{name: r, match: {path_prefix: /upload}, legacy: legacy, new: new, mirror: 100}]
`

// BenchmarkServedUnderCompareBombs measures the served p99 of a steady load
// (200 requests/s of 1 KiB, every one mirrored and compared) through a
// proxy with the default limits, in ten pairs of one-second rounds without
// and with comparison bombs arriving on the shadow side (one of a kind in
// flight, sent every 200 ms: a 16-bit TIFF, a tiny WebP of 7000×7000, a
// 700,000-key JSON, each alone and the three together ("issue"), and a WebP
// that fits the decode budget and is decoded, ~1 s of CPU each; and a
// control of as many bytes as the JSON bomb, compared by hash, which shows
// what the shadow's transfer alone costs), and reports
//
//	p99-ratio   served p99 with bombs / without, all rounds pooled (target ≤ 1.10)
//	p99-ratio-median   the median over the pairs of rounds
//	p99-base-ms, p99-bombs-ms, p50-…
//	peak-rss-MiB, peak-heap-MiB   during the bomb rounds
//	bombs       bomb requests sent
//
// Run it alone, once: go test -run '^$' -bench ServedUnderCompareBombs -benchtime 1x ./proxy/
// (TANDEM_BOMBS=json,webp picks kinds). It fails if the peak RSS passes the
// bound documented in the README (memoryBound).
func BenchmarkServedUnderCompareBombs(b *testing.B) {
	all := makeBombs(b)
	kinds := map[string][]bomb{"issue": all[:3]}
	for _, k := range all {
		kinds[k.name] = []bomb{k}
	}
	names := []string{"tiff16", "webp", "json", "bytes-control", "issue", "webp-fits"}
	if only := os.Getenv("TANDEM_BOMBS"); only != "" {
		names = strings.Split(only, ",")
	}
	for _, name := range names {
		b.Run(name, func(b *testing.B) { benchBombs(b, all, kinds[name]) })
	}
}

func benchBombs(b *testing.B, all, bombs []bomb) {
	cfg := strings.ReplaceAll(bombConfig, "{{legacy}}", bombBackend(b, all, "legacy"))
	cfg = strings.ReplaceAll(cfg, "{{new}}", bombBackend(b, all, "new"))
	cfg = strings.ReplaceAll(cfg, "{{data}}", b.TempDir())
	srv, addr := mustServe(b, cfg)
	c := &fasthttp.HostClient{Addr: addr, MaxConns: 512, ReadTimeout: 30 * time.Second}
	bc := &fasthttp.HostClient{Addr: addr, MaxConns: 16, ReadTimeout: 30 * time.Second}
	const (
		rate      = 200
		round     = time.Second
		rounds    = 10
		bombEvery = 200 * time.Millisecond
	)
	steadyLoad(b, c, rate, time.Second) // warm up pools and the runtime
	runtime.GC()
	b.ResetTimer()
	for range b.N {
		var base, loaded []time.Duration
		var ratios []float64
		var sent atomic.Int64
		var rss, heap int64
		for range rounds {
			bl := steadyLoad(b, c, rate, round)
			base = append(base, bl...)

			ms := startMemSampler()
			stop := make(chan struct{})
			wg := bombLoad(bc, bombs, bombEvery, stop, &sent)
			ll := steadyLoad(b, c, rate, round)
			loaded = append(loaded, ll...)
			close(stop)
			wg.Wait()
			r, h := ms.finish()
			rss, heap = max(rss, r), max(heap, h)
			ratios = append(ratios, float64(percentile(ll, 0.99))/float64(percentile(bl, 0.99)))
		}
		pb, pl := percentile(base, 0.99), percentile(loaded, 0.99)
		slices.Sort(ratios)
		b.ReportMetric(float64(pl)/float64(pb), "p99-ratio")
		// The median over rounds of each bomb round's p99 over the quiet
		// round just before it: robust to a CPU-hungry neighbour process
		// that lands in one round (the pooled ratio is not).
		b.ReportMetric(ratios[len(ratios)/2], "p99-ratio-median")
		b.ReportMetric(float64(pb)/1e6, "p99-base-ms")
		b.ReportMetric(float64(pl)/1e6, "p99-bombs-ms")
		b.ReportMetric(float64(percentile(base, 0.5))/1e6, "p50-base-ms")
		b.ReportMetric(float64(percentile(loaded, 0.5))/1e6, "p50-bombs-ms")
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
		b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(sent.Load()), "bombs")
		// Also as a log line, which a failed run prints too.
		b.Logf("p99 %v → %v (ratio %.3f, median of rounds %.3f), p50 %v → %v, peak RSS %d MiB, heap %d MiB, %d bombs",
			pb, pl, float64(pl)/float64(pb), ratios[len(ratios)/2], percentile(base, 0.5), percentile(loaded, 0.5),
			rss>>20, heap>>20, sent.Load())
		var buf bytes.Buffer
		srv.Metrics().WritePrometheus(&buf)
		for _, line := range strings.Split(buf.String(), "\n") {
			if strings.HasPrefix(line, "tandem_compare_") || strings.HasPrefix(line, `tandem_shadow_total{route="r",outcome="queue_full"}`) {
				if !strings.HasSuffix(line, " 0") {
					b.Log(line)
				}
			}
		}
		if bound := memoryBound(srv.o.CompareMemory, srv.o.DecodeMemory); rss > bound {
			b.Errorf("peak RSS %d MiB over the documented bound %d MiB", rss>>20, bound>>20)
		}
	}
}

// memoryBound is the README's bound on RSS under comparison load: a base of
// 64 MiB, and twice the captured bodies and decoded images the limits allow
// (Go's collector, at GOGC=100, lets the heap grow to twice what is live).
func memoryBound(compareMemory, decodeMemory int64) int64 {
	return 64<<20 + 2*(compareMemory+decodeMemory)
}
