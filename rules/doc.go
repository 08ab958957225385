// Package rules owns tandem's routing rules: the route model and its
// validation, the sticky bucketing that decides which backend serves a request
// and whether it is mirrored, and the ramp gates. Decisions here are pure
// functions of their inputs (time included); the package must not import
// network code (net/http, fasthttp) so that it stays fast to test and fuzz.
package rules
