// Command mirrorfloor is the least work a mirroring HTTP/1.1 proxy can do,
// measured by bench/run.sh next to nginx and tandem: a floor, not a proxy
// anyone should run.
//
// For each client connection it keeps one connection to the legacy backend
// and one to the new one. It reads a request (headers and a Content-Length
// body) in pieces of up to 64 KiB and writes each piece unchanged to legacy
// and then to new, reads legacy's response the same way and writes it back;
// another goroutine reads and drops new's responses. That is one copy of each
// request from the kernel, two copies back into it, and HTTP framing, with
// nothing else: no header rewriting, no timeouts, no chunked bodies, no
// comparison, no records, no limits. Anything it cannot frame (no
// Content-Length on a request with a body, chunked encoding, a malformed
// line) closes the connection and is logged.
//
// Whatever throughput and CPU per request it reaches on a machine bounds
// what a mirroring proxy written in Go can reach there: a real one does all
// of this plus its own work.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"slices"
	"strconv"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen address (loopback only)")
	legacy := flag.String("legacy", "", "legacy backend host:port (served)")
	mirror := flag.String("new", "", "new backend host:port (mirrored)")
	flag.Parse()
	if *legacy == "" || *mirror == "" {
		fmt.Fprintln(os.Stderr, "mirrorfloor: -legacy and -new are required")
		os.Exit(2)
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(os.Stderr, "mirrorfloor: -listen %q is not a loopback address\n", *listen)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mirrorfloor:", err)
		os.Exit(1)
	}
	log.SetPrefix("mirrorfloor: ")
	log.SetFlags(0)
	log.Fatal(serve(ln, *legacy, *mirror))
}

// serve accepts connections until ln is closed.
func serve(ln net.Listener, legacy, mirror string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			if err := proxyConn(c, legacy, mirror); err != nil && !closedByPeer(err) {
				log.Print(err)
			}
		}()
	}
}

// closedByPeer tells the end of a connection (wrk closes its connections,
// with a reset, when a run ends) from a failure worth logging.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// chunk is the most a relay reads before writing: a body is copied in
// pieces of this size, each written while it is still in the CPU's cache.
const chunk = 64 << 10

// proxyConn serves one client connection until it closes or fails.
func proxyConn(c net.Conn, legacy, mirror string) error {
	defer c.Close()
	l, err := net.Dial("tcp", legacy)
	if err != nil {
		return fmt.Errorf("legacy: %w", err)
	}
	defer l.Close()
	m, err := net.Dial("tcp", mirror)
	if err != nil {
		return fmt.Errorf("new: %w", err)
	}
	defer m.Close()
	go func() {
		// new's responses are read and dropped until its connection closes
		mr := bufio.NewReaderSize(m, 16<<10)
		var buf []byte
		for {
			var err error
			if buf, err = relay(mr, buf, io.Discard, nil); err != nil {
				return
			}
		}
	}()
	cr := bufio.NewReaderSize(c, 16<<10)
	lr := bufio.NewReaderSize(l, 16<<10)
	var buf []byte
	for {
		if buf, err = relay(cr, buf, l, m); err != nil {
			return fmt.Errorf("request: %w", err)
		}
		if buf, err = relay(lr, buf, c, nil); err != nil {
			return fmt.Errorf("legacy response: %w", err)
		}
	}
}

var (
	errChunked = errors.New("chunked bodies are not supported")
	errNoCL    = errors.New("no Content-Length")
)

// relay copies one HTTP/1.1 message (start line, headers, body) from r to w1
// and to w2 when it is not nil, reading into buf and returning it for reuse.
// The headers leave with the start of the body, then the body follows in
// writes of at most chunk bytes. The body must be framed by Content-Length; a
// message without one has no body, except a request whose method carries one
// (POST, PUT, PATCH), which is refused.
func relay(r *bufio.Reader, buf []byte, w1, w2 io.Writer) ([]byte, error) {
	buf, cl, err := readHeader(r, buf[:0])
	if err != nil {
		return buf, err
	}
	for left := cl; ; {
		if n := min(left, chunk-len(buf)); n > 0 {
			off := len(buf)
			buf = slices.Grow(buf, n)[:off+n] // reused buffers are not cleared
			if _, err := io.ReadFull(r, buf[off:]); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return buf, fmt.Errorf("body: %w", err)
			}
			left -= n
		}
		if _, err := w1.Write(buf); err != nil {
			return buf, err
		}
		if w2 != nil {
			if _, err := w2.Write(buf); err != nil {
				return buf, err
			}
		}
		if left == 0 {
			return buf, nil
		}
		buf = buf[:0]
	}
}

// readHeader appends a message's start line and headers read from r to buf
// and returns its body's length.
func readHeader(r *bufio.Reader, buf []byte) ([]byte, int, error) {
	first := true
	cl := -1
	needsBody := false
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return buf, 0, errors.New("header line longer than 16 KiB")
			}
			if !first && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return buf, 0, err
		}
		buf = append(buf, line...)
		t := bytes.TrimRight(line, "\r\n")
		if first {
			first = false
			m, _, _ := bytes.Cut(t, []byte(" "))
			switch string(m) {
			case "POST", "PUT", "PATCH":
				needsBody = true
			}
			continue
		}
		if len(t) == 0 {
			break
		}
		name, value, ok := bytes.Cut(t, []byte(":"))
		if !ok {
			return buf, 0, fmt.Errorf("malformed header line %q", t)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 {
				return buf, 0, fmt.Errorf("bad Content-Length %q", value)
			}
			cl = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return buf, 0, errChunked
		}
	}
	if cl < 0 {
		if needsBody {
			return buf, 0, errNoCL
		}
		cl = 0
	}
	return buf, cl, nil
}
