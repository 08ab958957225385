package realservers

import (
	"bufio"
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNginxImageFilter starts nginx with image_filter in front of the echo
// upstream and checks that it resizes an uploaded PNG and refuses garbage
// with 415, as nginx does.
func TestNginxImageFilter(t *testing.T) {
	echo := Echo(t)
	n := StartNginx(t, `
    server {
        listen {{.Listen}};
        location /resize {
            image_filter resize 16 16;
            image_filter_buffer 8M;
            proxy_pass http://{{.Echo}};
        }
    }`, map[string]string{"Echo": echo})

	img := image.NewRGBA(image.Rect(0, 0, 64, 32))
	for i := range img.Pix {
		img.Pix[i] = 0x80
	}
	img.Set(0, 0, color.RGBA{255, 0, 0, 255})
	var src bytes.Buffer
	if err := png.Encode(&src, img); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(n.URL()+"/resize", "image/png", bytes.NewReader(src.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("nginx's answer is not a PNG: %v", err)
	}
	if cfg.Width != 16 || cfg.Height != 8 {
		t.Errorf("resized to %dx%d, want 16x8", cfg.Width, cfg.Height)
	}

	resp, err = http.Post(n.URL()+"/resize", "image/png", strings.NewReader("not an image at all"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("garbage: status %d, want 415", resp.StatusCode)
	}
	log := n.Access(t, 2)
	if len(log) != 2 || log[0].Status != 200 || log[1].Status != 415 {
		t.Errorf("access log %+v, want a 200 and a 415", log)
	}
}

// TestNginxClosesAfterImageFilterError pins the nginx behaviour issue 18 is
// about: after image_filter refuses an upload with 415, nginx says
// "Connection: keep-alive" and then closes the connection anyway, so a
// client (or proxy) that reuses it finds it dead.
func TestNginxClosesAfterImageFilterError(t *testing.T) {
	n := StartNginx(t, `
    server {
        listen {{.Listen}};
        location /resize {
            image_filter resize 16 16;
            proxy_pass http://{{.Echo}};
        }
    }`, map[string]string{"Echo": Echo(t)})
	c, err := net.Dial("tcp", n.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "POST /resize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5\r\n\r\nhello"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType || resp.Close || resp.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("status %d, Connection %q (close %v); want 415 announcing keep-alive", resp.StatusCode, resp.Header.Get("Connection"), resp.Close)
	}
	if b, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the 415: read %q, %v; want EOF (nginx closes)", b, err)
	}
}

// TestGoServersStart starts imaginary and imageproxy (built by build.sh)
// and Python's http.server, and checks each answers as documented.
func TestGoServersStart(t *testing.T) {
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 40, 20))
	var src bytes.Buffer
	if err := png.Encode(&src, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.png"), src.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("imaginary", func(t *testing.T) {
		p := Imaginary(t, "")
		resp, err := http.Post(p.URL()+"/resize?width=10", "image/png", bytes.NewReader(src.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cfg, err := png.DecodeConfig(bytes.NewReader(body))
		if resp.StatusCode != 200 || err != nil || cfg.Width != 10 {
			t.Fatalf("status %d, %v, %+v: want a 10-pixel-wide PNG", resp.StatusCode, err, cfg)
		}
	})
	t.Run("imageproxy", func(t *testing.T) {
		origin := PythonHTTP10(t, dir)
		p := Imageproxy(t, origin.URL()+"/")
		resp, err := http.Get(p.URL() + "/10x/a.png")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cfg, err := png.DecodeConfig(bytes.NewReader(body))
		if resp.StatusCode != 200 || err != nil || cfg.Width != 10 {
			t.Fatalf("status %d, %v, %+v (%q): want a 10-pixel-wide PNG", resp.StatusCode, err, cfg, clipBody(body))
		}
	})
	t.Run("python http.server", func(t *testing.T) {
		p := PythonHTTP10(t, dir)
		resp, err := http.Get(p.URL() + "/a.png")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMinor != 0 || !resp.Close {
			t.Fatalf("status %d, %s, close %v: want 200 HTTP/1.0 and a close", resp.StatusCode, resp.Proto, resp.Close)
		}
	})
}

func clipBody(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}
