package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/exchange"
	tb "github.com/tandem-proxy/tandem/internal/testbackend"
	"github.com/tandem-proxy/tandem/store"
)

// countingStore is a DiffStore of another kind than the default: a
// store.Store in a directory of its own, with its calls counted.
type countingStore struct {
	*store.Store
	records, counters, closes atomic.Int64
}

func (c *countingStore) Record(ex *exchange.Exchange) bool {
	c.records.Add(1)
	return c.Store.Record(ex)
}

func (c *countingStore) AddCounters(route string, at time.Time, d store.Counters) bool {
	c.counters.Add(1)
	return c.Store.AddCounters(route, at, d)
}

func (c *countingStore) Close() error {
	c.closes.Add(1)
	return c.Store.Close()
}

func newCountingStore(t *testing.T) *countingStore {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "other.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &countingStore{Store: s}
}

// An instance given Options.Store uses it for everything (the comparisons,
// the counters, the admin reports), opens no store.db of its own, and
// closes it in Close.
func TestOptionsStore(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfg, _ := loadConfig(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
data_dir: {{data}}
shutdown_timeout: 10s
backends:
  legacy: {url: %q}
  new: {url: %q}
routes: [{name: up, legacy: legacy, new: new, mirror: 100}]
`, legacy.URL, newb.URL))
	st := newCountingStore(t)
	in, err := Open(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if in.Store() != DiffStore(st) {
		t.Fatal("Store() is not the store Options gave")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	const n = 3
	for i := 0; i < n; i++ {
		resp, err := http.Post("http://"+in.Addr()+"/x", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Run returned after the data plane drained (comparisons included)
	// and the final counter flush.
	if got := st.records.Load(); got != n {
		t.Errorf("the given store recorded %d exchanges, want %d", got, n)
	}
	if st.counters.Load() == 0 {
		t.Error("the counter flush never reached the given store")
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	reps, err := st.Report("up", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Requests != n || reps[0].Compared != n {
		t.Errorf("the given store reports %+v, want %d requests and comparisons on up", reps, n)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "store.db")); !os.IsNotExist(err) {
		t.Errorf("store.db in data_dir: %v, want none (a store was given)", err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if got := st.closes.Load(); got != 1 {
		t.Errorf("Close closed the given store %d times, want 1", got)
	}
}

// A failed Open closes the store it was given: the instance owned it.
func TestOptionsStoreClosedOnFailedOpen(t *testing.T) {
	cfg, _ := takenListenConfig(t)
	st := newCountingStore(t)
	if _, err := Open(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: st}); err == nil {
		t.Fatal("Open on a taken listener succeeded")
	}
	if got := st.closes.Load(); got != 1 {
		t.Errorf("the failed Open closed the given store %d times, want 1", got)
	}
}
