package loadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// StatusSet is a set of HTTP status codes (100 to 999): the answers an
// attack was told to expect. Its zero value is empty; an attack whose
// expected set is empty uses DefaultExpect.
type StatusSet struct {
	bits [16]uint64 // bit c is status c, 0 ≤ c < 1024
	src  string     // as parsed, for display
}

// DefaultExpect is what counts as success when nothing else is said: every
// status from 200 to 399.
var DefaultExpect = mustStatusSet("2xx,3xx")

func mustStatusSet(s string) StatusSet {
	set, err := ParseStatusSet(s)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return set
}

// ParseStatusSet reads a comma-separated list of statuses: single codes
// ("200"), classes ("2xx") and inclusive ranges ("200-204"), e.g.
// "2xx,400" or "200,201,404".
func ParseStatusSet(s string) (StatusSet, error) {
	var set StatusSet
	var parts []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		lo, hi, err := parseStatusRange(f)
		if err != nil {
			return StatusSet{}, fmt.Errorf("cannot parse expected status %q: %w", f, err)
		}
		for c := lo; c <= hi; c++ {
			set.bits[c/64] |= 1 << (c % 64)
		}
		parts = append(parts, strings.ToLower(f))
	}
	if len(parts) == 0 {
		return StatusSet{}, fmt.Errorf("cannot parse expected statuses %q: no status", s)
	}
	set.src = strings.Join(parts, ",")
	return set, nil
}

func parseStatusRange(f string) (lo, hi int, err error) {
	code := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 || n > 999 {
			return 0, fmt.Errorf("want a status from 100 to 999, a class such as 2xx or a range such as 200-204")
		}
		return n, nil
	}
	switch {
	case len(f) == 3 && strings.EqualFold(f[1:], "xx") && f[0] >= '1' && f[0] <= '9':
		lo = int(f[0]-'0') * 100
		return lo, lo + 99, nil
	case strings.Contains(f, "-"):
		a, b, _ := strings.Cut(f, "-")
		if lo, err = code(strings.TrimSpace(a)); err != nil {
			return 0, 0, err
		}
		if hi, err = code(strings.TrimSpace(b)); err != nil {
			return 0, 0, err
		}
		if hi < lo {
			return 0, 0, fmt.Errorf("range ends below its start")
		}
		return lo, hi, nil
	}
	lo, err = code(f)
	return lo, lo, err
}

// Has reports whether status is in s.
func (s StatusSet) Has(status int) bool {
	if status < 0 || status >= 1024 {
		return false
	}
	return s.bits[status/64]&(1<<(status%64)) != 0
}

// IsZero reports whether s is empty (the zero value).
func (s StatusSet) IsZero() bool { return s.bits == [16]uint64{} }

// String returns s as it was parsed, e.g. "2xx,400".
func (s StatusSet) String() string { return s.src }

// ExpectFile is the name of a corpus's expectation file (see LoadCorpus).
const ExpectFile = "expect.txt"

// expectRule is one line of an expectation file.
type expectRule struct {
	pattern string
	set     StatusSet
}

// readExpectFile reads dir's expectation file, if there is one: nil
// without error when there is none.
func readExpectFile(dir string) ([]expectRule, error) {
	name := filepath.Join(dir, ExpectFile)
	data, err := os.ReadFile(name)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read corpus: %w", err)
	}
	return parseExpectFile(name, data)
}

// parseExpectFile reads lines "GLOB STATUSES" (path.Match patterns over
// file names; statuses as ParseStatusSet reads them); '#' starts a
// comment.
func parseExpectFile(name string, data []byte) ([]expectRule, error) {
	var rules []expectRule
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want 'GLOB STATUSES', e.g. 'broken-* 400'", name, line)
		}
		if _, err := path.Match(fields[0], ""); err != nil {
			return nil, fmt.Errorf("%s:%d: bad pattern %q: %w", name, line, fields[0], err)
		}
		set, err := ParseStatusSet(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		rules = append(rules, expectRule{fields[0], set})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	return rules, nil
}

// match returns the set of the first rule whose pattern matches file, or
// the zero set.
func matchExpect(rules []expectRule, file string) StatusSet {
	for _, r := range rules {
		if ok, _ := path.Match(r.pattern, file); ok {
			return r.set
		}
	}
	return StatusSet{}
}
