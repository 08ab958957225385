package testbackend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestEchoHash(t *testing.T) {
	tests := []struct {
		name       string
		status     int // Mode.Status
		wantStatus int
	}{
		{"default", 0, 200},    // zero Status means 200
		{"override", 201, 201}, // a non-zero Status applies to echo kinds too
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Start(t, "legacy", Mode{Kind: KindEchoHash, Status: tt.status})
			body := "hello, tandem"
			req, err := http.NewRequest("POST", b.URL+"/upload/x?user=7", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Request-Id", "rid-1")
			req.Header.Set("X-Tandem-Shadow", "1")
			req.Header.Set("X-User-Id", "u7")
			resp, err := newClient(t, 10*time.Second).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if got := resp.Header.Get("X-Backend"); got != "legacy" {
				t.Errorf("X-Backend = %q, want legacy", got)
			}
			var got EchoHashResponse
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			want := EchoHashResponse{
				SHA256:    hexSHA256([]byte(body)),
				Size:      int64(len(body)),
				RequestID: "rid-1",
				Shadow:    true,
				Method:    "POST",
				Path:      "/upload/x",
			}
			if got != want {
				t.Errorf("reply = %+v, want %+v", got, want)
			}

			recs := b.Received()
			if len(recs) != 1 {
				t.Fatalf("recorded %d requests, want 1", len(recs))
			}
			r := recs[0]
			if r.Method != "POST" || r.Path != "/upload/x" || r.RawQuery != "user=7" || r.Host != b.Addr {
				t.Errorf("recorded method/path/query/host = %q %q %q %q", r.Method, r.Path, r.RawQuery, r.Host)
			}
			if r.RequestID != "rid-1" || !r.Shadow || r.Header.Get("X-User-Id") != "u7" {
				t.Errorf("recorded id/shadow/header = %q %v %q", r.RequestID, r.Shadow, r.Header.Get("X-User-Id"))
			}
			if r.BodySHA256 != want.SHA256 || r.BodySize != want.Size || !r.Complete || r.ContentLength != want.Size {
				t.Errorf("recorded body = %s/%d complete=%v cl=%d", r.BodySHA256, r.BodySize, r.Complete, r.ContentLength)
			}
			if r.At.IsZero() {
				t.Error("recorded At is zero")
			}
		})
	}
}

func TestEchoHashNotShadowWithoutHeader(t *testing.T) {
	b := Start(t, "new", Mode{})
	resp, err := newClient(t, 10*time.Second).Get(b.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got EchoHashResponse
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Shadow || got.Size != 0 || got.SHA256 != hexSHA256(nil) || got.Method != "GET" {
		t.Errorf("reply = %+v, want an unshadowed empty GET", got)
	}
}

func TestEchoBodyReturnsIdenticalBytes(t *testing.T) {
	const size = 1 << 20
	want, err := io.ReadAll(PatternReader(7, size))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		body   io.Reader
		length int64
	}{
		{"content-length", bytes.NewReader(want), size},         // framed upload
		{"chunked", io.MultiReader(PatternReader(7, size)), -1}, // unknown length
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Start(t, "new", Mode{Kind: KindEchoBody})
			req, err := http.NewRequest("PUT", b.URL+"/echo", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tt.length
			resp, err := newClient(t, 30*time.Second).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
				t.Errorf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("echoed %d bytes, not identical to the %d sent", len(got), len(want))
			}
			if !b.WaitCount(1, 5*time.Second) {
				t.Fatal("request not recorded")
			}
			r := b.Received()[0]
			if r.BodySize != size || r.BodySHA256 != hexSHA256(want) || !r.Complete || r.ContentLength != tt.length {
				t.Errorf("recorded %d bytes %s complete=%v cl=%d", r.BodySize, r.BodySHA256, r.Complete, r.ContentLength)
			}
		})
	}
}

// TestEchoBodyStreams shows the echo is not buffered: the first bytes come
// back while the client is still holding the rest of the upload.
func TestEchoBodyStreams(t *testing.T) {
	b := Start(t, "new", Mode{Kind: KindEchoBody})
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() }) // runs before b.Close, unblocking the transport on early failure
	req, err := http.NewRequest("POST", b.URL+"/", pr)
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := pw.Write([]byte("first")) // returns once the transport has taken it
		wrote <- err
	}()
	resp, err := newClient(t, 10*time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "first" {
		t.Errorf("first echoed bytes = %q, want %q", got, "first")
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second" {
		t.Errorf("rest = %q, %v; want %q", rest, err, "second")
	}
}

func TestHangTimesOutOnClient(t *testing.T) {
	b := Start(t, "new", Mode{Kind: KindHang})
	_, err := newClient(t, 200*time.Millisecond).Post(b.URL+"/", "text/plain", strings.NewReader("x"))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a client timeout", err)
	}
	if !b.WaitCount(1, 5*time.Second) || !b.Received()[0].Complete {
		t.Error("hung request not recorded with its complete body")
	}
}

func TestHangUnblockedByClose(t *testing.T) {
	b := Start(t, "new", Mode{Kind: KindHang})
	client := newClient(t, 0)
	errc := make(chan error, 1)
	go func() {
		resp, err := client.Get(b.URL + "/")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	if !b.WaitCount(1, 5*time.Second) {
		t.Fatal("request never arrived")
	}
	b.Close() // returns only once the hung handler has returned
	if err := <-errc; err == nil {
		t.Error("hung request got an answer after Close, want an error")
	}
}

func TestResetGivesClientError(t *testing.T) {
	b := Start(t, "new", Mode{Kind: KindReset})
	_, err := newClient(t, 10*time.Second).Post(b.URL+"/", "text/plain", strings.NewReader("body"))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("err = %v, want connection reset", err)
	}
	if !b.WaitCount(1, 5*time.Second) {
		t.Error("request not recorded")
	}
}

func TestGarbageGivesClientError(t *testing.T) {
	b := Start(t, "new", Mode{Kind: KindGarbage})
	_, err := newClient(t, 10*time.Second).Post(b.URL+"/", "text/plain", strings.NewReader("body"))
	if err == nil || !strings.Contains(err.Error(), "malformed HTTP") {
		t.Fatalf("err = %v, want a malformed HTTP response error", err)
	}

	// On the wire: exactly the garbage bytes, then EOF.
	conn, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != garbage {
		t.Errorf("wire bytes = %q, want %q", got, garbage)
	}
}

func TestHugeStreamsExactlySize(t *testing.T) {
	tests := []struct {
		name string
		size int64
	}{
		{"empty", 0},       // zero Size is an empty body
		{"odd", 3<<20 + 5}, // not a multiple of the word or buffer size
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Start(t, "legacy", Mode{Kind: KindHuge, Size: tt.size, Seed: 42})
			resp, err := newClient(t, 30*time.Second).Get(b.URL + "/big")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ContentLength != tt.size {
				t.Errorf("Content-Length = %d, want %d", resp.ContentLength, tt.size)
			}
			n, sum := hashBody(t, resp.Body)
			if n != tt.size || sum != PatternSHA256(42, tt.size) {
				t.Errorf("got %d bytes %s, want %d bytes %s", n, sum, tt.size, PatternSHA256(42, tt.size))
			}
		})
	}
}

func TestStatus(t *testing.T) {
	b := Start(t, "new", Mode{Kind: KindStatus, Status: 503})
	resp, err := newClient(t, 10*time.Second).Post(b.URL+"/", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || string(body) != "503 Service Unavailable\n" {
		t.Errorf("got %d %q, want 503 with a short reason", resp.StatusCode, body)
	}
	if got := b.Received(); len(got) != 1 || got[0].BodySize != 4 || !got[0].Complete {
		t.Errorf("recorded %+v", got)
	}
}

func TestDelay(t *testing.T) {
	const delay = 50 * time.Millisecond
	b := Start(t, "new", Mode{Kind: KindStatus, Status: 202, Delay: delay})
	start := time.Now()
	resp, err := newClient(t, 10*time.Second).Get(b.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if elapsed := time.Since(start); elapsed < delay || resp.StatusCode != 202 {
		t.Errorf("answered %d after %v, want 202 after at least %v", resp.StatusCode, elapsed, delay)
	}
}

// TestDelayRecordsFirst shows a delayed request is recorded before the
// answer, and that a client giving up ends the wait.
func TestDelayRecordsFirst(t *testing.T) {
	b := Start(t, "new", Mode{Kind: KindEchoHash, Delay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", b.URL+"/", strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	client := newClient(t, 0)
	errc := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	if !b.WaitCount(1, 5*time.Second) {
		t.Fatal("delayed request not recorded before answering")
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestClosedURLRefuses(t *testing.T) {
	u := ClosedURL(t)
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("ClosedURL = %q, want http://127.0.0.1:port", u)
	}
	if _, err := strconv.Atoi(strings.TrimPrefix(u, "http://127.0.0.1:")); err != nil {
		t.Fatalf("ClosedURL = %q: bad port", u)
	}
	_, err := newClient(t, 10*time.Second).Get(u + "/")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("err = %v, want connection refused", err)
	}
}
