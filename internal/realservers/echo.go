package realservers

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Echo starts an HTTP server on 127.0.0.1 that answers every request with its
// own body and Content-Type (application/octet-stream when it had none), and
// returns its address (127.0.0.1:PORT). nginx cannot answer with a request's
// body by itself; behind nginx's proxy_pass this upstream lets nginx's
// filters (image_filter) work on an uploaded file, so that nginx answers a
// POST with its own real behaviour for that file. It is Go's net/http; it is
// closed when the test ends.
func Echo(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen for the echo upstream: %v", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "cannot read the body: "+err.Error(), http.StatusBadRequest)
				return
			}
			ct := r.Header.Get("Content-Type")
			if ct == "" {
				ct = "application/octet-stream"
			}
			w.Header().Set("Content-Type", ct)
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}
