package samples

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/tandem-proxy/tandem/compare"
)

// demoSettings are the comparison settings the demo uses for the upload
// route: the noise fields of the JSON answer are ignored.
var demoSettings = compare.Settings{IgnoreJSON: []string{"$.id", "$.processed_at", "$.sha256", "$.bytes"}}

// captured turns an HTTP answer into what the data plane hands compare.
func captured(t *testing.T, resp *http.Response, body []byte) *compare.Response {
	t.Helper()
	r := &compare.Response{Status: resp.StatusCode}
	for name, vals := range resp.Header {
		for _, v := range vals {
			r.Header = append(r.Header, compare.HeaderField{Name: name, Value: v})
		}
	}
	sort.Slice(r.Header, func(i, j int) bool { return r.Header[i].Name < r.Header[j].Name })
	r.SetBody(body)
	return r
}

func post(t *testing.T, base string, it Item) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Post(base+"/upload", it.ContentType, bytes.NewReader(it.Body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func paths(r compare.Result) []string {
	var ps []string
	for _, d := range r.Diffs {
		ps = append(ps, d.Path)
	}
	return ps
}

func hasPath(r compare.Result, p string) bool {
	for _, d := range r.Diffs {
		if d.Path == p {
			return true
		}
	}
	return false
}

// TestCompareDemoStory runs the diff engine on legacy vs new the way the
// demo does: the JSON answers to the upload (noise fields ignored) and the
// thumbnails themselves (GET /thumb/{id}). Photos must match (the filters
// differ only harmlessly), rotated photos and transparent images must not.
func TestCompareDemoStory(t *testing.T) {
	c, err := compare.New(demoSettings)
	if err != nil {
		t.Fatal(err)
	}
	legacy, new := startPair(t)
	for _, it := range testCorpus() {
		t.Run(it.Name, func(t *testing.T) {
			lr, lb := post(t, legacy.URL(), it)
			nr, nb := post(t, new.URL(), it)
			jres := c.Compare(captured(t, lr, lb), captured(t, nr, nb))
			if it.Kind == KindBroken {
				if jres.Outcome != compare.OutcomeMatch {
					t.Errorf("JSON errors: %s %v, want a match (same 400 and message)", jres.Outcome, paths(jres))
				}
				return
			}
			var la, na UploadResponse
			decodeJSON(t, lb, &la)
			decodeJSON(t, nb, &na)
			ltr, ltb := getThumb(t, legacy.URL(), la.ID)
			ntr, ntb := getThumb(t, new.URL(), na.ID)
			tres := c.Compare(captured(t, ltr, ltb), captured(t, ntr, ntb))
			t.Logf("JSON: %s %v; thumbnail: %s %s", jres.Outcome, paths(jres), tres.Outcome, diffText(tres))

			switch it.Kind {
			case KindPhoto, KindAnimated:
				if jres.Outcome != compare.OutcomeMatch {
					t.Errorf("JSON: %s %v, want a match", jres.Outcome, paths(jres))
				}
				if tres.Outcome != compare.OutcomeMatch {
					t.Errorf("thumbnail: %s %s, want a match (perceptually equal)", tres.Outcome, diffText(tres))
				}
			case KindRotated:
				want := "$.image.dimensions"
				if it.Orientation >= 5 {
					if jres.Outcome != compare.OutcomeMismatch || !hasPath(jres, "$.source.width") || !hasPath(jres, "$.width") {
						t.Errorf("JSON: %s %v, want a mismatch at $.width and $.source.width", jres.Outcome, paths(jres))
					}
				} else {
					// Upside down: the same sizes, so the JSON answers
					// match; only the pixels tell.
					if jres.Outcome != compare.OutcomeMatch {
						t.Errorf("JSON: %s %v, want a match (same sizes)", jres.Outcome, paths(jres))
					}
					want = "$.image.psnr"
				}
				if tres.Outcome != compare.OutcomeMismatch || !hasPath(tres, want) {
					t.Errorf("thumbnail: %s %s, want a mismatch at %s", tres.Outcome, diffText(tres), want)
				}
			case KindAlpha:
				if jres.Outcome != compare.OutcomeMismatch || !hasPath(jres, "$.format") {
					t.Errorf("JSON: %s %v, want a mismatch at $.format", jres.Outcome, paths(jres))
				}
				if tres.Outcome != compare.OutcomeMismatch || !hasPath(tres, "$.image.format") || !hasPath(tres, "$.image.alpha") {
					t.Errorf("thumbnail: %s %s, want a mismatch at $.image.format and $.image.alpha", tres.Outcome, diffText(tres))
				}
			}
		})
	}
}

func diffText(r compare.Result) string {
	var b strings.Builder
	for _, d := range r.Diffs {
		b.WriteString(d.Path + " (" + d.Legacy + " → " + d.New + ") ")
	}
	return b.String()
}
