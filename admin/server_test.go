package admin

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Serve answers on a real listener and returns nil after Shutdown (as the
// fasthttp server did: callers treat any error as a failed listener).
func TestServeUntilShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Token: httpTestToken})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok\n" || resp.Header.Get("Server") != "tandem-admin" {
		t.Fatalf("healthz: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after Shutdown: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
}
