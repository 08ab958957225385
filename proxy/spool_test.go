package proxy

import (
	"bytes"
	"io"
	"testing"

	"github.com/tandem-proxy/tandem/exchange"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
)

// A spool returns exactly the bytes written, in memory and past it on disk,
// and counts what it cannot keep.
func TestSpool(t *testing.T) {
	cases := []struct {
		why            string
		mem, disk, n   int64
		expected       int64
		wantFail       exchange.Outcome
		wantUsedAtPeak bool
	}{
		{"small body stays in a small buffer", 1 << 20, 1 << 20, 1000, 1000, "", false},
		{"chunked body outgrows the small buffer", 1 << 20, 1 << 20, 200 << 10, -1, "", false},
		{"past memory it goes to disk", 64 << 10, 4 << 20, 1 << 20, 1 << 20, "", true},
		{"a known size over both budgets is too large up front", 64 << 10, 128 << 10, 1 << 20, 1 << 20, exchange.TooLarge, false},
		{"an unknown size over both budgets fails while writing", 64 << 10, 128 << 10, 1 << 20, -1, exchange.TooLarge, false},
	}
	for _, c := range cases {
		t.Run(c.why, func(t *testing.T) {
			p, err := newSpoolPool(t.TempDir(), c.mem, c.disk)
			if err != nil {
				t.Fatal(err)
			}
			sp, fail := p.get(c.expected)
			if sp == nil {
				if fail != c.wantFail {
					t.Fatalf("get: %q, want %q", fail, c.wantFail)
				}
				return
			}
			var src bytes.Buffer
			io.Copy(io.MultiWriter(&src, sp), io.LimitReader(tb.PatternReader(3, c.n), c.n))
			if sp.failed != c.wantFail {
				t.Fatalf("failed %q, want %q", sp.failed, c.wantFail)
			}
			if c.wantFail != "" {
				if p.used.Load() != 0 {
					t.Fatalf("a failed spool still holds %d disk bytes", p.used.Load())
				}
				sp.release()
				return
			}
			if (p.used.Load() > 0) != c.wantUsedAtPeak {
				t.Fatalf("disk bytes in use %d", p.used.Load())
			}
			for i := 0; i < 2; i++ { // readable more than once (shadow, then secondary)
				got, _ := io.ReadAll(sp.reader())
				if !bytes.Equal(got, src.Bytes()) {
					t.Fatalf("read %d: %d bytes differ from the %d written", i, len(got), src.Len())
				}
			}
			if int64(cap(*sp.buf)) > c.mem {
				t.Fatalf("buffer grew to %d past spool_memory %d", cap(*sp.buf), c.mem)
			}
			sp.release()
			if p.used.Load() != 0 {
				t.Fatalf("released spool still holds %d disk bytes", p.used.Load())
			}
		})
	}
}

// Two spools sharing a disk budget: the second is refused while the first
// holds it (spool_full), and admitted again once it is released.
func TestSpoolDiskBudgetShared(t *testing.T) {
	p, _ := newSpoolPool(t.TempDir(), 1024, 100<<10)
	a, _ := p.get(-1)
	a.Write(make([]byte, 90<<10))
	if _, fail := p.get(50 << 10); fail != exchange.SpoolFull {
		t.Fatalf("second spool: %q, want spool_full", fail)
	}
	b, _ := p.get(-1)
	b.Write(make([]byte, 50<<10))
	if b.failed != exchange.SpoolFull {
		t.Fatalf("chunked second spool: %q, want spool_full", b.failed)
	}
	a.release()
	b.release()
	if c, fail := p.get(50 << 10); c == nil || fail != "" {
		t.Fatalf("after release: %q", fail)
	}
}
