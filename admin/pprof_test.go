package admin

import (
	"bytes"
	"testing"
)

// TestPprofNeedsToken: Go's profiles reveal internals (and a CPU profile
// costs CPU), so they sit behind the same token as the API.
func TestPprofNeedsToken(t *testing.T) {
	base := startUIServer(t, nil)
	for _, auth := range []string{"", "Bearer wrong"} {
		r := uiGet(t, "GET", base+"/debug/pprof/goroutine?debug=1", auth)
		if r.status != 401 || bytes.Contains(r.body, []byte("goroutine")) {
			t.Fatalf("auth %q: status %d body %.80q, want 401 without profile data", auth, r.status, r.body)
		}
	}
	r := uiGet(t, "GET", base+"/debug/pprof/goroutine?debug=1", "Bearer "+uiTestToken)
	if r.status != 200 || !bytes.Contains(r.body, []byte("goroutine profile:")) {
		t.Fatalf("with token: status %d body %.80q, want the goroutine profile", r.status, r.body)
	}
}
