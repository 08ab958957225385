// Command benchbackend is the upstream used by bench/run.sh: a tiny HTTP
// server that reads the whole request body, hashes it with SHA-256 while
// streaming, optionally sleeps -delay, and answers
//
//	{"sha256":"<hex>","size":<bytes>}
//
// GET /count answers the number of POST requests received so far (plain
// decimal, newline-terminated), so the benchmark can check that mirrored
// requests arrived. GET /conns answers the number of connections whose first
// request was a POST: how many connections a proxy opened to send its
// traffic (a proxy that reuses its connections opens few; one that does not
// opens one per request). It binds loopback addresses only.
//
// Two server implementations are built in (-impl fasthttp|nethttp); fasthttp
// is the default. Measured on the 2-CPU benchmark machine with wrk -t2 -c32,
// 3 rounds of 4 s each: throughput is a tie within the (large) noise of a
// shared machine (1 KiB: 15.1-17.2k vs 13.4-17.3k req/s; 1 MiB: 565-681 vs
// 603-748 req/s, where SHA-256 at ~1.2 ms/MiB dominates), but fasthttp uses
// 10-15% less CPU per small request (0.054-0.058 vs 0.059-0.067 ms). The
// backends share the CPUs with the proxy under test, so the cheaper one wins.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

var posts, postConns atomic.Int64

// stats answers GET /count and GET /conns; ok is false for other requests.
func stats(get bool, path string) (body string, ok bool) {
	if !get {
		return "", false
	}
	switch path {
	case "/count":
		return strconv.FormatInt(posts.Load(), 10) + "\n", true
	case "/conns":
		return strconv.FormatInt(postConns.Load(), 10) + "\n", true
	}
	return "", false
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen address (loopback only; port 0 picks a free port)")
	delay := flag.Duration("delay", 0, "sleep this long before answering each POST")
	impl := flag.String("impl", "fasthttp", "server implementation: fasthttp or nethttp")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("benchbackend: bad -listen %q: %v", *listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("benchbackend: refusing to listen on non-loopback address %q", *listen)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("benchbackend: %v", err)
	}
	// The actual address on stdout lets callers use port 0.
	fmt.Printf("benchbackend listening on %s (impl=%s delay=%s)\n", ln.Addr(), *impl, *delay)

	switch *impl {
	case "fasthttp":
		err = serveFast(ln, *delay)
	case "nethttp":
		err = serveNet(ln, *delay)
	default:
		log.Fatalf("benchbackend: unknown -impl %q", *impl)
	}
	if err != nil {
		log.Fatalf("benchbackend: %v", err)
	}
}

func answer(sum []byte, size int64) []byte {
	b := make([]byte, 0, 96)
	b = append(b, `{"sha256":"`...)
	b = hex.AppendEncode(b, sum)
	b = append(b, `","size":`...)
	b = strconv.AppendInt(b, size, 10)
	return append(b, "}\n"...)
}

func serveFast(ln net.Listener, delay time.Duration) error {
	s := &fasthttp.Server{
		Name:               "benchbackend",
		StreamRequestBody:  true, // hash while reading; never hold a big body
		MaxRequestBodySize: 4 << 30,
		ReadBufferSize:     16 << 10,
		Handler: func(ctx *fasthttp.RequestCtx) {
			if body, ok := stats(ctx.IsGet(), string(ctx.Path())); ok {
				ctx.SetContentType("text/plain")
				ctx.SetBodyString(body)
				return
			}
			isPost := ctx.IsPost()
			if isPost {
				posts.Add(1)
				if ctx.ConnRequestNum() == 1 {
					postConns.Add(1)
				}
			}
			h := sha256.New()
			var n int64
			if r := ctx.RequestBodyStream(); r != nil {
				var err error
				if n, err = io.Copy(h, r); err != nil {
					ctx.Error("body read: "+err.Error(), fasthttp.StatusBadRequest)
					return
				}
			} else {
				body := ctx.PostBody()
				h.Write(body)
				n = int64(len(body))
			}
			if isPost && delay > 0 {
				time.Sleep(delay)
			}
			ctx.SetContentType("application/json")
			ctx.SetBody(answer(h.Sum(nil), n))
		},
	}
	return s.Serve(ln)
}

type firstKey struct{}

func serveNet(ln net.Listener, delay time.Duration) error {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := !r.Context().Value(firstKey{}).(*atomic.Bool).Swap(true)
		if body, ok := stats(r.Method == http.MethodGet, r.URL.Path); ok {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, body)
			return
		}
		isPost := r.Method == http.MethodPost
		if isPost {
			posts.Add(1)
			if first {
				postConns.Add(1)
			}
		}
		sh := sha256.New()
		n, err := io.Copy(sh, r.Body)
		if err != nil {
			http.Error(w, "body read: "+err.Error(), http.StatusBadRequest)
			return
		}
		if isPost && delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer(sh.Sum(nil), n))
	})
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(os.Stderr, "benchbackend: ", 0),
		// One flag per connection: set by its first request.
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, firstKey{}, new(atomic.Bool))
		},
	}
	return s.Serve(ln)
}
