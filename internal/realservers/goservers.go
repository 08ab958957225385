package realservers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// The versions build.sh builds; keep the two in step.
const (
	ImaginaryVersion  = "v1.2.4"
	ImageproxyVersion = "v0.11.2"
)

// cached returns the path of a program build.sh put in the cache directory,
// or skips (fails with CI=true).
func cached(t testing.TB, name, version string) string {
	t.Helper()
	p := filepath.Join(CacheDir(), name+"-"+version, name)
	if _, err := os.Stat(p); err != nil {
		missing(t, name+" "+version+" ("+p+")",
			"run internal/realservers/build.sh, which builds it into $TANDEM_REALSERVERS_CACHE (default ~/.cache/tandem-realservers)")
	}
	return p
}

// Imaginary starts h2non/imaginary (libvips) on 127.0.0.1 with one CPU and
// no URL source, so it processes only uploaded bodies (POST /resize?width=…
// and its other endpoints) and never fetches anything; mount, when not
// empty, also lets it read files from that directory (GET ?file=NAME).
func Imaginary(t testing.TB, mount string) *Process {
	t.Helper()
	bin := cached(t, "imaginary", ImaginaryVersion)
	dir := t.TempDir()
	port := FreePort(t)
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-cpus", "1", "-log-level", "error"}
	if mount != "" {
		args = append(args, "-mount", mount)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+dir, "GOMAXPROCS=1")
	return start(t, "imaginary", "127.0.0.1:"+strconv.Itoa(port), dir, cmd, syscall.SIGTERM)
}

// Imageproxy starts willnorris.com/go/imageproxy on 127.0.0.1. It answers
// GET /{options}/{remote}: remote is resolved against origin (a base URL
// such as http://127.0.0.1:PORT/) and only origin's host may be fetched, so
// it reaches nothing else; it caches nothing and follows no redirects.
func Imageproxy(t testing.TB, origin string) *Process {
	t.Helper()
	bin := cached(t, "imageproxy", ImageproxyVersion)
	dir := t.TempDir()
	port := FreePort(t)
	args := []string{
		"-addr", "127.0.0.1:" + strconv.Itoa(port),
		"-baseURL", origin,
		"-allowHosts", "127.0.0.1",
		"-followRedirects=false",
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// No proxy from the environment: the origin is on loopback.
	cmd.Env = append(os.Environ(), "TMPDIR="+dir, "HTTP_PROXY=", "HTTPS_PROXY=", "http_proxy=", "https_proxy=", "NO_PROXY=*")
	return start(t, "imageproxy", "127.0.0.1:"+strconv.Itoa(port), dir, cmd, syscall.SIGTERM)
}

// PythonHTTP10 starts Python's http.server serving root: it answers with
// HTTP/1.0 status lines (BaseHTTPRequestHandler's default protocol_version)
// and closes the connection after each answer, whatever the request's
// version; POST gets 501.
func PythonHTTP10(t testing.TB, root string) *Process {
	t.Helper()
	bin, err := exec.LookPath("python3")
	if err != nil {
		missing(t, "python3", "apt-get install -y python3")
	}
	port := FreePort(t)
	cmd := exec.Command(bin, "-m", "http.server", "--bind", "127.0.0.1", "--directory", root, strconv.Itoa(port))
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
	return start(t, "python3 http.server", "127.0.0.1:"+strconv.Itoa(port), cmd.Dir, cmd, syscall.SIGTERM)
}
