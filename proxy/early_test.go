package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// earlyRefuser is a Go net/http backend that refuses uploads to /upload/big
// with 413 without reading them (the server then closes the connection, and
// the kernel resets it under the unread bytes) and answers everything else
// after reading the body.
func earlyRefuser(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/upload/big" {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				io.WriteString(w, "too big for me\n")
				return
			}
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "read %d\n", n)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), conns
}

// A backend that answers an upload before reading it, and closes, gives the
// client its own answer (not 502), on a new connection or a kept-alive one,
// and the next request is answered normally.
func TestEarlyAnswerReachesTheClient(t *testing.T) {
	big := bytes.Repeat([]byte("B"), 8<<20)
	for _, mirrored := range []bool{false, true} {
		name := "pass"
		if mirrored {
			name = "mirrored"
		}
		t.Run(name, func(t *testing.T) {
			legacy, _ := earlyRefuser(t)
			yaml := fmt.Sprintf(nginxPassConfig, "")
			urls := map[string]string{"legacy": "http://" + legacy}
			if mirrored {
				shadow, _ := earlyRefuser(t)
				yaml = fmt.Sprintf(nginxMirrorConfig, "", "")
				urls["new"] = "http://" + shadow
			}
			f := startProxy(t, yaml, urls)
			for i := 0; i < 3; i++ {
				// The first upload is on a new backend connection, the
				// next ones on a kept-alive one.
				resp, err := f.client.Post(f.url+"/upload/small", "text/plain", bytes.NewReader([]byte("hello")))
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(got) != "read 5\n" {
					t.Fatalf("small upload %d: %d %q", i, resp.StatusCode, got)
				}
				resp, err = f.client.Post(f.url+"/upload/big", "application/octet-stream", bytes.NewReader(big))
				if err != nil {
					t.Fatalf("big upload %d: %v", i, err)
				}
				got, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 413 || string(got) != "too big for me\n" {
					t.Errorf("big upload %d: %d %q, want the backend's 413", i, resp.StatusCode, got)
				}
				// tandem reads at most 256 KiB of the 8 MiB left unread
				// after the answer, then closes: the answer must say so, or
				// the client sends its next request into the close.
				if !resp.Close {
					t.Errorf("big upload %d: the answer does not say Connection: close, yet tandem closes the connection after it", i)
				}
			}
		})
	}
}
