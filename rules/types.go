package rules

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"gopkg.in/yaml.v3"
)

// Route is one routing rule. Routes are matched in order; the first match wins.
type Route struct {
	// Name identifies the route in metrics, reports and the API. Required, unique.
	Name  string `yaml:"name" json:"name"`
	Match Match  `yaml:"match" json:"match"`
	// Legacy names the backend that serves by default. Required.
	Legacy string `yaml:"legacy" json:"legacy"`
	// New names the candidate backend. Empty: the route is plain pass-through.
	New string `yaml:"new" json:"new,omitempty"`
	// Secondary names a second legacy instance; mirrored requests also go there
	// so that legacy-vs-legacy differences teach the noise learner. Empty: none.
	Secondary string `yaml:"secondary" json:"secondary,omitempty"`
	// ServeNew is the percent of requests (by sticky bucket) served by New,
	// 0..100 with at most two decimals. Default 0.
	ServeNew float64 `yaml:"serve_new" json:"serve_new"`
	// Mirror is the percent of requests also sent to the other side and
	// compared, 0..100 with at most two decimals. Default 100 (when New is set).
	Mirror float64 `yaml:"mirror" json:"mirror"`
	// Sticky says where the sticky key comes from: header:NAME, cookie:NAME,
	// query:NAME, ip, or none. Default none (every request bucketed by its id).
	Sticky  string           `yaml:"sticky" json:"sticky"`
	Compare compare.Settings `yaml:"compare" json:"compare"`
	// Ramp enables automatic promotion. Nil: off.
	Ramp *Ramp `yaml:"ramp" json:"ramp,omitempty"`
}

// Match selects requests. Zero fields match everything.
type Match struct {
	// PathPrefix matches the request path by prefix. Default "/" (all paths).
	PathPrefix string `yaml:"path_prefix" json:"path_prefix"`
	// Methods lists the methods matched. Empty: all methods.
	Methods []string `yaml:"methods" json:"methods,omitempty"`
}

// Ramp is an automatic promotion plan with its gates.
type Ramp struct {
	// Steps are the serve_new percentages to walk through, increasing. Default [1, 5, 25, 50, 100].
	Steps []float64 `yaml:"steps" json:"steps"`
	// Hold is the time at a step, with gates passing, before the next step. Default 10m.
	Hold Duration `yaml:"hold" json:"hold"`
	// MinCompared is the comparisons needed at a step before it can advance. Default 500.
	MinCompared int64 `yaml:"min_compared" json:"min_compared"`
	// MaxDiffRate is the highest real mismatch rate allowed. Default 0.005.
	MaxDiffRate float64 `yaml:"max_diff_rate" json:"max_diff_rate"`
	// MaxErrorRate is the highest new-backend error rate allowed. Default 0.001.
	MaxErrorRate float64 `yaml:"max_error_rate" json:"max_error_rate"`
	// MaxLatencyRatio is the highest new p99 / legacy p99 allowed. Default 1.25.
	MaxLatencyRatio float64 `yaml:"max_latency_ratio" json:"max_latency_ratio"`
}

// DefaultRoute returns a Route with every documented default set.
func DefaultRoute() Route {
	return Route{Match: Match{PathPrefix: "/"}, Mirror: 100, Sticky: "none"}
}

// DefaultRamp returns a Ramp with every documented default set.
func DefaultRamp() Ramp {
	return Ramp{
		Steps:           []float64{1, 5, 25, 50, 100},
		Hold:            Duration(10 * time.Minute),
		MinCompared:     500,
		MaxDiffRate:     0.005,
		MaxErrorRate:    0.001,
		MaxLatencyRatio: 1.25,
	}
}

// UnmarshalYAML fills defaults for keys the document leaves out.
func (r *Route) UnmarshalYAML(n *yaml.Node) error {
	*r = DefaultRoute()
	type plain Route
	return n.Decode((*plain)(r))
}

// UnmarshalYAML fills defaults for keys the document leaves out.
func (r *Ramp) UnmarshalYAML(n *yaml.Node) error {
	*r = DefaultRamp()
	type plain Ramp
	return n.Decode((*plain)(r))
}

// Duration is a time.Duration written as a Go duration string ("10m", "1.5s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q (want e.g. 30s, 10m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON parses a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("invalid duration %s: want a string such as \"10m\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}
