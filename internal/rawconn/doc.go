// Package rawconn wraps TCP connections so that their reads and writes do
// not hand the goroutine's P to another thread while the kernel copies.
//
// A read or write on a *net.TCPConn enters the kernel through
// syscall.Syscall, which marks the P as in a syscall. When the call lasts
// past a sysmon tick (20 µs or more; a 1 MiB copy through loopback takes
// hundreds), sysmon takes the P away and starts another thread on it, and
// the returning thread has to find a P again or park: futex wake-ups,
// context switches, and sysmon kept at its shortest sleep. The sockets are
// non-blocking, so a read or write never waits in the kernel for the peer;
// it only copies. Conn makes the same calls with syscall.RawSyscall, which
// keeps the P for the copy, and waits for readiness through the runtime's
// poller exactly as net does (syscall.RawConn), so deadlines, Close and
// blocking behave as on the wrapped connection.
//
// The cost of keeping the P: a stop-the-world pause of the garbage collector
// waits for a copy in progress to end (a copy never exceeds what the socket
// buffer holds), and the goroutines queued on that P wait for another P to
// steal them.
//
// CheckIdle (and Usable, for a pool's check before reuse) tells with one
// non-blocking recvfrom(MSG_PEEK) whether the peer closed, reset or wrote to
// a connection that carries no request.
//
// WrapChecked gives the idle check without the raw reads and writes (the
// client.raw_syscalls: false setting).
//
// Only Linux gets the raw calls; elsewhere Wrap returns the connection as is
// and Usable reports every connection usable.
package rawconn
