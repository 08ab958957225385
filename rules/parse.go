package rules

import (
	"github.com/tandem-proxy/tandem/internal/strictyaml"
)

// rulesDoc is the document PUT /api/v1/rules accepts: the shape GET
// returns, plus an optional reason for the audit log.
type rulesDoc struct {
	Version int64   `yaml:"version"`
	Routes  []Route `yaml:"routes"`
	// Reason is accepted (the admin API puts it in the audit event) and
	// not part of the rules.
	Reason string `yaml:"reason"`
}

// ParseRules decodes a rules document — JSON, or YAML — strictly: unknown
// keys, duplicate keys and wrong types are errors, each with its line;
// route keys the document leaves out take their defaults (DefaultRoute,
// DefaultRamp). Besides version and routes, a top-level "reason" string is
// allowed and ignored. "routes" is required: an empty list is the explicit
// way to remove every route. The routes are then checked with Validate,
// every backend name accepted (the caller's Validator knows the backends and
// runs when the rules are applied); those errors name their lines too.
// ParseRules returns every problem; the Rules are meaningful only when there
// are none.
func ParseRules(data []byte) (Rules, []error) {
	return ParseRulesFor(data, func(string) bool { return true })
}

// ParseRulesFor is ParseRules checking backend names with backendExists, so
// that unknown backends are reported with their lines too.
func ParseRulesFor(data []byte, backendExists func(string) bool) (Rules, []error) {
	var d rulesDoc
	lines, errs := strictyaml.Decode(data, &d)
	if len(errs) > 0 {
		return Rules{}, errs
	}
	if _, ok := lines["routes"]; !ok {
		errs = append(errs, &strictyaml.Error{Path: "routes", Msg: "required (an empty list [] removes every route)"})
	}
	if d.Version < 0 {
		errs = append(errs, &strictyaml.Error{Line: lines.Of("version"), Path: "version", Msg: "must not be negative"})
	}
	verrs := Validate(d.Routes, backendExists)
	lines.Locate(verrs)
	errs = append(errs, verrs...)
	if len(errs) > 0 {
		return Rules{}, errs
	}
	return Rules{Version: d.Version, Routes: d.Routes}, nil
}
