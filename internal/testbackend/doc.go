// Package testbackend is an instrumented HTTP backend for tandem's integration
// tests. Start runs a real net/http server on 127.0.0.1 (never any other
// address) that records every request it receives (method, path, headers,
// request id, shadow flag, and the SHA-256 and size of the body, hashed while
// streaming) and answers according to a switchable Mode: echo a hash of the
// body, echo the body itself, hang, reset the connection, write garbage,
// stream a huge body, or answer a fixed status.
//
// PatternReader and PatternSHA256 generate deterministic bodies of any size in
// O(1) memory, so tests can push 512 MiB through the proxy and check the hash
// on the far side without holding either copy.
//
// The package owns test fixtures only: its Backend, the recorded Received
// values it hands out (always copies), and the generated patterns. It must
// not import any tandem package (proxy, backends, compare, rules, ...) but
// the leaf fixture package internal/recorder, so
// every package can use it in its tests without an import cycle, and it must
// not be imported by non-test code.
package testbackend
