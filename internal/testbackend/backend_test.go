package testbackend

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWaitCount(t *testing.T) {
	b := Start(t, "legacy", Mode{})
	if !b.WaitCount(0, 0) {
		t.Error("WaitCount(0) = false, want true at once")
	}
	if b.WaitCount(1, 10*time.Millisecond) {
		t.Error("WaitCount(1) = true with nothing sent")
	}

	client := newClient(t, 10*time.Second)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			resp, err := client.Post(fmt.Sprintf("%s/%d", b.URL, i), "text/plain", strings.NewReader("x"))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	if !b.WaitCount(3, 10*time.Second) {
		t.Fatalf("WaitCount(3) = false, Count = %d", b.Count())
	}
	wg.Wait()
	if got := b.Count(); got != 3 {
		t.Errorf("Count = %d, want 3", got)
	}

	// Once closed nothing more can arrive: WaitCount gives up at once.
	b.Close()
	start := time.Now()
	if b.WaitCount(4, time.Hour) {
		t.Error("WaitCount(4) after Close = true")
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("WaitCount after Close took %v", elapsed)
	}
}

func TestSetModeAndReset(t *testing.T) {
	b := Start(t, "new", Mode{})
	client := newClient(t, 10*time.Second)
	get := func() int {
		t.Helper()
		resp, err := client.Get(b.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != 200 {
		t.Errorf("status = %d, want 200", got)
	}
	b.SetMode(Mode{Kind: KindStatus, Status: 500})
	if got := get(); got != 500 {
		t.Errorf("status after SetMode = %d, want 500", got)
	}
	if got := b.Count(); got != 2 {
		t.Errorf("Count = %d, want 2", got)
	}
	b.Reset()
	if got := b.Count(); got != 0 {
		t.Errorf("Count after Reset = %d, want 0", got)
	}
	get()
	if got := b.Count(); got != 1 {
		t.Errorf("Count after Reset and one request = %d, want 1", got)
	}
}

func TestModeValidation(t *testing.T) {
	tests := []struct {
		name string
		m    Mode
		ok   bool
	}{
		{"zero", Mode{}, true},                                   // echo-hash, 200
		{"status", Mode{Kind: KindStatus, Status: 599}, true},    // highest allowed
		{"informational", Mode{Status: 101}, false},              // not a final answer
		{"too-high", Mode{Status: 600}, false},                   // net/http would accept it; nobody means it
		{"unknown-kind", Mode{Kind: KindStatus + 1}, false},      // not a mode
		{"negative-kind", Mode{Kind: -1}, false},                 // not a mode
		{"negative-size", Mode{Kind: KindHuge, Size: -1}, false}, // a length
		{"negative-delay", Mode{Delay: -time.Second}, false},     // a duration to wait
	}
	b := Start(t, "new", Mode{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.validate(); (err == nil) != tt.ok {
				t.Errorf("validate(%+v) = %v, want ok=%v", tt.m, err, tt.ok)
			}
			defer func() {
				if p := recover(); (p == nil) != tt.ok {
					t.Errorf("SetMode(%+v) panic = %v, want ok=%v", tt.m, p, tt.ok)
				}
			}()
			b.SetMode(tt.m)
		})
	}
}

// TestIncompleteUploadRecorded: an upload cut short is recorded with what
// was read and Complete=false.
func TestIncompleteUploadRecorded(t *testing.T) {
	for _, kind := range []Kind{KindEchoHash, KindEchoBody} {
		t.Run(kind.String(), func(t *testing.T) {
			b := Start(t, "new", Mode{Kind: kind})
			conn, err := net.Dial("tcp", b.Addr)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.WriteString(conn, "POST /up HTTP/1.1\r\nHost: x\r\nX-Request-Id: cut\r\nContent-Length: 1000\r\n\r\n0123456789")
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()
			if !b.WaitCount(1, 10*time.Second) {
				t.Fatal("truncated upload not recorded")
			}
			r := b.Received()[0]
			if r.Complete || r.BodySize != 10 || r.BodySHA256 != hexSHA256([]byte("0123456789")) || r.RequestID != "cut" {
				t.Errorf("recorded complete=%v size=%d sha=%s id=%q, want an incomplete 10-byte body", r.Complete, r.BodySize, r.BodySHA256, r.RequestID)
			}
		})
	}
}

func TestReceivedIsACopy(t *testing.T) {
	b := Start(t, "new", Mode{})
	req, _ := http.NewRequest("GET", b.URL+"/", nil)
	req.Header.Set("X-A", "1")
	resp, err := newClient(t, 10*time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	first := b.Received()
	first[0].Header.Set("X-A", "changed")
	first[0].Path = "/changed"
	if got := b.Received()[0]; got.Header.Get("X-A") != "1" || got.Path != "/" {
		t.Errorf("mutating a Received copy changed the record: %q %q", got.Header.Get("X-A"), got.Path)
	}
}

func TestCloseIdempotentAndRefuses(t *testing.T) {
	b := Start(t, "new", Mode{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(b.Close)
	}
	wg.Wait()
	b.Close()
	if _, err := newClient(t, 10*time.Second).Get(b.URL + "/"); err == nil {
		t.Error("request after Close succeeded")
	}
}

// TestLargeBodyNotBuffered streams a large upload through echo-hash and
// checks the process allocated far less than the body's size.
func TestLargeBodyNotBuffered(t *testing.T) {
	if testing.Short() {
		t.Skip("large transfer")
	}
	const size = 64 << 20
	b := Start(t, "legacy", Mode{})
	client := newClient(t, 60*time.Second)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	req, err := http.NewRequest("POST", b.URL+"/big", PatternReader(3, size))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)

	want := PatternSHA256(3, size)
	if !strings.Contains(string(body), `"sha256":"`+want+`"`) {
		t.Errorf("reply %s, want sha256 %s", body, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/8 {
		t.Errorf("allocated %d bytes moving a %d-byte body, want it streamed", alloc, size)
	}
}
