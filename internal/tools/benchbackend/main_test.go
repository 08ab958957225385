package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCountsPostsAndConnections drives each implementation over real
// loopback connections: three POSTs on one kept-alive connection, one on a
// second, and one on a third that first asked for /count are five posts from
// two connections whose first request was a POST.
func TestCountsPostsAndConnections(t *testing.T) {
	for _, impl := range []struct {
		name  string
		serve func(net.Listener, time.Duration) error
	}{{"fasthttp", serveFast}, {"nethttp", serveNet}} {
		t.Run(impl.name, func(t *testing.T) {
			posts.Store(0)
			postConns.Store(0)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go impl.serve(ln, 0)
			addr := ln.Addr().String()

			get := func(path string) string {
				t.Helper()
				resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + addr + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return strings.TrimSpace(string(b))
			}
			post := func(c net.Conn, br *bufio.Reader, body string) {
				t.Helper()
				fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				sum := sha256.Sum256([]byte(body))
				want := fmt.Sprintf(`{"sha256":"%s","size":%d}`, hex.EncodeToString(sum[:]), len(body))
				if strings.TrimSpace(string(b)) != want {
					t.Fatalf("answer %q, want %q", b, want)
				}
			}
			dial := func() (net.Conn, *bufio.Reader) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c, bufio.NewReader(c)
			}

			get("/count")
			c1, r1 := dial()
			for _, b := range []string{"a", "bb", "ccc"} {
				post(c1, r1, b)
			}
			c2, r2 := dial()
			post(c2, r2, "dddd")
			c3, r3 := dial()
			fmt.Fprintf(c3, "GET /count HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, err := http.ReadResponse(r3, nil); err != nil {
				t.Fatal(err)
			} else {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			post(c3, r3, "eeeee")
			if got := get("/count"); got != "5" {
				t.Errorf("/count = %s, want 5", got)
			}
			if got := get("/conns"); got != "2" {
				t.Errorf("/conns = %s, want 2", got)
			}
		})
	}
}
