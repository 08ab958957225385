package testbackend

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"
)

// newClient returns a plain net/http client with its own transport, so no
// test reuses another's connections.
func newClient(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// hashBody reads r to the end, returning its size and hex SHA-256.
func hashBody(t *testing.T, r io.Reader) (int64, string) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatalf("reading body: %v (after %d bytes)", err, n)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}
