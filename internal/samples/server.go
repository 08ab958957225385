package samples

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Server is one sample service listening on a TCP address, started by
// Listen. It is usable from tests, benchmarks and the demo alike.
type Server struct {
	flavour Flavour
	ln      net.Listener
	srv     *http.Server
	url     string
	done    chan struct{}
	err     error // set before done is closed
}

// Listen starts the service of flavour f on addr ("127.0.0.1:0" when
// empty: a free loopback port) and serves it in the background until Close
// or Shutdown.
func Listen(addr string, f Flavour) (*Server, error) {
	if _, err := ParseFlavour(string(f)); err != nil {
		return nil, err
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		flavour: f,
		ln:      ln,
		srv: &http.Server{
			Handler:           NewService(f),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       2 * time.Minute,
			WriteTimeout:      2 * time.Minute,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
		},
		url:  "http://" + dialable(ln.Addr().(*net.TCPAddr)),
		done: make(chan struct{}),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.err = err
		close(s.done)
	}()
	return s, nil
}

// dialable returns a host:port a client can dial: the loopback address
// when the server listens on every interface.
func dialable(a *net.TCPAddr) string {
	host := a.IP.String()
	switch {
	case a.IP.IsUnspecified() && a.IP.To4() != nil:
		host = "127.0.0.1"
	case a.IP.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// URL returns the base URL, as "http://127.0.0.1:PORT" (no trailing slash).
func (s *Server) URL() string { return s.url }

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Flavour returns the flavour the server runs.
func (s *Server) Flavour() Flavour { return s.flavour }

// Close stops the server at once, closing every connection.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

// Shutdown stops the server gracefully: no new connections, in-flight
// requests finish, until ctx ends (then it closes what remains).
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	return err
}

// Done is closed when the server has stopped serving, after Close,
// Shutdown or a failure of the listener (see Err).
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns why the server stopped serving: nil while it serves and
// after Close or Shutdown.
func (s *Server) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}
