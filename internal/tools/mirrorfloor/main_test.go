package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hashBackend is a loopback HTTP server that answers a POST with its name and
// the SHA-256 of the body, and records the bodies' hashes it received.
type hashBackend struct {
	name string
	addr string
	mu   sync.Mutex
	got  []string
}

func startBackend(t *testing.T, name string) *hashBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &hashBackend{name: name, addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum := hex.EncodeToString(h.Sum(nil))
		b.mu.Lock()
		b.got = append(b.got, sum)
		b.mu.Unlock()
		fmt.Fprintf(w, "%s %s", b.name, sum)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *hashBackend) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

func startFloor(t *testing.T, legacy, mirror string, late bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serve(ln, legacy, mirror, late)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestServesLegacyAndMirrorsEveryRequest sends bodies of several sizes, up to
// 1 MiB, on one kept-alive connection, in both modes: every answer is
// legacy's for that body, and new receives the same bodies in the same order.
func TestServesLegacyAndMirrorsEveryRequest(t *testing.T) {
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprintf("late=%v", late), func(t *testing.T) { testServesAndMirrors(t, late) })
	}
}

func testServesAndMirrors(t *testing.T, late bool) {
	legacy, mirror := startBackend(t, "legacy"), startBackend(t, "new")
	addr := startFloor(t, legacy.addr, mirror.addr, late)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	var want []string
	for i, size := range []int{0, 1, 1024, 64 << 10, 1 << 20, 3} {
		body := bytes.Repeat([]byte{byte('a' + i)}, size)
		sum := sha256.Sum256(body)
		want = append(want, hex.EncodeToString(sum[:]))
		resp, err := client.Post("http://"+addr+"/upload", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != "legacy "+want[i] {
			t.Fatalf("size %d: answer %q, want legacy's hash %s", size, got, want[i])
		}
	}
	if got := legacy.received(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("legacy received %v, want %v", got, want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(mirror.received()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := mirror.received(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("new received %v, want %v", got, want)
	}
}

// TestRefusesWhatItCannotFrame: a chunked request, a POST without
// Content-Length, a GET with a negative Content-Length and a header line
// without a colon each close the connection with no answer and reach no
// backend; each case is refused by its own rule alone. The close may come as
// a reset (the floor closes with the request's body unread).
func TestRefusesWhatItCannotFrame(t *testing.T) {
	legacy, mirror := startBackend(t, "legacy"), startBackend(t, "new")
	addr := startFloor(t, legacy.addr, mirror.addr, false)
	for _, req := range []string{
		// with a Content-Length too, so that only the chunked rule refuses it
		"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /upload HTTP/1.1\r\nHost: x\r\n\r\nabc",
		// a GET, so that only the negative-length rule refuses it
		"GET /upload HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"POST /upload HTTP/1.1\r\nHost x\r\nContent-Length: 3\r\n\r\nabc",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(bufio.NewReader(c))
		c.Close()
		if (err != nil && !errors.Is(err, syscall.ECONNRESET)) || len(rest) != 0 {
			t.Errorf("%q: got %q, %v; want the connection closed with no answer", req, rest, err)
		}
	}
	if n := len(legacy.received()) + len(mirror.received()); n != 0 {
		t.Errorf("backends received %d requests, want 0", n)
	}
}
