package loadtest

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestCorpusBodiesRoundRobin sends a corpus directory's files, read once,
// in name order, round-robin, each with its extension's content type.
func TestCorpusBodiesRoundRobin(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"b.json":     `{"b":1}`,
		"a.txt":      "alpha",
		"c.bin":      "\x00\x01\x02",
		".hidden":    "skipped: hidden",
		"sub/d.json": "skipped: in a subdirectory",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bodies, err := LoadCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range bodies {
		names = append(names, b.Name)
	}
	if want := []string{"a.txt", "b.json", "c.bin"}; !slices.Equal(names, want) {
		t.Fatalf("corpus = %v, want %v", names, want)
	}

	b := newBackend(t, nil)
	res := attack(t, &Targets{URL: b.URL + "/upload", Bodies: bodies}, Options{Concurrency: 1, Requests: 6})
	got := b.requests()
	if len(got) != 6 {
		t.Fatalf("backend saw %d requests, want 6", len(got))
	}
	wantTypes := []string{"text/plain; charset=utf-8", "application/json", "application/octet-stream"}
	var wantOut uint64
	for i, r := range got {
		want := bodies[i%3]
		if !bytes.Equal(r.body, want.Data) {
			t.Errorf("request %d body %q, want %q (%s)", i, r.body, want.Data, want.Name)
		}
		if ct := r.header.Get("Content-Type"); ct != wantTypes[i%3] {
			t.Errorf("request %d Content-Type %q, want %q", i, ct, wantTypes[i%3])
		}
		if r.method != http.MethodPost || r.path != "/upload" {
			t.Errorf("request %d: %s %s, want POST /upload (the default with bodies)", i, r.method, r.path)
		}
		wantOut += uint64(len(want.Data))
	}
	if res.BytesOut != wantOut {
		t.Errorf("BytesOut = %d, want %d", res.BytesOut, wantOut)
	}
}

func TestLoadCorpusErrors(t *testing.T) {
	if _, err := LoadCorpus(t.TempDir()); err == nil {
		t.Error("empty corpus: no error")
	}
	if _, err := LoadCorpus(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing corpus: no error")
	}
}

// TestSyntheticSizes sends bodies of the parsed sizes, with the same
// deterministic bytes every time.
func TestSyntheticSizes(t *testing.T) {
	sizes, err := ParseSizes("1KiB, 64KiB,1MiB")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1 << 10, 64 << 10, 1 << 20}; !slices.Equal(sizes, want) {
		t.Fatalf("ParseSizes = %v, want %v", sizes, want)
	}
	bodies, err := SyntheticBodies(sizes)
	if err != nil {
		t.Fatal(err)
	}
	if bodies[2].Name != "synthetic-1MiB" {
		t.Errorf("name %q, want synthetic-1MiB", bodies[2].Name)
	}
	b := newBackend(t, func(_ int, w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	res := attack(t, &Targets{URL: b.URL, Method: http.MethodPut, Bodies: bodies}, Options{Concurrency: 1, Requests: 4})
	got := b.requests()
	for i, r := range got {
		size := sizes[i%3]
		if !bytes.Equal(r.body, SyntheticData(size)) || r.method != http.MethodPut {
			t.Errorf("request %d: %s with %d bytes, want PUT with the %d synthetic bytes", i, r.method, len(r.body), size)
		}
	}
	if want := uint64(2<<10 + 64<<10 + 1<<20); res.BytesOut != want || res.BytesIn != 8 {
		t.Errorf("bytes out %d in %d, want %d and 8", res.BytesOut, res.BytesIn, want)
	}
}

func TestSyntheticData(t *testing.T) {
	a, b := SyntheticData(1000), SyntheticData(1000)
	if !bytes.Equal(a, b) {
		t.Error("same size, different bytes")
	}
	if bytes.Count(a, []byte{0}) > 50 {
		t.Error("synthetic data looks empty")
	}
	if bytes.Equal(SyntheticData(1001)[:1000], a) {
		t.Error("different sizes share a prefix: a cache keyed on prefix would see duplicates")
	}
	if len(SyntheticData(0)) != 0 || len(SyntheticData(7)) != 7 {
		t.Error("wrong lengths")
	}
}

func TestParseSizes(t *testing.T) {
	tests := []struct {
		in      string
		want    []int64
		wantErr bool
	}{
		{"512", []int64{512}, false},
		{"1KiB,64KiB,1MiB", []int64{1024, 65536, 1 << 20}, false},
		{"10kB", []int64{10000}, false}, // decimal units are decimal
		{"1.5MiB", []int64{1572864}, false},
		{"", nil, true},
		{"lots", nil, true},
		{"5GiB", nil, true}, // too large to hold in memory
	}
	for _, tt := range tests {
		got, err := ParseSizes(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("ParseSizes(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestStickyUserIDs sends ids from a fixed pool, the same id for the same
// hit number on every run.
func TestStickyUserIDs(t *testing.T) {
	run := func() []string {
		b := newBackend(t, nil)
		attack(t, &Targets{URL: b.URL, UserHeader: "X-User-Id", Users: 10}, Options{Concurrency: 1, Requests: 200})
		var ids []string
		for _, r := range b.requests() {
			ids = append(ids, r.header.Get("X-User-Id"))
		}
		return ids
	}
	first, second := run(), run()
	if !slices.Equal(first, second) {
		t.Error("two runs sent different user ids for the same hits")
	}
	seen := map[string]int{}
	for _, id := range first {
		seen[id]++
	}
	for id, n := range seen {
		if len(id) != len("user-0") || id[:5] != "user-" {
			t.Errorf("id %q is not in the pool user-0 … user-9", id)
		}
		if n < 5 {
			t.Errorf("id %q sent %d times in 200: the pool is not spread evenly", id, n)
		}
	}
	if len(seen) != 10 {
		t.Errorf("%d distinct ids, want 10", len(seen))
	}
	if ids := userIDs(1000); ids[7] != "user-007" || ids[999] != "user-999" {
		t.Errorf("ids are not zero-padded: %q %q", ids[7], ids[999])
	}
}

// TestHeaders sends the configured headers, with Host and Content-Type
// overriding the defaults.
func TestHeaders(t *testing.T) {
	b := newBackend(t, nil)
	bodies, _ := SyntheticBodies([]int64{10})
	h := http.Header{}
	h.Add("X-Test", "one")
	h.Add("X-Test", "two")
	h.Set("Host", "media.example")
	h.Set("Content-Type", "image/png")
	attack(t, &Targets{URL: b.URL + "/p?q=1", Header: h, Bodies: bodies}, Options{Concurrency: 1, Requests: 1})
	r := b.requests()[0]
	if got := r.header.Values("X-Test"); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("X-Test = %v, want [one two]", got)
	}
	if ct := r.header.Get("Content-Type"); ct != "image/png" {
		t.Errorf("Content-Type %q, want image/png", ct)
	}
	if r.host != "media.example" {
		t.Errorf("Host %q, want media.example", r.host)
	}
	if r.method != http.MethodPost || r.path != "/p" {
		t.Errorf("%s %s, want POST /p", r.method, r.path)
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		in, name, value string
		wantErr         bool
	}{
		{"X-User-Id: 42", "X-User-Id", "42", false},
		{"Authorization:Bearer a:b", "Authorization", "Bearer a:b", false},
		{"no colon", "", "", true},
		{"bad name: v", "", "", true},
		{": v", "", "", true},
	}
	for _, tt := range tests {
		n, v, err := ParseHeader(tt.in)
		if (err != nil) != tt.wantErr || n != tt.name || v != tt.value {
			t.Errorf("ParseHeader(%q) = %q, %q, %v", tt.in, n, v, err)
		}
	}
}

// TestHeadRequests: a HEAD answer announces a body it does not send; the
// client must not wait for it.
func TestHeadRequests(t *testing.T) {
	b := newBackend(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "1000")
	})
	res := attack(t, &Targets{URL: b.URL, Method: http.MethodHead}, Options{Concurrency: 1, Requests: 3, Timeout: 2 * time.Second})
	if res.Status[200] != 3 || len(res.Errors) != 0 || res.BytesIn != 0 {
		t.Errorf("status %v errors %v bytes in %d; want 3 × 200, no body", res.Status, res.Errors, res.BytesIn)
	}
}
