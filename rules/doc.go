// Package rules owns tandem's routing model: the route (its ramp settings
// included: steps, hold, gates), one version of the rules and its audit
// event, validation and parsing, and the sticky bucketing that decides which
// backend serves a request and whether it is mirrored. Everything here is a
// pure function of its inputs: no file or network I/O. It must not import
// network code (net/http, fasthttp), so that it stays fast to test and
// fuzz, nor any tandem package but compare and internal helpers.
//
// The rules' persistence and audit log are package rulestore; the ramp's
// decisions are package ramp.
package rules
