// Package realservers starts real third-party HTTP servers for tests: nginx
// (Debian's, with the image_filter module), imaginary (libvips), and
// willnorris.com/go/imageproxy (pure Go), plus Python's http.server as a
// server that answers HTTP/1.0. Each runs as the test's own child process on
// a free 127.0.0.1 port with its own directory (prefix, config, logs, temp
// files) under t.TempDir, and is stopped by t.Cleanup.
//
// A program that is missing skips the test with a message saying how to
// install it; with the environment variable CI=true it fails the test
// instead, so CI cannot pass by skipping.
//
// The Go-based servers are not Debian packages: internal/realservers/build.sh
// builds them from their Go modules into the cache directory
// $TANDEM_REALSERVERS_CACHE (default $HOME/.cache/tandem-realservers), as
// <name>-<version>/<name>; the tests look for them there. .ci/run runs the
// script once per run.
//
// This package is for tests only (it takes a testing.TB). It imports nothing
// from tandem.
package realservers
