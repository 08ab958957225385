package samples

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkUpload measures one upload through the handler (no network):
// decode, thumbnail, encode, store.
func BenchmarkUpload(b *testing.B) {
	for _, name := range []string{"photo-landscape.jpg", "photo-big.jpg", "alpha-sticker.png"} {
		it := corpusItem(b, name)
		for _, f := range []Flavour{Legacy, New} {
			b.Run(name+"/"+string(f), func(b *testing.B) {
				h := NewService(f)
				b.SetBytes(int64(len(it.Body)))
				b.ReportAllocs()
				for b.Loop() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/upload", bytes.NewReader(it.Body)))
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
			})
		}
	}
}

func BenchmarkCorpus(b *testing.B) {
	for b.Loop() {
		Corpus(CorpusOptions{Seed: 1})
	}
}
