package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

func compareMetric(route string, result compare.Outcome) string {
	return fmt.Sprintf(`tandem_compare_total{route=%q,result=%q}`, route, result)
}

func (f *fixture) compared(route string) float64 {
	var n float64
	for _, o := range compareResults {
		n += f.metric(compareMetric(route, o))
	}
	return n
}

// A client that stalls while reading the served response does not hold the
// shadow slot: with shadow_concurrency 1, the next request's shadow is still
// sent (before, the first job waited for the served side, up to
// write_timeout + 1 s, and the second was skipped as queue_full). The pair
// of the stalled request is compared once its client goes away.
func TestSlowClientDoesNotHoldShadowSlot(t *testing.T) {
	const size = 16 << 20 // far more than the socket buffers hold
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindHuge, Size: size, Seed: 7})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindHuge, Size: size, Seed: 7})
	cfg := strings.Replace(basicConfig, "data_dir: {{data}}", "data_dir: {{data}}\nlimits: {shadow_concurrency: 1}\nclient: {write_timeout: 60s}", 1)
	f := startProxy(t, cfg, map[string]string{"legacy": legacy.URL, "new": newb.URL})

	// Client 1 sends a request and reads only the start of the answer.
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
	br := bufio.NewReaderSize(c, 4<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stalled client: %v %v", resp, err)
	}
	// Its shadow exchange ends (the whole shadow body is read) while the
	// served body is stuck in the socket.
	f.waitMetric(shadowMetric("up", exchange.Sent), 1)
	if f.compared("up") != 0 {
		t.Fatal("compared before the served side was complete")
	}

	// Client 2: its shadow must be sent, not skipped.
	st, _, n, _ := f.post("/upload", bytes.NewReader([]byte("y")), 1, nil)
	if st != 200 || n != size {
		t.Fatalf("second request: status %d, %d bytes", st, n)
	}
	f.waitMetric(shadowMetric("up", exchange.Sent), 2)
	if q := f.metric(shadowMetric("up", exchange.QueueFull)); q != 0 {
		t.Fatalf("%v shadows skipped as queue_full while a client stalled", q)
	}
	f.waitCompared(1) // the second pair
	if got := f.compared("up"); got != 1 {
		t.Fatalf("compared %v pairs, want 1 (the stalled one waits for its client)", got)
	}

	// Client 1 goes away: the served side ends, and its pair is compared.
	c.Close()
	f.waitCompared(2)
}

// waitCompared polls until route up's comparisons number at least n.
func (f *fixture) waitCompared(n float64) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for f.compared("up") < n {
		if time.Now().After(deadline) {
			f.t.Fatalf("compared %v pairs, want %v", f.compared("up"), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blockingObserver holds the compare worker in Observe until released.
type blockingObserver struct {
	entered chan struct{}
	release chan struct{}
	seen    atomic.Int64
}

func (o *blockingObserver) Observe(*exchange.Exchange) {
	o.seen.Add(1)
	o.entered <- struct{}{}
	<-o.release
}

// A full compare queue drops the pair and counts it; serving and shadowing
// go on, and a queued pair is still compared.
func TestCompareQueueFullDrops(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfg := strings.Replace(basicConfig, "{{legacy}}", legacy.URL, 1)
	cfg = strings.Replace(cfg, "{{new}}", newb.URL, 1)
	cfg = strings.Replace(cfg, "data_dir: {{data}}", "data_dir: "+t.TempDir()+"\nlimits: {compare_workers: 1, compare_queue: 1}", 1)
	obs := &blockingObserver{entered: make(chan struct{}), release: make(chan struct{})}
	srv, addr := mustServeWith(t, cfg, obs)
	f := &fixture{t: t, srv: srv, addr: addr, url: "http://" + addr, client: newClient()}
	defer f.client.CloseIdleConnections()
	dropped := `tandem_compare_dropped_total{route="up",reason="queue_full"}`

	post := func() {
		if st, _, _, _ := f.post("/upload", bytes.NewReader([]byte("z")), 1, nil); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	post()
	<-obs.entered // pair 1 holds the only worker
	post()        // pair 2 waits in the queue
	f.waitMetric(shadowMetric("up", exchange.Sent), 2)
	for deadline := time.Now().Add(30 * time.Second); f.metric("tandem_compare_queued") < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("pair 2 never queued")
		}
	}
	post() // pair 3 finds the queue full
	f.waitMetric(dropped, 1)
	close(obs.release)
	<-obs.entered // pair 2
	f.waitCompared(2)
	if got, d := obs.seen.Load(), f.metric(dropped); got != 2 || d != 1 {
		t.Fatalf("observed %d, dropped %v; want 2 and 1", got, d)
	}
}

// Pairs past a work bound are compared by hash and size and counted by
// reason: a 700,000-key JSON on the shadow side (json_nodes), and images
// whose decoding does not fit limits.decode_memory (decode_budget).
func TestCompareLimitsCounted(t *testing.T) {
	var bomb bytes.Buffer
	bomb.WriteByte('{')
	for i := range 700_000 {
		if i > 0 {
			bomb.WriteByte(',')
		}
		fmt.Fprintf(&bomb, `"%x":1`, i)
	}
	bomb.WriteByte('}')
	img := func(seed byte) []byte {
		m := image.NewNRGBA(image.Rect(0, 0, 600, 400))
		for i := range m.Pix {
			m.Pix[i] = byte(i)*seed | 0x80
		}
		var b bytes.Buffer
		png.Encode(&b, m)
		return b.Bytes()
	}
	legacyImg, newImg := img(3), img(5)
	backend := func(json, png []byte) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if strings.HasSuffix(r.URL.Path, "/json") {
				w.Header().Set("Content-Type", "application/json")
				w.Write(json)
				return
			}
			w.Header().Set("Content-Type", "image/png")
			w.Write(png)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	cfg := strings.Replace(basicConfig, "data_dir: {{data}}", "data_dir: {{data}}\nlimits: {decode_memory: 1MiB}", 1)
	f := startProxy(t, cfg, map[string]string{
		"legacy": backend([]byte(`{"a":1}`), legacyImg),
		"new":    backend(bomb.Bytes(), newImg),
	})
	for _, p := range []string{"/upload/json", "/upload/png"} {
		if st, _, _, _ := f.post(p, bytes.NewReader([]byte("q")), 1, nil); st != 200 {
			t.Fatalf("%s: status %d", p, st)
		}
	}
	f.waitCompared(2)
	for _, reason := range []compare.Limit{compare.LimitJSONNodes, compare.LimitDecodeBudget} {
		name := fmt.Sprintf(`tandem_compare_limited_total{route="up",reason=%q}`, reason)
		if got := f.metric(name); got != 1 {
			t.Errorf("%s = %v, want 1", name, got)
		}
	}
	if got := f.metric(compareMetric("up", compare.OutcomeMismatch)); got != 2 {
		t.Errorf("mismatches %v, want 2 (both pairs differ by hash)", got)
	}
}
