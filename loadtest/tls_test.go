package loadtest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHTTPS attacks a TLS backend through the attacker's own dialer, which
// does the handshake, and fails every hit when the certificate is not
// trusted.
func TestHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "not TLS", http.StatusBadRequest)
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	trusted := srv.Client().Transport.(*http.Transport).TLSClientConfig

	res := attack(t, &Targets{URL: srv.URL}, Options{Concurrency: 2, Requests: 10, TLSConfig: trusted})
	if res.Status[200] != 10 {
		t.Errorf("trusted: status %v, errors %v; want 10 × 200", res.Status, res.Errors)
	}
	res = attack(t, &Targets{URL: srv.URL}, Options{Concurrency: 1, Requests: 3})
	if res.Errors[ErrTLS] != 3 {
		t.Errorf("untrusted: errors %v, want 3 %s", res.Errors, ErrTLS)
	}
}
