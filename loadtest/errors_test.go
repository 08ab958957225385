package loadtest

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// TestTransportErrorsByKind counts failed hits by kind, and still records
// their latency.
func TestTransportErrorsByKind(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		res := attack(t, &Targets{URL: "http://" + addr}, Options{Concurrency: 2, Requests: 5})
		if res.Errors[ErrRefused] != 5 || res.Responses != 0 {
			t.Errorf("errors %v, %d responses; want 5 refused", res.Errors, res.Responses)
		}
		if res.Histogram().TotalCount() != 5 {
			t.Errorf("%d latencies recorded, want 5", res.Histogram().TotalCount())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		b := newBackend(t, func(int, http.ResponseWriter, *http.Request) {
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		})
		defer close(release) // before the backend's Close, registered earlier, runs
		res := attack(t, &Targets{URL: b.URL}, Options{Concurrency: 2, Requests: 2, Timeout: 50 * time.Millisecond})
		if res.Errors[ErrTimeout] != 2 {
			t.Errorf("errors %v, want 2 timeouts", res.Errors)
		}
		if res.Latency.Max < 50*time.Millisecond || res.Latency.Max > 2*time.Second {
			t.Errorf("timed-out hits took %v, want ≈ 50ms", res.Latency.Max)
		}
	})
	t.Run("closed", func(t *testing.T) {
		b := newBackend(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // hang up without answering
			}
		})
		res := attack(t, &Targets{URL: b.URL}, Options{Concurrency: 1, Requests: 3})
		if res.Errors[ErrClosed] != 3 {
			t.Errorf("errors %v, want 3 closed", res.Errors)
		}
	})
	t.Run("statuses are not errors", func(t *testing.T) {
		b := newBackend(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader([]int{200, 302, 503}[n%3])
		})
		res := attack(t, &Targets{URL: b.URL}, Options{Concurrency: 1, Requests: 6})
		if len(res.Errors) != 0 || res.Status[200] != 2 || res.Status[302] != 2 || res.Status[503] != 2 {
			t.Errorf("status %v, errors %v; want two each of 200, 302, 503 and no errors", res.Status, res.Errors)
		}
		if res.Success != 4 {
			t.Errorf("success %d, want 4 (2xx and 3xx)", res.Success)
		}
	})
}

func TestNewAttackerRejects(t *testing.T) {
	tests := []struct {
		why string
		t   Targets
		o   Options
	}{
		{"no URL", Targets{}, Options{}},
		{"not http", Targets{URL: "ftp://127.0.0.1/x"}, Options{}},
		{"no host", Targets{URL: "http:///x"}, Options{}},
		{"user header without users", Targets{URL: "http://127.0.0.1", UserHeader: "X-User-Id"}, Options{}},
		{"users without a header", Targets{URL: "http://127.0.0.1", Users: 10}, Options{}},
		{"bad user header name", Targets{URL: "http://127.0.0.1", UserHeader: "X User", Users: 10}, Options{}},
		{"Content-Length by hand", Targets{URL: "http://127.0.0.1", Header: http.Header{"Content-Length": {"5"}}}, Options{}},
		{"negative concurrency", Targets{URL: "http://127.0.0.1"}, Options{Concurrency: -1}},
		{"negative duration", Targets{URL: "http://127.0.0.1"}, Options{Duration: -time.Second}},
		{"negative timeout", Targets{URL: "http://127.0.0.1"}, Options{Timeout: -time.Second}},
	}
	for _, tt := range tests {
		if _, err := NewAttacker(&tt.t, tt.o); err == nil {
			t.Errorf("%s: no error", tt.why)
		}
	}
}
