package rules

import (
	"fmt"
	"strings"
)

// StickyKind says where a route's sticky key comes from.
type StickyKind uint8

const (
	StickyNone   StickyKind = iota // no key: each request is bucketed by its request id
	StickyHeader                   // a request header
	StickyCookie                   // a cookie
	StickyQuery                    // a query argument
	StickyIP                       // the client's IP address
)

// Sticky is a parsed sticky specification.
type Sticky struct {
	Kind StickyKind
	Name string // header, cookie or query argument name
}

// ParseSticky parses "header:NAME", "cookie:NAME", "query:NAME", "ip", "none" or "".
func ParseSticky(s string) (Sticky, error) {
	switch s {
	case "", "none":
		return Sticky{Kind: StickyNone}, nil
	case "ip":
		return Sticky{Kind: StickyIP}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return Sticky{}, fmt.Errorf("invalid sticky %q: want header:NAME, cookie:NAME, query:NAME, ip or none", s)
	}
	switch kind {
	case "header":
		return Sticky{Kind: StickyHeader, Name: name}, nil
	case "cookie":
		return Sticky{Kind: StickyCookie, Name: name}, nil
	case "query":
		return Sticky{Kind: StickyQuery, Name: name}, nil
	}
	return Sticky{}, fmt.Errorf("invalid sticky %q: unknown source %q (want header, cookie, query, ip or none)", s, kind)
}
