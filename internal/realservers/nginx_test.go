package realservers

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"
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
