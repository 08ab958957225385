package proxy

import (
	"bytes"
	"fmt"

	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/rules"
)

// route is a compiled rules.Route: everything the hot path needs, resolved once.
type route struct {
	rules.Route
	sticky          rules.Sticky
	prefix          []byte
	methods         [][]byte
	legacy          *backends.Backend
	new             *backends.Backend // nil: pass-through
	secondary       *backends.Backend // nil: no noise learning
	serveThreshold  uint32
	mirrorThreshold uint32
	comparer        *compare.Comparer
	m               *routeMetrics
}

// table is one immutable version of the routing rules. Reloads swap the
// whole table atomically; a request uses the table it started with.
type table struct {
	version int64
	routes  []*route
}

func compileTable(version int64, rs []rules.Route, bs map[string]*backends.Backend, sm *serverMetrics, decode *compare.DecodeBudget) (*table, error) {
	t := &table{version: version}
	for i := range rs {
		r := rs[i]
		st, err := rules.ParseSticky(r.Sticky)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", r.Name, err)
		}
		cmp, err := compare.New(r.Compare, compare.WithDecodeBudget(decode))
		if err != nil {
			return nil, fmt.Errorf("route %s: cannot compile compare settings: %w", r.Name, err)
		}
		cr := &route{
			Route:           r,
			sticky:          st,
			prefix:          []byte(r.Match.PathPrefix),
			legacy:          bs[r.Legacy],
			serveThreshold:  rules.Threshold(r.ServeNew),
			mirrorThreshold: rules.Threshold(r.Mirror),
			comparer:        cmp,
		}
		if cr.legacy == nil {
			return nil, fmt.Errorf("route %s: unknown legacy backend %q", r.Name, r.Legacy)
		}
		names := []string{r.Legacy}
		if r.New != "" {
			if cr.new = bs[r.New]; cr.new == nil {
				return nil, fmt.Errorf("route %s: unknown new backend %q", r.Name, r.New)
			}
			names = append(names, r.New)
		}
		if r.Secondary != "" {
			if cr.secondary = bs[r.Secondary]; cr.secondary == nil {
				return nil, fmt.Errorf("route %s: unknown secondary backend %q", r.Name, r.Secondary)
			}
			names = append(names, r.Secondary)
		}
		for _, m := range r.Match.Methods {
			cr.methods = append(cr.methods, []byte(m))
		}
		if sm != nil { // nil: a dry run (CheckRules), which creates no series
			cr.m = newRouteMetrics(sm, r.Name, names)
		}
		t.routes = append(t.routes, cr)
	}
	return t, nil
}

// match returns the first route matching method and path, or nil.
func (t *table) match(method, path []byte) *route {
	for _, r := range t.routes {
		if !bytes.HasPrefix(path, r.prefix) {
			continue
		}
		if len(r.methods) == 0 {
			return r
		}
		for _, m := range r.methods {
			if bytes.Equal(m, method) {
				return r
			}
		}
	}
	return nil
}

// byName returns the route called name, or nil.
func (t *table) byName(name string) *route {
	for _, r := range t.routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}
