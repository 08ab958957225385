package testbackend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// EchoHashResponse is the JSON body KindEchoHash answers with.
type EchoHashResponse struct {
	SHA256    string `json:"sha256"`     // hex SHA-256 of the request body
	Size      int64  `json:"size"`       // request body bytes
	RequestID string `json:"request_id"` // X-Request-Id of the request
	Shadow    bool   `json:"shadow"`     // X-Tandem-Shadow == "1"
	Method    string `json:"method"`
	Path      string `json:"path"`
}

// garbage is what KindGarbage writes: no HTTP status line, so any HTTP client
// fails to parse it.
const garbage = "\x00\x01\x02 tandem testbackend: this is not HTTP \xff\xfe\r\n\r\n"

// copyBufSize is the read size for request bodies and pattern streams.
const copyBufSize = 64 << 10

func (b *Backend) serveHTTP(w http.ResponseWriter, r *http.Request) {
	m, ok := b.begin()
	if !ok {
		panic(http.ErrAbortHandler) // closing: drop the connection
	}
	defer b.inflight.Done()
	w.Header().Set("X-Backend", b.Name)

	if m.Kind == KindEchoBody {
		b.echoBody(w, r, m)
		return
	}
	rec := b.readBody(r)
	if !rec.Complete {
		// The request stream is broken; there is nobody sensible to answer.
		panic(http.ErrAbortHandler)
	}
	if !b.wait(r.Context(), m.Delay) {
		panic(http.ErrAbortHandler)
	}
	switch m.Kind {
	case KindEchoHash:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(m.status())
		_ = json.NewEncoder(w).Encode(EchoHashResponse{
			SHA256:    rec.BodySHA256,
			Size:      rec.BodySize,
			RequestID: rec.RequestID,
			Shadow:    rec.Shadow,
			Method:    rec.Method,
			Path:      rec.Path,
		})
	case KindHang:
		select {
		case <-r.Context().Done():
		case <-b.done:
		}
		panic(http.ErrAbortHandler) // never answer, not even an empty 200
	case KindReset:
		conn := hijack(w)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST instead of FIN
		}
		_ = conn.Close()
	case KindGarbage:
		conn := hijack(w)
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, garbage)
		_ = conn.Close()
	case KindHuge:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(m.Size, 10))
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, copyBufSize)
		// onlyWriter hides ResponseWriter's ReaderFrom so the copy uses buf.
		if _, err := io.CopyBuffer(onlyWriter{w}, PatternReader(m.Seed, m.Size), buf); err != nil {
			panic(http.ErrAbortHandler)
		}
	case KindStatus:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(m.status())
		_, _ = fmt.Fprintf(w, "%d %s\n", m.status(), http.StatusText(m.status()))
	default:
		panic("BUG: testbackend: unhandled kind " + m.Kind.String())
	}
}

type onlyWriter struct{ io.Writer }

// hijack takes the connection over from net/http or aborts the handler.
func hijack(w http.ResponseWriter) net.Conn {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	return conn
}

// wait sleeps for d and reports whether it ran to the end rather than being
// cut short by ctx or Close.
func (b *Backend) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-b.done:
		return false
	}
}

// readBody hashes the whole body while reading it and records the request.
func (b *Backend) readBody(r *http.Request) Received {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r.Body, make([]byte, copyBufSize))
	return b.finish(r, h, n, err == nil)
}

// echoBody streams the body back as it reads it, hashing on the way.
func (b *Backend) echoBody(w http.ResponseWriter, r *http.Request, m Mode) {
	rc := http.NewResponseController(w)
	// HTTP/1 handlers may otherwise lose the request body once the response
	// starts; echoing needs both directions at once.
	_ = rc.EnableFullDuplex()
	if !b.wait(r.Context(), m.Delay) {
		b.finish(r, sha256.New(), 0, false)
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(m.status())
	_ = rc.Flush()

	h := sha256.New()
	buf := make([]byte, copyBufSize)
	var size int64
	complete := false
	for {
		n, rerr := r.Body.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			size += int64(n)
			if _, werr := w.Write(buf[:n]); werr != nil {
				break
			}
			if ferr := rc.Flush(); ferr != nil {
				break
			}
		}
		if rerr == io.EOF {
			complete = true
			break
		}
		if rerr != nil {
			break
		}
	}
	b.finish(r, h, size, complete)
	if !complete {
		// Abort rather than end the chunked body cleanly, so the client
		// sees a broken response instead of a short one.
		panic(http.ErrAbortHandler)
	}
}

// finish records the request once its body has been read (or given up on).
func (b *Backend) finish(r *http.Request, h hash.Hash, n int64, complete bool) Received {
	rec := Received{
		Method:        r.Method,
		Path:          r.URL.Path,
		Host:          r.Host,
		RawQuery:      r.URL.RawQuery,
		Header:        r.Header.Clone(),
		ContentLength: r.ContentLength,
		RequestID:     r.Header.Get("X-Request-Id"),
		Shadow:        r.Header.Get("X-Tandem-Shadow") == "1",
		BodySHA256:    hex.EncodeToString(h.Sum(nil)),
		BodySize:      n,
		Complete:      complete,
		At:            time.Now(),
	}
	b.record(rec)
	return rec
}
