package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// closer is a backend on 127.0.0.1 whose answers say the connection ends
// (HTTP/1.0 without keep-alive, or Connection: close) while it keeps the
// connection open for a while: only honouring what the answer says keeps a
// proxy from sending a second request on it. It counts the requests each
// connection carried.
type closer struct {
	addr  string
	mu    sync.Mutex
	conns []int // requests per connection
}

func startCloser(t *testing.T, answer func(path string) string) *closer {
	t.Helper()
	s := &closer{}
	s.addr = serveTCP(t, func(c net.Conn) {
		defer c.Close()
		s.mu.Lock()
		s.conns = append(s.conns, 0)
		n := len(s.conns) - 1
		s.mu.Unlock()
		br := bufio.NewReader(c)
		c.SetDeadline(time.Now().Add(3 * time.Second))
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			s.mu.Lock()
			s.conns[n]++
			nth := s.conns[n]
			s.mu.Unlock()
			if nth > 1 {
				io.WriteString(c, "HTTP/1.1 500 Reused\r\nContent-Length: 6\r\n\r\nreused")
				continue
			}
			io.WriteString(c, answer(req.URL.Path))
			if strings.Contains(req.URL.Path, "untilclose") {
				return // the body ends with the connection
			}
		}
	})
	return s
}

func (s *closer) perConn() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.conns...)
}

// Answers that end their connection (HTTP/1.0 without keep-alive,
// Connection: close, a body delimited by the close) are honoured on every
// path, streamed responses included: one request per backend connection,
// every answer whole.
func TestConnectionCloseAnswers(t *testing.T) {
	body := strings.Repeat("b", 100<<10) // larger than a read buffer: streamed
	answers := map[string]func(string) string{
		"http10": func(p string) string {
			return fmt.Sprintf("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(p+body), p+body)
		},
		"connection_close": func(p string) string {
			return fmt.Sprintf("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(p+body), p+body)
		},
		"http10_untilclose": func(p string) string {
			return "HTTP/1.0 200 OK\r\n\r\n" + p + body
		},
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			legacy, shadow := startCloser(t, answer), startCloser(t, answer)
			f := startProxy(t, fmt.Sprintf(nginxMirrorConfig, "", ""), map[string]string{
				"legacy": "http://" + legacy.addr, "new": "http://" + shadow.addr})
			const n = 6
			for i := 0; i < n; i++ {
				path := fmt.Sprintf("/%s/%d", name, i)
				var resp *http.Response
				var err error
				if i%2 == 0 {
					resp, err = f.client.Get(f.url + path)
				} else {
					resp, err = f.client.Post(f.url+path, "text/plain", strings.NewReader("a body"))
				}
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(got) != path+body {
					t.Errorf("%s: %d, %d bytes (%v), want 200 and %d bytes", path, resp.StatusCode, len(got), err, len(path+body))
				}
				f.waitIdle()
			}
			f.waitMetric(`tandem_compare_total{route="r",result="match"}`, n)
			for side, b := range map[string]*closer{"legacy": legacy, "new": shadow} {
				per := b.perConn()
				if len(per) != n {
					t.Errorf("%s saw %d connections for %d requests: %v", side, len(per), n, per)
				}
				for i, k := range per {
					if k != 1 {
						t.Errorf("%s: connection %d carried %d requests", side, i, k)
					}
				}
			}
		})
	}
}
