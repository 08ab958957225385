// Package faultbackend is a fault-injecting HTTP/1.1 backend for tandem's
// tests. Unlike testbackend (a net/http server), it speaks HTTP on a raw
// net.Listener on 127.0.0.1, so it can misbehave at the byte level: add
// latency, throttle the response, hang, reset the connection in the middle
// of the request body or of the response, close slowly, write garbage, send
// fewer bytes than its Content-Length says, or stream a chunked response that
// never ends.
//
// Every request it parses is recorded (method, path, X-Request-Id, shadow
// flag, declared length, body bytes read, whether the body was read whole),
// and it counts its open connections, so tests can say precisely what reached
// it and what it still holds.
//
// The package owns test fixtures only. It must not import any tandem package
// but the leaf fixture package internal/recorder, and must not be imported by non-test code. Every loop in it is bounded: by
// Close, by a per-connection deadline and by byte caps.
package faultbackend
