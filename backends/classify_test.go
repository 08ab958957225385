package backends

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestClassify(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := []struct {
		why  string
		err  error
		want Reason
	}{
		{"nil is no failure", nil, ""},
		{"fasthttp timeout", fasthttp.ErrTimeout, ReasonTimeout},
		{"dial timeout", fasthttp.ErrDialTimeout, ReasonTimeout},
		{"refused connection", dialErr, ReasonConnect},
		{"wrapped refused connection", fmt.Errorf("x: %w", dialErr), ReasonConnect},
		{"closed before the first byte", fasthttp.ErrConnectionClosed, ReasonReset},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, ReasonReset},
		{"short body", io.ErrUnexpectedEOF, ReasonReset},
		{"pool exhausted", fasthttp.ErrNoFreeConns, ReasonBusy},
		{"garbage", errors.New("cannot parse response status line"), ReasonProtocol},
	}
	for _, c := range cases {
		if got := Classify(c.err); got != c.want {
			t.Errorf("%s: Classify(%v) = %q, want %q", c.why, c.err, got, c.want)
		}
	}
	if !IsConnectError(dialErr) || IsConnectError(fasthttp.ErrTimeout) {
		t.Error("IsConnectError")
	}
}
