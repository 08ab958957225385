package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-proxy/tandem/compare"
)

// At most SamplesPerPath samples are charged to each (route, kind, path);
// an exchange is kept while any of its paths has room.
func TestSampleCapPerPath(t *testing.T) {
	s := openTest(t, Options{SamplesPerPath: 2})
	a := diff(compare.KindJSON, "$.a", false)
	b := diff(compare.KindJSON, "$.b", false)
	for i := range 5 {
		record(t, s, exch("r", sec(i), compare.OutcomeMismatch, a))
	}
	flush(t, s)
	if n := sampleCount(t, s, SampleFilter{}); n != 2 {
		t.Fatalf("after 5 mismatches on $.a: %d samples, want 2", n)
	}
	// $.a is full but $.b has room: kept, and charged to $.b only.
	record(t, s, exch("r", sec(10), compare.OutcomeMismatch, a, b))
	record(t, s, exch("r", sec(11), compare.OutcomeMismatch, a, b))
	record(t, s, exch("r", sec(12), compare.OutcomeMismatch, a, b)) // both full
	record(t, s, exch("r", sec(13), compare.OutcomeMismatch, a))    // full
	// Another route, kind or outcome class has its own caps.
	record(t, s, exch("other", sec(14), compare.OutcomeNoise, diff(compare.KindJSON, "$.a", true)))
	record(t, s, exch("r", sec(15), compare.OutcomeMismatch, diff(compare.KindHeader, "$.a", false)))
	// Matches are never sampled.
	record(t, s, exch("r", sec(16), compare.OutcomeMatch))
	// Errors without differences are capped under (status, $.error).
	for i := range 4 {
		ex := exch("r", sec(20+i), compare.OutcomeError)
		ex.New = &compare.Response{Err: "timeout"}
		record(t, s, ex)
	}
	flush(t, s)

	for _, c := range []struct {
		why  string
		f    SampleFilter
		want int
	}{
		{"every sample", SampleFilter{}, 2 + 2 + 1 + 1 + 2},
		{"route r", SampleFilter{Route: "r"}, 2 + 2 + 1 + 2},
		{"$.a in any route and kind, including samples kept for $.b", SampleFilter{Path: "$.a"}, 2 + 2 + 1 + 1},
		{"$.a in route r", SampleFilter{Route: "r", Path: "$.a"}, 2 + 2 + 1},
		{"$.b", SampleFilter{Path: "$.b"}, 2},
		{"errors", SampleFilter{Path: "$.error"}, 2},
		{"request path prefix", SampleFilter{Path: "/up"}, 8},
		{"other request path", SampleFilter{Path: "/download"}, 0},
		{"limit", SampleFilter{Limit: 3}, 3},
	} {
		l, err := s.Samples(c.f)
		if err != nil {
			t.Fatal(err)
		}
		if len(l) != c.want {
			t.Errorf("%s: %d samples, want %d", c.why, len(l), c.want)
		}
	}
	l, _ := s.Samples(SampleFilter{Limit: MaxSampleLimit})
	for i := 1; i < len(l); i++ {
		if l[i].At.After(l[i-1].At) {
			t.Fatalf("not newest first: %v after %v", l[i].At, l[i-1].At)
		}
	}
	if l[0].Outcome != compare.OutcomeError || l[0].NewStatus != 0 || l[0].LegacyStatus != 200 {
		t.Errorf("newest summary: %+v", l[0])
	}
	if _, err := s.Sample("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Sample(nope): %v, want ErrNotFound", err)
	}
}

// Bodies are capped at SampleBodyMax; metadata keeps the full size and hash.
func TestSampleBodyCap(t *testing.T) {
	s := openTest(t, Options{SampleBodyMax: 10})
	ex := exch("r", sec(0), compare.OutcomeMismatch, diff(compare.KindBody, "$.body", false))
	ex.Legacy = resp(200, strings.Repeat("x", 100))
	ex.New = resp(201, "short")
	record(t, s, ex)
	flush(t, s)
	l, _ := s.Samples(SampleFilter{})
	if len(l) != 1 {
		t.Fatalf("%d samples", len(l))
	}
	smp, err := s.Sample(l[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(smp.Legacy.Body) != "xxxxxxxxxx" || !smp.Legacy.BodyTruncated || smp.Legacy.Size != 100 || len(smp.Legacy.SHA256) != 64 {
		t.Errorf("legacy side: %+v", smp.Legacy)
	}
	if string(smp.New.Body) != "short" || smp.New.BodyTruncated || smp.New.Status != 201 || smp.New.LatencyMS != 20 {
		t.Errorf("new side: %+v", smp.New)
	}
	if smp.RequestID != ex.RequestID || smp.Method != "POST" || smp.Path != "/upload" || smp.ServedBy != "legacy" || !smp.At.Equal(sec(0)) {
		t.Errorf("sample: %+v", smp)
	}
}

// Authorization, Proxy-Authorization, Cookie and Set-Cookie values never
// reach the file, neither as headers nor as difference values.
func TestRedaction(t *testing.T) {
	const (
		token  = "Bearer s3cr3t-t0ken-QX7"
		cookie = "session=c00kie-v4lue-ZZ9"
		proxy  = "Basic pr0xy-cr3d-KK1"
	)
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := exch("r", sec(0), compare.OutcomeMismatch,
		compare.Difference{Kind: compare.KindHeader, Path: "$.header.Set-Cookie", Legacy: cookie, New: cookie + "x"},
		compare.Difference{Kind: compare.KindHeader, Path: `$.header["authorization"]`, Legacy: token, New: ""},
		compare.Difference{Kind: compare.KindHeader, Path: "$.header.X-Keep", Legacy: "keep-me", New: "keep-me-too"})
	ex.Legacy.Header = []compare.HeaderField{{Name: "Authorization", Value: token}, {Name: "Set-Cookie", Value: cookie}, {Name: "X-Keep", Value: "keep-me"}}
	ex.New.Header = []compare.HeaderField{{Name: "Cookie", Value: cookie}, {Name: "Proxy-Authorization", Value: proxy}, {Name: "set-cookie", Value: cookie}}
	record(t, s, ex)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"s3cr3t-t0ken", "c00kie-v4lue", "pr0xy-cr3d"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s contains %q", f, secret)
			}
		}
		if f == path && !bytes.Contains(b, []byte("keep-me")) {
			t.Errorf("%s lacks an ordinary header value: is the test reading the right file?", f)
		}
	}

	s = openAt(t, path, Options{})
	l, _ := s.Samples(SampleFilter{})
	smp, err := s.Sample(l[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range append(smp.Legacy.Header, smp.New.Header...) {
		if h.Name != "X-Keep" && h.Value != Redacted {
			t.Errorf("header %s = %q, want %q", h.Name, h.Value, Redacted)
		}
	}
	for _, d := range smp.Diffs {
		redacted := d.Legacy == Redacted && d.New == Redacted
		if redacted == (d.Path == "$.header.X-Keep") {
			t.Errorf("difference %+v", d)
		}
	}
}

func TestHeaderNameOfPath(t *testing.T) {
	for _, c := range []struct{ path, name string }{
		{"$.header.Set-Cookie", "Set-Cookie"},
		{`$.header["Set-Cookie"]`, "Set-Cookie"},
		{`$.header['cookie']`, "cookie"},
		{"$.headers.Cookie", ""},
		{"$.status", ""},
	} {
		if got, _ := headerNameOfPath(c.path); got != c.name {
			t.Errorf("headerNameOfPath(%q) = %q, want %q", c.path, got, c.name)
		}
	}
}
