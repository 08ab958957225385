package loadtest

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
)

// Targets describes the requests of an attack: every hit goes to the same
// method and URL with the same headers; bodies and user ids vary by hit.
type Targets struct {
	// Method is the request method. Empty means POST when there are
	// Bodies and GET otherwise.
	Method string

	// URL is the absolute http:// or https:// URL every hit is sent to.
	// Required.
	URL string

	// Header is sent with every hit. A Host entry replaces the Host header
	// (the connection still goes to URL's host); a Content-Type entry
	// replaces the bodies' own types. Nil means no extra headers.
	Header http.Header

	// Bodies are sent round-robin: hit n carries Bodies[n%len(Bodies)].
	// They are shared by every worker and never copied or modified, so a
	// corpus is held in memory once. Nil means requests without a body.
	Bodies []Body

	// UserHeader and Users give each hit a sticky user id: one of Users
	// ids ("user-0" … "user-<Users-1>", zero-padded to one width) sent in
	// the header named UserHeader, so a proxy that buckets by that header
	// sees a stable population of users. The id of hit n is a fixed hash of
	// n, so it does not move in step with the body round-robin. Both are
	// set or both are zero (no user header).
	UserHeader string
	Users      int
}

// Body is one request body.
type Body struct {
	// Name says where the body came from: a file name or "synthetic-SIZE".
	Name string
	// ContentType is sent as Content-Type unless Targets.Header has one.
	// Empty means no Content-Type header.
	ContentType string
	// Data is the body. It must not be modified once an attack uses it.
	Data []byte
	// Expect is the statuses that count as success for this body. The
	// zero set means Options.Expect.
	Expect StatusSet
}

// validate checks t and returns the parsed URL.
func (t *Targets) validate() (*url.URL, error) {
	if t == nil {
		return nil, errors.New("no targets")
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, fmt.Errorf("cannot parse target URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target URL %q: want http:// or https://", t.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("target URL %q has no host", t.URL)
	}
	if (t.UserHeader == "") != (t.Users <= 0) {
		return nil, errors.New("user header and user count go together: set both or neither")
	}
	if t.UserHeader != "" && !validHeaderName(t.UserHeader) {
		return nil, fmt.Errorf("user header %q is not a valid header name", t.UserHeader)
	}
	for k := range t.Header {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("header %q is not a valid header name", k)
		}
	}
	return u, nil
}

func (t *Targets) method() string {
	switch {
	case t.Method != "":
		return t.Method
	case len(t.Bodies) > 0:
		return http.MethodPost
	default:
		return http.MethodGet
	}
}

// userIDs returns the pool of user ids, "user-" and a zero-padded index.
func userIDs(n int) []string {
	if n <= 0 {
		return nil
	}
	width := len(strconv.Itoa(n - 1))
	ids := make([]string, n)
	for i := range ids {
		s := strconv.Itoa(i)
		ids[i] = "user-" + strings.Repeat("0", width-len(s)) + s
	}
	return ids
}

// userIndex picks hit n's user among users: a splitmix64 hash of n, so the
// sequence is the same on every run and spread evenly over the pool.
func userIndex(n uint64, users int) int {
	return int(mix64(n) % uint64(users))
}

// mix64 is the splitmix64 finaliser: a bijective, well-spread hash.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// LoadCorpus reads every regular file directly in dir (not in its
// subdirectories; names starting with "." are skipped) once, in name order,
// and returns them as bodies whose ContentType comes from the file
// extension (application/octet-stream when unknown). All of the corpus is
// held in memory. A corpus without files is an error.
//
// A file named ExpectFile (expect.txt) is not a body: it says which
// statuses each file is expected to get, one rule a line, "GLOB STATUSES"
// with a path.Match pattern over file names, the first match winning, '#'
// starting a comment:
//
//	broken-*  400      # undecodable uploads are refused
//	*         200
//
// A matched file's Body.Expect is set; files no rule matches keep the zero
// set (the attack's Options.Expect). `tandem sample-corpus` writes one.
func LoadCorpus(dir string) ([]Body, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read corpus: %w", err)
	}
	expect, err := readExpectFile(dir)
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var bodies []Body
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || name == ExpectFile {
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path) // follows symlinks
		if err != nil {
			return nil, fmt.Errorf("cannot read corpus: %w", err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("cannot read corpus: %w", err)
		}
		ct := mime.TypeByExtension(filepath.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		bodies = append(bodies, Body{Name: name, ContentType: ct, Data: data, Expect: matchExpect(expect, name)})
	}
	if len(bodies) == 0 {
		return nil, fmt.Errorf("corpus %s has no files", dir)
	}
	return bodies, nil
}

// SyntheticBodies returns one body per size, in the order given, filled
// with deterministic pseudo-random bytes (the same size always gives the
// same bytes, and they do not compress). Sizes must not be negative.
func SyntheticBodies(sizes []int64) ([]Body, error) {
	bodies := make([]Body, 0, len(sizes))
	for _, n := range sizes {
		if n < 0 {
			return nil, fmt.Errorf("body size %d is negative", n)
		}
		bodies = append(bodies, Body{
			Name:        "synthetic-" + formatIBytes(n),
			ContentType: "application/octet-stream",
			Data:        SyntheticData(n),
		})
	}
	return bodies, nil
}

// SyntheticData returns n deterministic pseudo-random bytes: the
// little-endian splitmix64 hashes of n, n+1, n+2, …
func SyntheticData(n int64) []byte {
	b := make([]byte, n)
	for i := int64(0); i < n; i += 8 {
		v := mix64(uint64(n) + uint64(i/8))
		for j := int64(0); j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// maxSyntheticSize is the largest size ParseSizes accepts.
const maxSyntheticSize = 4 << 30

// ParseSizes reads a comma-separated list of byte sizes such as
// "1KiB,64KiB,1MiB" (or "512", "10kB", "1.5MiB").
func ParseSizes(s string) ([]int64, error) {
	var sizes []int64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := humanize.ParseBytes(f)
		if err != nil {
			return nil, fmt.Errorf("cannot parse size %q: %w", f, err)
		}
		if n > maxSyntheticSize {
			return nil, fmt.Errorf("size %q is larger than 4GiB (synthetic bodies are held in memory)", f)
		}
		sizes = append(sizes, int64(n))
	}
	if len(sizes) == 0 {
		return nil, fmt.Errorf("cannot parse sizes %q: no sizes", s)
	}
	return sizes, nil
}

// ParseHeader reads one "Name: value" header line.
func ParseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || !validHeaderName(name) {
		return "", "", fmt.Errorf("cannot parse header %q: want 'Name: value'", s)
	}
	return name, strings.TrimSpace(value), nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// formatIBytes writes n in the largest binary unit that divides it
// exactly: 1024 → "1KiB", 1536 → "1536B".
func formatIBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	u := 0
	for u < len(units)-1 && n != 0 && n%1024 == 0 {
		n /= 1024
		u++
	}
	return strconv.FormatInt(n, 10) + units[u]
}
