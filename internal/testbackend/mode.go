package testbackend

import (
	"fmt"
	"time"
)

// Kind says what a Backend does with a request.
type Kind int

const (
	// KindEchoHash reads the whole body and answers JSON (see EchoHashResponse)
	// with Content-Type application/json.
	KindEchoHash Kind = iota
	// KindEchoBody streams the request body back as the response body
	// (application/octet-stream, chunked), flushing as it goes, without
	// buffering the body.
	KindEchoBody
	// KindHang reads the body, then blocks until the request's context is done
	// or the backend is closed. It never answers.
	KindHang
	// KindReset reads the body, then hijacks the connection and closes it with
	// SO_LINGER 0, so the client sees a TCP RST.
	KindReset
	// KindGarbage reads the body, then hijacks the connection, writes bytes
	// that are not an HTTP response, and closes it.
	KindGarbage
	// KindHuge reads the body, then streams Mode.Size bytes of
	// PatternReader(Mode.Seed, Mode.Size) with Content-Length set.
	KindHuge
	// KindStatus reads the body, then answers Mode.Status with a short
	// text/plain body.
	KindStatus
)

var kindNames = [...]string{
	KindEchoHash: "echo-hash",
	KindEchoBody: "echo-body",
	KindHang:     "hang",
	KindReset:    "reset",
	KindGarbage:  "garbage",
	KindHuge:     "huge",
	KindStatus:   "status",
}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Mode is what a Backend does with each request. A request uses the Mode in
// force when it arrived; SetMode changes it for later requests only.
type Mode struct {
	// Kind is what to do. The zero value is KindEchoHash.
	Kind Kind
	// Delay is how long to wait before answering. Kinds that read the whole
	// body first wait after reading (and recording) it; KindEchoBody waits
	// before it reads anything. A wait cut short by the client going away or
	// by Close drops the connection without an answer. Zero means no wait.
	Delay time.Duration
	// Status is the status code for KindStatus, KindEchoHash and
	// KindEchoBody. Zero means 200. Otherwise it must be in [200, 599].
	Status int
	// Size is the number of response body bytes KindHuge streams. Zero means
	// an empty body; negative is invalid.
	Size int64
	// Seed selects the pattern KindHuge streams: PatternReader(Seed, Size).
	// Zero is a valid seed like any other.
	Seed int64
}

func (m Mode) validate() error {
	if m.Kind < 0 || int(m.Kind) >= len(kindNames) {
		return fmt.Errorf("testbackend: unknown mode kind %d", int(m.Kind))
	}
	if m.Delay < 0 {
		return fmt.Errorf("testbackend: negative delay %v", m.Delay)
	}
	if m.Status != 0 && (m.Status < 200 || m.Status > 599) {
		return fmt.Errorf("testbackend: status %d outside [200, 599]", m.Status)
	}
	if m.Size < 0 {
		return fmt.Errorf("testbackend: negative size %d", m.Size)
	}
	return nil
}

func (m Mode) status() int {
	if m.Status == 0 {
		return 200
	}
	return m.Status
}
