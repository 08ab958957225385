package samples_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/tandem-proxy/tandem/internal/samples"
)

// Start both flavours and upload an EXIF-rotated photo to each: the new
// flavour ignores the orientation.
func Example() {
	legacy, err := samples.Listen("127.0.0.1:0", samples.Legacy)
	if err != nil {
		panic(err)
	}
	defer legacy.Close()
	new, err := samples.Listen("127.0.0.1:0", samples.New)
	if err != nil {
		panic(err)
	}
	defer new.Close()

	for _, it := range samples.Corpus(samples.CorpusOptions{Seed: 1}) {
		if it.Name != "rotated-6.jpg" {
			continue
		}
		for _, s := range []*samples.Server{legacy, new} {
			resp, err := http.Post(s.URL()+"/upload", it.ContentType, bytes.NewReader(it.Body))
			if err != nil {
				panic(err)
			}
			var a samples.UploadResponse
			err = json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			if err != nil {
				panic(err)
			}
			fmt.Printf("%-6s %d %dx%d %s (source %dx%d)\n", s.Flavour(), resp.StatusCode, a.Width, a.Height, a.Format, a.Source.Width, a.Source.Height)
		}
	}
	// Output:
	// legacy 200 64x128 jpeg (source 300x600)
	// new    200 128x64 jpeg (source 600x300)
}
