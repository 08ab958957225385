package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
)

// A credential the client sent is scrubbed wherever a backend echoed it:
// another header, a difference value, a body.
func TestSecretsScrubbedByValue(t *testing.T) {
	s := openTest(t, Options{})
	const token, cookie = "SECRET-TOKEN-123", "COOKIE-VALUE-456"
	ex := exch("r", time.Now(), compare.OutcomeMismatch, compare.Difference{
		Kind: compare.KindHeader, Path: "$.header.X-Echo-Auth", Legacy: "Bearer " + token, New: "",
	})
	ex.Legacy = resp(200, `{"echo":"`+cookie+`"}`, compare.HeaderField{Name: "X-Echo-Auth", Value: "Bearer " + token})
	ex.New = resp(200, `{"echo":"x"}`)
	ex.Secrets = []string{"Bearer " + token, token, cookie}
	record(t, s, ex)
	flush(t, s)
	ss, err := s.Samples(SampleFilter{Route: "r"})
	if err != nil || len(ss) != 1 {
		t.Fatalf("samples %v %v", ss, err)
	}
	got, err := s.Sample(ss[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if v := got.Legacy.Header[0].Value; strings.Contains(v, token) || !strings.Contains(v, Redacted) {
		t.Errorf("echoed header stored as %q", v)
	}
	if v := got.Diffs[0].Legacy; strings.Contains(v, token) {
		t.Errorf("difference value stored as %q", v)
	}
	if bytes.Contains(got.Legacy.Body, []byte(cookie)) {
		t.Errorf("body stored with the cookie: %s", got.Legacy.Body)
	}
	s.Close()
	files, _ := filepath.Glob(s.Path() + "*")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(token)) || bytes.Contains(b, []byte(cookie)) {
			t.Errorf("%s holds a secret", f)
		}
	}
}
