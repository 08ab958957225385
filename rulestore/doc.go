// Package rulestore keeps the versioned routing rules of a tandem instance
// and their audit log. State is the implementation on files in data_dir
// (rules.json, rules.json.prev, the append-only audit.log, each change
// fsync'd); Store is the contract it satisfies, shaped so that a shared
// store (PostgreSQL, for a fleet) can satisfy it next: versioned
// compare-and-set changes, subscription to the versions in force, audit
// append and read, and what recovery found at open.
//
// A change is stored only if the validator the caller gives accepts it; the
// application makes the data plane's compilation part of it (a dry run), so
// a version stored can be put in force.
//
// It imports the rules model and no network code, and never imports proxy,
// ramp, admin, store or config.
package rulestore
