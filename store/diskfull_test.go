package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
)

// logRecorder is a slog.Handler that keeps every record's level and message.
type logRecorder struct {
	mu   sync.Mutex
	recs []string // "LEVEL message k=v ..."
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.recs...)
}

// A full disk (SQLite's "database or disk is full", forced with
// max_page_count) is logged once when writes start failing, however many
// batches fail, and once when they succeed again, with what was lost; the
// lost items are counted with reason disk_full. A second episode is logged
// again. Before, nothing was logged at all.
func TestDiskFullLoggedOncePerEpisode(t *testing.T) {
	rec := &logRecorder{}
	s := openTest(t, Options{noJanitor: true, backoff: time.Millisecond, Logger: slog.New(rec)})
	record(t, s, exch("r", sec(0), compare.OutcomeMatch))
	flush(t, s)
	setMaxPages := func(n string) {
		t.Helper()
		s.wmu.Lock()
		defer s.wmu.Unlock()
		if _, err := s.wdb.ExecContext(context.Background(), "PRAGMA max_page_count = "+n); err != nil {
			t.Fatal(err)
		}
	}
	var pages string
	s.wmu.Lock()
	s.wdb.QueryRowContext(context.Background(), "PRAGMA page_count").Scan(&pages)
	s.wmu.Unlock()

	failBatches := func(episode int) {
		t.Helper()
		setMaxPages(pages)
		for i := 0; i < 4; i++ {
			big := exch("r", sec(10*episode+i), compare.OutcomeMismatch, diff(compare.KindBody, "$.body", false))
			big.Legacy = resp(200, strings.Repeat("b", 256<<10))
			record(t, s, big)
			if err := s.Flush(); err == nil || !strings.Contains(err.Error(), "full") {
				t.Fatalf("episode %d batch %d on a full disk: %v, want a 'full' error", episode, i, err)
			}
		}
		setMaxPages("1073741823")
		record(t, s, exch("r", sec(10*episode+5), compare.OutcomeMatch))
		flush(t, s)
	}
	count := func(prefix string) int {
		n := 0
		for _, l := range rec.lines() {
			if strings.HasPrefix(l, prefix) {
				n++
			}
		}
		return n
	}
	const (
		failing   = "ERROR cannot write to the diff store"
		recovered = "INFO diff store writes succeed again"
	)
	failBatches(1)
	if count(failing) != 1 || count(recovered) != 1 {
		t.Fatalf("after one episode of 4 failed batches: %d failure and %d recovery lines, want 1 and 1:\n%s",
			count(failing), count(recovered), strings.Join(rec.lines(), "\n"))
	}
	for _, l := range rec.lines() {
		if strings.HasPrefix(l, failing) && (!strings.Contains(l, "reason=disk_full") || !strings.Contains(l, "path="+s.Path())) {
			t.Errorf("the failure line lacks the reason or the path: %s", l)
		}
		if strings.HasPrefix(l, recovered) && !strings.Contains(l, "lost_items=4") {
			t.Errorf("the recovery line does not say 4 items were lost: %s", l)
		}
	}
	st := s.Stats()
	if st.WriteErrors != 4 || st.WriteErrorsBy != [3]int64{4, 0, 0} || WriteErrorReasons[0] != WriteErrorDiskFull {
		t.Fatalf("stats %+v, want 4 write errors, all disk_full", st)
	}
	failBatches(2)
	if count(failing) != 2 || count(recovered) != 2 {
		t.Fatalf("after two episodes: %d failure and %d recovery lines, want 2 and 2", count(failing), count(recovered))
	}
	if st := s.Stats(); st.WriteErrorsBy[0] != 8 || st.Written != 3 {
		t.Fatalf("stats %+v, want 8 disk_full errors and 3 written", st)
	}
}

// Errors are classified into the closed set.
func TestWriteErrorReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("cannot write: %w", syscall.ENOSPC), WriteErrorDiskFull},
		{fmt.Errorf("cannot write: %w", syscall.EDQUOT), WriteErrorDiskFull},
		{fmt.Errorf("cannot write: %w", syscall.EIO), WriteErrorIO},
		{fmt.Errorf("cannot write: %w", syscall.EROFS), WriteErrorIO},
		{context.Canceled, WriteErrorOther},
	} {
		if got := writeErrorReason(c.err); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
	}
}
