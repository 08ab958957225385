package proxy

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/tandem-proxy/tandem/exchange"
)

// spoolPool hands out spools: per-request body copies for the shadow, kept in
// memory up to memLimit bytes and then in an unlinked file under dir, within
// a disk budget shared by all spools.
type spoolPool struct {
	dir        string
	memLimit   int64
	diskBudget int64
	used       atomic.Int64 // disk bytes held by live spools
	// Two buffer classes, so a buffer never grows by appending (each growth
	// would copy the body again): small ones for small bodies, and ones of
	// exactly memLimit for the rest.
	small, large sync.Pool // *[]byte, cap smallBuf and memLimit
}

// smallBuf is the capacity of the small spool buffers.
const smallBuf = 64 << 10

func newSpoolPool(dir string, memLimit, diskBudget int64) (*spoolPool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create spool dir: %w", err)
	}
	// Spool files are unlinked as soon as they are created, so leftovers can
	// only come from an older version; remove them.
	old, _ := filepath.Glob(filepath.Join(dir, "spool-*"))
	for _, f := range old {
		os.Remove(f)
	}
	return &spoolPool{dir: dir, memLimit: memLimit, diskBudget: diskBudget}, nil
}

// spool is one request body's copy. Writes never fail: when the copy cannot
// be kept, the spool records why (a shadow outcome) and drops the bytes; the
// served request is unaffected.
type spool struct {
	p        *spoolPool
	buf      *[]byte
	f        *os.File
	fileSize int64
	size     int64
	failed   exchange.Outcome
}

// get returns a spool for a body of expected size (-1 if unknown), or the
// outcome that says why none can be had.
func (p *spoolPool) get(expected int64) (*spool, exchange.Outcome) {
	if expected > p.memLimit+p.diskBudget {
		return nil, exchange.TooLarge
	}
	if expected > p.memLimit && p.used.Load()+expected-p.memLimit > p.diskBudget {
		return nil, exchange.SpoolFull
	}
	s := &spool{p: p}
	if expected >= 0 && expected <= smallBuf || p.memLimit <= smallBuf {
		s.buf = p.getBuf(&p.small, min(smallBuf, p.memLimit))
	} else {
		s.buf = p.getBuf(&p.large, p.memLimit)
	}
	return s, ""
}

func (p *spoolPool) getBuf(pool *sync.Pool, size int64) *[]byte {
	if b, ok := pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, size)
	return &b
}

func (p *spoolPool) putBuf(b *[]byte) {
	*b = (*b)[:0]
	switch int64(cap(*b)) {
	case p.memLimit:
		p.large.Put(b)
	case min(smallBuf, p.memLimit):
		p.small.Put(b)
	}
}

func (s *spool) Write(b []byte) (int, error) {
	n := len(b)
	if s.failed != "" {
		return n, nil
	}
	s.size += int64(n)
	if s.f == nil {
		buf := *s.buf
		if len(buf)+len(b) > cap(buf) && int64(cap(buf)) < s.p.memLimit {
			// Outgrew a small buffer (a chunked body): move to a large one, once.
			large := s.p.getBuf(&s.p.large, s.p.memLimit)
			*large = append(*large, buf...)
			s.p.putBuf(s.buf)
			s.buf, buf = large, *large
		}
		if int64(len(buf)+len(b)) <= s.p.memLimit {
			*s.buf = append(buf, b...)
			return n, nil
		}
		room := int(s.p.memLimit) - len(buf)
		*s.buf = append(buf, b[:room]...)
		b = b[room:]
		f, err := os.CreateTemp(s.p.dir, "spool-*")
		if err != nil {
			s.fail(exchange.Error)
			return n, nil
		}
		os.Remove(f.Name())
		s.f = f
	}
	if s.size-s.p.memLimit > s.p.diskBudget {
		s.fail(exchange.TooLarge)
		return n, nil
	}
	if s.p.used.Add(int64(len(b))) > s.p.diskBudget {
		s.p.used.Add(-int64(len(b)))
		s.fail(exchange.SpoolFull)
		return n, nil
	}
	w, err := s.f.Write(b)
	s.fileSize += int64(w)
	if w < len(b) {
		s.p.used.Add(int64(w - len(b)))
	}
	if err != nil {
		// A full or failing disk: the shadow is skipped, the user is served.
		s.fail(exchange.SpoolFull)
	}
	return n, nil
}

// room returns the free in-memory tail of the spool, so that a body can be
// read straight into it; commit then records how much was. It is empty when
// the spool has failed or already spilled to disk.
func (s *spool) room() []byte {
	if s.failed != "" || s.f != nil || s.buf == nil {
		return nil
	}
	buf := *s.buf
	return buf[len(buf):cap(buf)]
}

// commit appends the n bytes just read into room().
func (s *spool) commit(n int) {
	*s.buf = (*s.buf)[:len(*s.buf)+n]
	s.size += int64(n)
}

func (s *spool) fail(outcome exchange.Outcome) {
	s.failed = outcome
	s.closeFile()
}

// reader returns a fresh reader over the whole spooled body. Several readers
// may be used one after another (shadow, then secondary).
func (s *spool) reader() io.Reader {
	m := bytes.NewReader(*s.buf)
	if s.f == nil {
		return m
	}
	return io.MultiReader(m, io.NewSectionReader(s.f, 0, s.fileSize))
}

func (s *spool) closeFile() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
		s.p.used.Add(-s.fileSize)
		s.fileSize = 0
	}
}

// release frees the spool's memory and disk. The spool must not be used after.
func (s *spool) release() {
	s.closeFile()
	if s.buf != nil {
		s.p.putBuf(s.buf)
		s.buf = nil
	}
}
