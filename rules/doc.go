// Package rules owns tandem's routing rules: the route model and its
// validation, the sticky bucketing that decides which backend serves a request
// and whether it is mirrored, and the ramp gates. Decisions here are pure
// functions of their inputs (time included); the package must not import
// network code (net/http, fasthttp) so that it stays fast to test and fuzz.
//
// It also keeps the rules' persistent state (State: data_dir/rules.json,
// rules.json.prev and the append-only audit.log), and the automatic ramp:
// Step is the pure decision, RampWindow gathers a step's statistics, and
// RampTracker ties the two so that statistics never outlive their step.
// RampWindow's latency histograms and p99 are internal/latency's, the same
// as the diff store's report.
// File I/O is the only side effect, and only State performs it.
package rules
