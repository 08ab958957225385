package samples

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Flavour selects which implementation of the image-upload service runs.
type Flavour string

const (
	// Legacy is the service being replaced: Catmull-Rom resampling, EXIF
	// orientation honoured, transparency kept (PNG thumbnails).
	Legacy Flavour = "legacy"
	// New is its replacement: bilinear resampling (harmless pixel
	// differences), and two real regressions: EXIF orientation ignored,
	// transparency flattened onto black (JPEG thumbnails).
	New Flavour = "new"
)

// ParseFlavour returns the Flavour named s ("legacy" or "new").
func ParseFlavour(s string) (Flavour, error) {
	switch f := Flavour(s); f {
	case Legacy, New:
		return f, nil
	}
	return "", fmt.Errorf("unknown flavour %q: want %q or %q", s, Legacy, New)
}

// Limits of the service.
const (
	// MaxUploadBytes is the largest upload body; larger gets 413.
	MaxUploadBytes = 32 << 20
	// MaxPixels is the largest width × height decoded, checked on the
	// image header before any pixel buffer is allocated; larger gets 413.
	MaxPixels = 40_000_000
	// ThumbSide is the longest side of a thumbnail, in pixels. Smaller
	// images keep their size.
	ThumbSide = 128
	// JPEGQuality is the quality of JPEG thumbnails.
	JPEGQuality = 85
	// StoreEntries is how many thumbnails are kept for GET /thumb/{id};
	// the least recently used go first.
	StoreEntries = 1000
)

// UploadResponse is the JSON answer to a successful upload.
type UploadResponse struct {
	ID          string     `json:"id"`
	Width       int        `json:"width"`
	Height      int        `json:"height"`
	Format      string     `json:"format"` // "jpeg" or "png"
	SHA256      string     `json:"sha256"` // hex SHA-256 of the thumbnail bytes
	Bytes       int        `json:"bytes"`
	ProcessedAt string     `json:"processed_at"` // RFC 3339 with nanoseconds, UTC
	Source      SourceInfo `json:"source"`
}

// ErrorResponse is the JSON answer to a refused request.
type ErrorResponse struct {
	Error string `json:"error"`
}

// service is the handler behind NewService.
type service struct {
	flavour Flavour
	store   *thumbStore
	// decodes bounds the images being decoded at once, and so the memory
	// held by pixel buffers (up to 4 × MaxPixels bytes each).
	decodes chan struct{}
	last    atomic.Int64 // last processed_at, in Unix nanoseconds
}

// NewService returns the image-upload service of flavour f:
//
//	POST|PUT /upload[/...]  body: the raw image (JPEG, PNG, GIF or WebP)
//	                        → 200 UploadResponse, or 400/413 ErrorResponse
//	GET /thumb/{id}         → the thumbnail bytes (image/jpeg or image/png), 404 if unknown
//	GET /healthz            → 200 "ok"
//
// Anything else gets a 404 or 405 ErrorResponse. It panics if f is not
// Legacy or New (see ParseFlavour).
func NewService(f Flavour) http.Handler {
	if _, err := ParseFlavour(string(f)); err != nil {
		panic("samples.NewService: " + err.Error())
	}
	return &service{
		flavour: f,
		store:   newThumbStore(StoreEntries),
		decodes: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
	}
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/upload" || strings.HasPrefix(p, "/upload/"):
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: POST the image")
			return
		}
		s.upload(w, r, false)
	case p == "/thumbnail" || strings.HasPrefix(p, "/thumbnail/"):
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: POST the image")
			return
		}
		s.upload(w, r, true)
	case strings.HasPrefix(p, "/thumb/"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
			return
		}
		s.thumb(w, r, strings.TrimPrefix(p, "/thumb/"))
	case p == "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	default:
		writeError(w, http.StatusNotFound, "no such endpoint: "+p)
	}
}

// upload makes the thumbnail of the posted image and answers JSON about it,
// or, when asImage is set (POST /thumbnail), the thumbnail itself with its id
// and processing time in the X-Thumb-Id and X-Processed-At headers.
func (s *service) upload(w http.ResponseWriter, r *http.Request, asImage bool) {
	if r.ContentLength > MaxUploadBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is larger than the %d allowed", r.ContentLength, MaxUploadBytes))
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than the %d bytes allowed", MaxUploadBytes))
		} else {
			writeError(w, http.StatusBadRequest, "cannot read body: "+err.Error())
		}
		return
	}
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, "empty body: POST the image bytes")
		return
	}
	format, _, rerr := checkHeader(body)
	if rerr != nil {
		writeError(w, rerr.status, rerr.msg)
		return
	}
	if err := s.acquire(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, "request cancelled while waiting to decode")
		return
	}
	t, rerr := makeThumbnail(body, format, s.flavour)
	<-s.decodes
	if rerr != nil {
		writeError(w, rerr.status, rerr.msg)
		return
	}
	sum := sha256.Sum256(t.data)
	id := newID()
	s.store.put(id, t.data, t.format)
	if asImage {
		h := w.Header()
		h.Set("Content-Type", "image/"+t.format)
		h.Set("Content-Length", strconv.Itoa(len(t.data)))
		h.Set("X-Thumb-Id", id)
		h.Set("X-Processed-At", s.now().Format(time.RFC3339Nano))
		w.WriteHeader(http.StatusOK)
		w.Write(t.data)
		return
	}
	writeJSON(w, http.StatusOK, UploadResponse{
		ID:          id,
		Width:       t.width,
		Height:      t.height,
		Format:      t.format,
		SHA256:      hex.EncodeToString(sum[:]),
		Bytes:       len(t.data),
		ProcessedAt: s.now().Format(time.RFC3339Nano),
		Source:      t.source,
	})
}

// readBody reads the whole request body, at most MaxUploadBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, MaxUploadBytes)
	if n := r.ContentLength; n > 0 {
		buf := make([]byte, n+1) // one more to see a body longer than announced
		k, err := io.ReadFull(rd, buf)
		switch {
		case err == nil:
			return nil, errors.New("body longer than its Content-Length")
		case int64(k) == n && (err == io.ErrUnexpectedEOF || err == io.EOF):
			return buf[:k], nil
		case err == io.ErrUnexpectedEOF || err == io.EOF:
			return nil, fmt.Errorf("body of %d bytes shorter than its Content-Length %d", k, n)
		}
		return nil, err
	}
	return io.ReadAll(rd)
}

func (s *service) acquire(ctx context.Context) error {
	select {
	case s.decodes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// now returns the current time, strictly after the last one it returned,
// so that processed_at differs on every call.
func (s *service) now() time.Time {
	for {
		last, t := s.last.Load(), time.Now().UnixNano()
		if t <= last {
			t = last + 1
		}
		if s.last.CompareAndSwap(last, t) {
			return time.Unix(0, t).UTC()
		}
	}
}

func (s *service) thumb(w http.ResponseWriter, r *http.Request, id string) {
	data, format, ok := s.store.get(id)
	if !ok {
		writeError(w, http.StatusNotFound, "no thumbnail with id "+strconv.Quote(id))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/"+format)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Cache-Control", "private, max-age=3600")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

// newID returns a random 128-bit id in hex.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen: only plain structs are written
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode response"}`)
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}

// thumbStore keeps the last thumbnails, least recently used evicted first.
type thumbStore struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *storedThumb, most recently used at the front
	byID  map[string]*list.Element
}

type storedThumb struct {
	id, format string
	data       []byte
}

func newThumbStore(n int) *thumbStore {
	return &thumbStore{max: n, order: list.New(), byID: make(map[string]*list.Element, n)}
}

func (st *thumbStore) put(id string, data []byte, format string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if e, ok := st.byID[id]; ok {
		e.Value = &storedThumb{id, format, data}
		st.order.MoveToFront(e)
		return
	}
	st.byID[id] = st.order.PushFront(&storedThumb{id, format, data})
	for st.order.Len() > st.max {
		e := st.order.Back()
		st.order.Remove(e)
		delete(st.byID, e.Value.(*storedThumb).id)
	}
}

func (st *thumbStore) get(id string) ([]byte, string, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := st.byID[id]
	if !ok {
		return nil, "", false
	}
	st.order.MoveToFront(e)
	t := e.Value.(*storedThumb)
	return t.data, t.format, true
}

func (st *thumbStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.order.Len()
}
