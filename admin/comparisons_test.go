package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/store"
)

// GET /api/v1/comparisons?request_id=ID: the id is required, given once
// and bounded (400 naming the problem, the store not asked); an unknown id
// is 200 with an empty list; a known one lists every comparison as the
// store gives it, legacy→new and legacy→secondary.
func TestComparisonsLookup(t *testing.T) {
	f := newFixture()
	at := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	f.reports.comparisons = map[string][]store.Comparison{
		"req-1": {
			{At: at, Route: "img", RequestID: "req-1", Instance: "127.0.0.1:8080", Against: "secondary", Outcome: compare.OutcomeNoise,
				Diffs: []store.ComparedDiff{{Kind: compare.KindJSON, Path: "$.nonce", Noise: true}}},
			{At: at.Add(time.Millisecond), Route: "img", RequestID: "req-1", Instance: "127.0.0.1:8080", Against: "new", Outcome: compare.OutcomeMismatch,
				Diffs:    []store.ComparedDiff{{Kind: compare.KindJSON, Path: "$.field"}, {Kind: compare.KindJSON, Path: "$.nonce", Noise: true}},
				SampleID: "s1"},
		},
	}
	long := strings.Repeat("x", MaxRequestID)
	for _, c := range []struct {
		why, query string
		status     int
		want       string
		asked      string // the store's last question; "" = not asked
	}{
		{"no request_id", "", 400, "request_id is required", ""},
		{"another parameter only", "?id=req-1", 400, "request_id is required", ""},
		{"empty request_id", "?request_id=", 400, "request_id is empty", ""},
		{"request_id twice", "?request_id=req-1&request_id=req-2", 400, "request_id is given 2 times; give it once", ""},
		{"request_id too long", "?request_id=" + long + "x", 400, "request_id is 257 bytes; at most 256 are accepted", ""},
		{"malformed query", "?request_id=%zz", 400, "cannot parse the query string", ""},
		{"request_id at the bound", "?request_id=" + long, 200, `"comparisons": []`, "comparisons " + long},
		{"unknown request", "?request_id=nobody", 200, `"comparisons": []`, "comparisons nobody"},
		{"escaped id", "?request_id=" + url.QueryEscape("a b&c"), 200, `"request_id": "a b\u0026c"`, "comparisons a b&c"},
		{"known request", "?request_id=req-1", 200, `"against": "secondary"`, "comparisons req-1"},
	} {
		n := len(f.reports.asked)
		w := do(f.srv, req("GET", "/api/v1/comparisons"+c.query, ""))
		expect(t, c.why, w, c.status, c.want)
		if c.status == 400 {
			var e apiError
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error == "" || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%s: not a JSON error: %s", c.why, w.Body.String())
			}
		}
		switch {
		case c.asked == "" && len(f.reports.asked) != n:
			t.Errorf("%s: refused, but the store was asked %q", c.why, f.reports.lastAsked())
		case c.asked != "" && f.reports.lastAsked() != c.asked:
			t.Errorf("%s: the store was asked %q, want %q", c.why, f.reports.lastAsked(), c.asked)
		}
	}

	// The known request's answer, decoded: both comparisons in the
	// store's order with every field.
	w := do(f.srv, req("GET", "/api/v1/comparisons?request_id=req-1", ""))
	var got struct {
		RequestID   string             `json:"request_id"`
		Comparisons []store.Comparison `json:"comparisons"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := f.reports.comparisons["req-1"]
	if got.RequestID != "req-1" || len(got.Comparisons) != 2 {
		t.Fatalf("answer %+v", got)
	}
	for i := range want {
		g, wt := got.Comparisons[i], want[i]
		if !g.At.Equal(wt.At) || g.Route != wt.Route || g.Against != wt.Against || g.Outcome != wt.Outcome ||
			g.Instance != wt.Instance || g.SampleID != wt.SampleID || len(g.Diffs) != len(wt.Diffs) {
			t.Errorf("comparison %d: %+v, want %+v", i, g, wt)
			continue
		}
		for j := range wt.Diffs {
			if g.Diffs[j] != wt.Diffs[j] {
				t.Errorf("comparison %d diff %d: %+v, want %+v", i, j, g.Diffs[j], wt.Diffs[j])
			}
		}
	}
	if !strings.Contains(w.Body.String(), `"sample_id": "s1"`) || !strings.Contains(w.Body.String(), `"noise": true`) {
		t.Errorf("answer lacks the sample id or the noise flags: %s", w.Body.String())
	}

	// The store's failure is ours: 500, with its message.
	f.reports.comparisonsErr = errors.New("database is locked")
	expect(t, "store failure", do(f.srv, req("GET", "/api/v1/comparisons?request_id=req-1", "")), http.StatusInternalServerError,
		`cannot read the comparisons of request \"req-1\": database is locked`)
}
