// Package rules owns tandem's routing rules: the route model (its ramp
// settings included: steps, hold, gates) and its validation and parsing, and
// the sticky bucketing that decides which backend serves a request and
// whether it is mirrored. Decisions here are pure functions of their inputs;
// the package must not import network code (net/http, fasthttp) so that it
// stays fast to test and fuzz, nor any tandem package but compare and
// internal helpers.
//
// It also keeps, for now, the rules' persistent state (State:
// data_dir/rules.json, rules.json.prev and the append-only audit.log, with
// versioned compare-and-set changes, subscribers and recovery); File I/O is
// the only side effect, and only State performs it. The ramp's decisions
// (Step, the statistics window, the controller, Apply) are package ramp.
package rules
