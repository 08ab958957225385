// Package backends owns tandem's upstream clients: one per configured
// backend, each with two connection pools (served and shadow traffic, so that
// shadow load can never starve served traffic), explicit timeouts, and a
// gobreaker circuit breaker. It classifies upstream errors into a closed set
// of reasons used as metric labels and to choose the client's status code.
//
// It must not import the proxy: the proxy consumes it.
package backends
