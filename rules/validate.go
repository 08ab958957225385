package rules

import (
	"fmt"
	"math"
	"strings"

	"github.com/tandem-proxy/tandem/internal/strictyaml"
)

// Validate checks routes against the set of known backend names and returns
// every problem. Errors are *strictyaml.Error values whose Path names the
// field ("routes[2].serve_new"), so a file loader can add line numbers.
func Validate(routes []Route, backendExists func(string) bool) []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &strictyaml.Error{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	names := map[string]int{}
	for i := range routes {
		r := &routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Name == "":
			bad(p+".name", "required")
		case !validName(r.Name):
			bad(p+".name", "%q: use letters, digits, '-', '_' or '.' (at most 64)", r.Name)
		default:
			if j, dup := names[r.Name]; dup {
				bad(p+".name", "%q is also the name of routes[%d]", r.Name, j)
			}
			names[r.Name] = i
		}
		if r.Match.PathPrefix != "" && !strings.HasPrefix(r.Match.PathPrefix, "/") {
			bad(p+".match.path_prefix", "%q must start with /", r.Match.PathPrefix)
		}
		for j, m := range r.Match.Methods {
			if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " \t/") {
				bad(fmt.Sprintf("%s.match.methods[%d]", p, j), "%q is not an upper-case HTTP method", m)
			}
		}
		checkBackend := func(field, name string, required bool) {
			switch {
			case name == "" && required:
				bad(p+"."+field, "required")
			case name != "" && !backendExists(name):
				bad(p+"."+field, "unknown backend %q", name)
			}
		}
		checkBackend("legacy", r.Legacy, true)
		checkBackend("new", r.New, false)
		checkBackend("secondary", r.Secondary, false)
		if r.New != "" && r.New == r.Legacy {
			bad(p+".new", "is the same backend as legacy (%q)", r.New)
		}
		if r.Secondary != "" && r.Secondary == r.Legacy {
			bad(p+".secondary", "is the same backend as legacy (%q)", r.Secondary)
		}
		if r.Secondary != "" && r.New == "" {
			bad(p+".secondary", "needs new: noise is learned while comparing legacy with new")
		}
		checkPercent(bad, p+".serve_new", r.ServeNew)
		checkPercent(bad, p+".mirror", r.Mirror)
		if r.New == "" && r.ServeNew != 0 {
			bad(p+".serve_new", "is %v but the route has no new backend", r.ServeNew)
		}
		if _, err := ParseSticky(r.Sticky); err != nil {
			bad(p+".sticky", "%v", err)
		}
		for _, err := range r.Compare.Validate() {
			bad(p+".compare", "%v", err)
		}
		if r.Ramp != nil {
			validateRamp(bad, p+".ramp", r)
		}
	}
	return errs
}

func validateRamp(bad func(string, string, ...any), p string, r *Route) {
	rp := r.Ramp
	if r.New == "" {
		bad(p, "needs a new backend")
	}
	if len(rp.Steps) == 0 {
		bad(p+".steps", "at least one step is required")
	}
	prev := 0.0
	for i, s := range rp.Steps {
		sp := fmt.Sprintf("%s.steps[%d]", p, i)
		checkPercent(bad, sp, s)
		if s <= prev {
			bad(sp, "%v must be greater than the step before it (%v)", s, prev)
		}
		prev = s
	}
	if n := len(rp.Steps); n > 0 && rp.Steps[n-1] < 100 {
		bad(fmt.Sprintf("%s.steps[%d]", p, n-1), "the last step is %v: it must be 100, or the ramp could never finish with new serving everything", rp.Steps[n-1])
	}
	if rp.Hold < 0 {
		bad(p+".hold", "must not be negative")
	}
	if rp.MinCompared < 0 {
		bad(p+".min_compared", "must not be negative")
	}
	if !(rp.MaxDiffRate >= 0 && rp.MaxDiffRate <= 1) { // NaN fails too
		bad(p+".max_diff_rate", "%v must be within 0..1", rp.MaxDiffRate)
	}
	if !(rp.MaxErrorRate >= 0 && rp.MaxErrorRate <= 1) {
		bad(p+".max_error_rate", "%v must be within 0..1", rp.MaxErrorRate)
	}
	if !(rp.MaxLatencyRatio > 0) || math.IsInf(rp.MaxLatencyRatio, 0) {
		bad(p+".max_latency_ratio", "%v must be a number greater than 0", rp.MaxLatencyRatio)
	}
}

func checkPercent(bad func(string, string, ...any), path string, v float64) {
	if math.IsNaN(v) || v < 0 || v > 100 {
		bad(path, "%v must be within 0..100", v)
		return
	}
	if math.Abs(v*100-math.Round(v*100)) > 1e-6 {
		bad(path, "%v has more than two decimals", v)
	}
}

func validName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
