package realservers

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// nginxModule is Debian's image_filter module (libnginx-mod-http-image-filter).
const nginxModule = "/usr/lib/nginx/modules/ngx_http_image_filter_module.so"

const nginxInstall = "apt-get install -y nginx-core libnginx-mod-http-image-filter"

// nginxMain wraps the caller's http-level configuration: one worker, no
// daemon, every path (pid, logs, temp files) inside the test's directory, and
// an access log that records each request's connection number and its place
// on that connection, so a test can count what reached nginx and on which
// connections.
const nginxMain = `# written by internal/realservers for one test
daemon off;
master_process on;
worker_processes 1;
{{if .Root}}user root;
{{end}}pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log info;
load_module {{.Module}};
events { worker_connections 256; }
http {
    log_format tandem_test '$connection $connection_requests $request_method $request_uri $status $request_length $body_bytes_sent';
    access_log {{.Dir}}/access.log tandem_test;
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;
    types {
        text/html html;
        text/plain txt;
        image/jpeg jpg jpeg;
        image/png png;
        image/gif gif;
        image/webp webp;
    }
    default_type application/octet-stream;
%s
}
`

// Nginx is a running nginx.
type Nginx struct {
	*Process
}

// AccessLog is the access log's path; each line is
// "connection requests-on-connection method uri status request-length body-bytes-sent".
func (n *Nginx) AccessLog() string { return filepath.Join(n.Dir, "access.log") }

// ErrorLog is the error log's path (level info: it records each connection
// nginx closes for keep-alive limits, client errors and the like).
func (n *Nginx) ErrorLog() string { return filepath.Join(n.Dir, "error.log") }

// StartNginx starts Debian's nginx with http, a text/template of the
// directives inside nginx's http block, and returns it once it accepts
// connections; it stops (SIGTERM, nginx's fast shutdown) when the test ends.
// The template gets vars plus Listen (127.0.0.1:PORT, for a listen
// directive) and Dir (the test's own nginx prefix directory, for roots and
// extra files). The server must listen on {{.Listen}}.
func StartNginx(t testing.TB, http string, vars map[string]string) *Nginx {
	t.Helper()
	bin := NeedNginx(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	data := map[string]string{}
	for k, v := range vars {
		data[k] = v
	}
	data["Listen"], data["Dir"] = addr, dir
	tmpl, err := template.New("nginx").Option("missingkey=error").Parse(fmt.Sprintf(nginxMain, http))
	if err != nil {
		t.Fatalf("cannot parse the nginx config template: %v", err)
	}
	main := map[string]any{"Dir": dir, "Module": nginxModule, "Root": os.Geteuid() == 0}
	for k, v := range data {
		if _, ok := main[k]; !ok {
			main[k] = v
		}
	}
	var conf bytes.Buffer
	if err := tmpl.Execute(&conf, main); err != nil {
		t.Fatalf("cannot fill in the nginx config template: %v", err)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-q", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t rejects the config: %v\n%s\n--- nginx.conf ---\n%s", err, out, conf.Bytes())
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
	p := start(t, "nginx", addr, dir, cmd, syscall.SIGTERM, filepath.Join(dir, "error.log"))
	return &Nginx{Process: p}
}

// NeedNginx returns the nginx binary, or skips the test when nginx or its
// image_filter module is missing (fails it with CI=true).
func NeedNginx(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/nginx"); err2 != nil {
			missing(t, "nginx", nginxInstall)
		}
		bin = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(nginxModule); err != nil {
		missing(t, "nginx's image_filter module ("+nginxModule+")", nginxInstall)
	}
	return bin
}

// AccessEntry is one line of the access log.
type AccessEntry struct {
	Conn     int64 // nginx's connection serial number ($connection)
	Nth      int   // the request's place on its connection, from 1 ($connection_requests)
	Method   string
	URI      string
	Status   int
	ReqBytes int64 // $request_length: request line, headers and body
	Sent     int64 // $body_bytes_sent
}

// Access reads the access log, waiting up to 5 s for it to hold at least
// want lines: nginx writes a request's line when it finalizes the request,
// which for some answers (image_filter's errors, for one) is after the client
// has read the whole response. It returns what is there then.
func (n *Nginx) Access(t testing.TB, want int) []AccessEntry {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile(n.AccessLog())
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("cannot read nginx's access log: %v", err)
		}
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(data) == 0 {
			lines = nil
		}
		if len(lines) >= want || time.Now().After(deadline) {
			out := make([]AccessEntry, 0, len(lines))
			for _, l := range lines {
				var e AccessEntry
				if _, err := fmt.Sscanf(l, "%d %d %s %s %d %d %d", &e.Conn, &e.Nth, &e.Method, &e.URI, &e.Status, &e.ReqBytes, &e.Sent); err != nil {
					t.Fatalf("cannot parse access log line %q: %v", l, err)
				}
				out = append(out, e)
			}
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}
