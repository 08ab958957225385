// Package backends owns tandem's upstream clients: one per configured
// backend, each with two connection pools (served and shadow traffic, so that
// shadow load can never starve served traffic), explicit timeouts, and a
// gobreaker circuit breaker. It classifies upstream errors into a closed set
// of reasons used as metric labels and to choose the client's status code.
//
// Kept-alive connections are checked before reuse (rawconn.Usable: closed,
// reset or written to unasked means closed, not reused), and a failure on a
// reused connection before any response byte is reported by Retryable with
// a RetryReason; sending again is the caller's decision, since only it knows
// whether the body can be replayed.
//
// A backend is built from its own Options (every zero value documented);
// the file schema stays in config, translated by package app. It must not
// import the proxy (the proxy consumes it) or config.
package backends
