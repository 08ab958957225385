// Command mirrorfloor is the least work a mirroring HTTP/1.1 proxy can do,
// measured by bench/run.sh next to nginx and tandem: a floor, not a proxy
// anyone should run.
//
// For each client connection it keeps one connection to the legacy backend
// and one to the new one, through internal/rawconn as tandem's are. It reads
// a request (headers and a Content-Length body) as it arrives, in pieces of
// up to 256 KiB, writes each piece unchanged to legacy and hands it to a
// goroutine that writes it to new; it reads legacy's response the same way and
// writes it back; another goroutine reads and drops new's responses. That is one copy of each
// request from the kernel, two copies back into it, and HTTP framing, with
// nothing else: no header rewriting, no timeouts, no chunked bodies, no
// comparison, no records, no limits. Anything it cannot frame (no
// Content-Length on a request with a body, chunked encoding, a malformed
// line) closes the connection and is logged; it does not know that the
// answer to HEAD has no body, so it is for the benchmark's POSTs only.
//
// Whatever throughput and CPU per request it reaches on a machine bounds
// what a mirroring proxy written in Go can reach there: a real one does all
// of this plus its own work.
//
// With -late it keeps a whole copy of each request and writes it to new only
// after legacy has answered, which is tandem's order (a shadow is sent from
// its spool once the served response has begun). Comparing the two modes
// measures what that order costs a relay: at 1 MiB on the benchmark VM,
// 130-180 µs more CPU per request. It does not explain tandem's own cost: a
// tandem that started each shadow as its body arrived spent no less.
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

	"github.com/tandem-proxy/tandem/internal/rawconn"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen address (loopback only)")
	legacy := flag.String("legacy", "", "legacy backend host:port (served)")
	mirror := flag.String("new", "", "new backend host:port (mirrored)")
	late := flag.Bool("late", false, "copy each request whole and write it to new after legacy's answer, as tandem does, instead of piece by piece as it arrives")
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
	log.Fatal(serve(ln, *legacy, *mirror, *late))
}

// serve accepts connections until ln is closed. late is -late.
func serve(ln net.Listener, legacy, mirror string, late bool) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			if err := proxyConn(c, legacy, mirror, late); err != nil && !closedByPeer(err) {
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

// piece is the most a relay reads before writing. A read returns what the
// socket holds, up to this, and what it returned is written at once.
const piece = 256 << 10

// proxyConn serves one client connection until it closes or fails.
func proxyConn(c net.Conn, legacy, mirror string, late bool) error {
	c = rawconn.Wrap(c)
	defer c.Close()
	l, err := net.Dial("tcp", legacy)
	if err != nil {
		return fmt.Errorf("legacy: %w", err)
	}
	l = rawconn.Wrap(l)
	defer l.Close()
	m, err := net.Dial("tcp", mirror)
	if err != nil {
		return fmt.Errorf("new: %w", err)
	}
	m = rawconn.Wrap(m)
	defer m.Close()
	go func() {
		// new's responses are read and dropped until its connection closes
		mr := bufio.NewReaderSize(m, 16<<10)
		var buf []byte
		for {
			var err error
			if buf, err = relay(mr, buf, io.Discard, nil, false); err != nil {
				return
			}
		}
	}()
	// What was written to legacy is written to new by another goroutine, so
	// that the served path does not wait for it: three buffers take turns
	// between reading and the mirror's writes.
	free := make(chan []byte, 3)
	for range cap(free) {
		free <- nil
	}
	toMirror := make(chan []byte, cap(free))
	defer close(toMirror)
	go func() {
		var failed error
		for b := range toMirror {
			if failed == nil {
				if _, failed = m.Write(b); failed != nil && !closedByPeer(failed) {
					log.Printf("new: %v", failed)
				}
			}
			free <- b
		}
	}()
	handOver := func(b []byte) []byte {
		toMirror <- b
		return <-free
	}
	cr := bufio.NewReaderSize(c, 16<<10)
	lr := bufio.NewReaderSize(l, 16<<10)
	buf := <-free
	var whole []byte // -late: the request, read whole into one buffer
	for {
		if late {
			whole, err = relay(cr, <-free, l, nil, true)
		} else {
			buf, err = relay(cr, buf, l, handOver, false)
		}
		if err != nil {
			return fmt.Errorf("request: %w", err)
		}
		if buf, err = relay(lr, buf, c, nil, false); err != nil {
			return fmt.Errorf("legacy response: %w", err)
		}
		if late {
			toMirror <- whole
		}
	}
}

var (
	errChunked = errors.New("chunked bodies are not supported")
	errNoCL    = errors.New("no Content-Length")
)

// relay copies one HTTP/1.1 message (start line, headers, body) from r to w,
// reading into buf. When mirror is not nil, every piece written to w is then
// handed to mirror, which returns the buffer to read the next piece into.
// relay returns its last buffer for reuse, emptied; with keep, it reads the
// whole message into buf instead of reusing it piece after piece, and
// returns it. The headers leave with the start of the body; the body follows
// as it arrives, at most piece bytes a write.
// The body must be framed by Content-Length; a message without one has no
// body, except a request whose method carries one (POST, PUT, PATCH), which
// is refused.
func relay(r *bufio.Reader, buf []byte, w io.Writer, mirror func([]byte) []byte, keep bool) ([]byte, error) {
	buf, cl, err := readHeader(r, buf[:0])
	if err != nil {
		return buf, err
	}
	start := 0 // where the piece being read begins in buf
	for left := cl; ; {
		if n := min(left, piece-(len(buf)-start)); n > 0 {
			off := len(buf)
			buf = slices.Grow(buf, n)[:off+n] // reused buffers are not cleared
			got, err := r.Read(buf[off:])
			buf = buf[:off+got]
			left -= got
			if err != nil || got == 0 {
				if err == nil || errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return buf, fmt.Errorf("body: %w", err)
			}
		}
		if _, err := w.Write(buf[start:]); err != nil {
			return buf, err
		}
		switch {
		case keep:
			if left == 0 {
				return buf, nil
			}
			start = len(buf)
			continue
		case mirror != nil:
			buf = mirror(buf)
		}
		if left == 0 {
			return buf[:0], nil
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
