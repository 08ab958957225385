package compare

import (
	"slices"
	"testing"
)

func TestHeaders(t *testing.T) {
	body := []byte("same body")
	h := func(kv ...string) []HeaderField {
		var out []HeaderField
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name     string
		why      string
		legacy   []HeaderField
		new      []HeaderField
		settings Settings
		want     []Difference // nil: match
	}{
		{name: "equal", why: "same headers in another order of names",
			legacy: h("Content-Type", "text/plain", "Cache-Control", "max-age=60"),
			new:    h("Cache-Control", "max-age=60", "Content-Type", "text/plain")},
		{name: "value differs", why: "the one real difference",
			legacy: h("Cache-Control", "max-age=60"), new: h("Cache-Control", "no-store"),
			want: []Difference{{Kind: KindHeader, Path: "$.header.Cache-Control", Legacy: "max-age=60", New: "no-store"}}},
		{name: "names case-insensitive", why: "HTTP header names are case-insensitive",
			legacy: h("cache-control", "max-age=60"), new: h("Cache-Control", "max-age=60")},
		{name: "missing on new", why: "absent header is <missing>",
			legacy: h("X-Thumb-Version", "2"), new: nil,
			want: []Difference{{Kind: KindHeader, Path: "$.header.X-Thumb-Version", Legacy: "2", New: missing}}},
		{name: "extra on new", why: "and the other way round",
			legacy: nil, new: h("x-debug", "1"),
			want: []Difference{{Kind: KindHeader, Path: "$.header.X-Debug", Legacy: missing, New: "1"}}},
		{name: "multi-valued order", why: "values are an ordered list",
			legacy: h("Vary", "Accept", "Vary", "Origin"), new: h("Vary", "Origin", "Vary", "Accept"),
			want: []Difference{{Kind: KindHeader, Path: "$.header.Vary", Legacy: `["Accept", "Origin"]`, New: `["Origin", "Accept"]`}}},
		{name: "multi-valued count", why: "one value fewer",
			legacy: h("Link", "<a>", "Link", "<b>"), new: h("Link", "<a>"),
			want: []Difference{{Kind: KindHeader, Path: "$.header.Link", Legacy: `["<a>", "<b>"]`, New: "<a>"}}},
		{name: "hop-by-hop", why: "connection headers describe the hop, not the response",
			legacy: h("Connection", "keep-alive", "Keep-Alive", "timeout=5", "Transfer-Encoding", "chunked"),
			new:    h("Connection", "close", "TE", "trailers", "Upgrade", "h2c", "Trailer", "X", "Proxy-Authenticate", "Basic")},
		{name: "named in Connection", why: "RFC 9110: headers listed in Connection are hop-by-hop",
			legacy: h("Connection", "X-Hop, close", "X-Hop", "1"), new: h("X-Hop", "2", "Connection", "x-hop")},
		{name: "default noise", why: "Date, Server, ETag… differ between any two servers",
			legacy: h("Date", "a", "Server", "legacy", "X-Request-Id", "1", "Age", "3", "Expires", "x", "Last-Modified", "y",
				"ETag", `"1"`, "Content-Length", "9", "Set-Cookie", "s=1", "Via", "1.1 a", "X-Runtime", "0.1", "X-Response-Time", "3ms", "Server-Timing", "db;dur=1"),
			new: h("Date", "b", "Server", "new", "X-Request-Id", "2", "Age", "0", "ETag", `"2"`, "Set-Cookie", "s=2")},
		{name: "ignore_headers case-insensitive", why: "route ignores its own noisy header",
			legacy: h("X-Trace", "abc"), new: h("x-trace", "def"),
			settings: Settings{IgnoreHeaders: []string{"X-TRACE"}}},
		{name: "compare_headers takes back ETag", why: "this route needs equal ETags",
			legacy: h("ETag", `"1"`), new: h("ETag", `"2"`), settings: Settings{CompareHeaders: []string{"etag"}},
			want: []Difference{{Kind: KindHeader, Path: "$.header.Etag", Legacy: `"1"`, New: `"2"`}}},
		{name: "content-type normalised", why: "charset case and spacing carry no meaning",
			legacy: h("Content-Type", "application/json; charset=UTF-8"), new: h("Content-Type", "Application/JSON;charset=utf-8")},
		{name: "content-type differs", why: "another media type is a real change",
			legacy: h("Content-Type", "image/png"), new: h("Content-Type", "image/jpeg"),
			want: []Difference{{Kind: KindHeader, Path: "$.header.Content-Type", Legacy: "image/png", New: "image/jpeg"}}},
		{name: "surrounding space", why: "optional white space around values is not part of them",
			legacy: h("X-A", " 1 "), new: h("X-A", "1")},
		{name: "several differences sorted", why: "diffs come in name order",
			legacy: h("X-B", "1", "X-A", "1"), new: h("X-A", "2", "X-B", "2"),
			want: []Difference{
				{Kind: KindHeader, Path: "$.header.X-A", Legacy: "1", New: "2"},
				{Kind: KindHeader, Path: "$.header.X-B", Legacy: "1", New: "2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.settings)
			if err != nil {
				t.Fatal(err)
			}
			l := Response{Status: 200, Header: tc.legacy}
			n := Response{Status: 200, Header: tc.new}
			l.SetBody(body)
			n.SetBody(body)
			got := c.Compare(&l, &n)
			wantOutcome := OutcomeMatch
			if tc.want != nil {
				wantOutcome = OutcomeMismatch
			}
			if got.Outcome != wantOutcome || !slices.Equal(got.Diffs, tc.want) {
				t.Errorf("%s (%s):\ngot  %s %+v\nwant %s %+v", tc.name, tc.why, got.Outcome, got.Diffs, wantOutcome, tc.want)
			}
		})
	}
}

func TestCanonicalHeaderKey(t *testing.T) {
	for in, want := range map[string]string{
		"content-type": "Content-Type", "ETAG": "Etag", "x-request-id": "X-Request-Id", "a": "A", "-x": "-X",
	} {
		if got := canonicalHeaderKey(in); got != want {
			t.Errorf("canonicalHeaderKey(%q) = %q, want %q", in, got, want)
		}
	}
}
