package admin

import (
	"net/http"
	"testing"
	"time"
)

// report, diffs and events read their query parameters strictly: a bad
// since or limit is 400 naming the value and the accepted form, and only
// good ones reach the store, as given.
func TestQueryParameters(t *testing.T) {
	f := newFixture()
	recent := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	for _, c := range []struct {
		why, target string
		status      int
		want        string // in the body
		asked       string // what the fake was asked last ("" = not checked)
	}{
		{"report, no parameters", "/api/v1/report", 200, `"routes": []`, "report  0001-01-01T00:00:00Z"},
		{"report for a route since a time", "/api/v1/report?route=img&since=2026-01-02T15:04:05Z", 200, "generated_at", "report img 2026-01-02T15:04:05Z"},
		{"report since with an offset", "/api/v1/report?since=2026-01-02T17:04:05%2B02:00", 200, "", "report  2026-01-02T17:04:05+02:00"},
		{"report since a date only", "/api/v1/report?since=2026-01-02", 400, `since must be RFC 3339 (e.g. 2026-01-02T15:04:05Z), not \"2026-01-02\"`, ""},
		{"report since a Unix time", "/api/v1/report?since=1767366245", 400, `not \"1767366245\"`, ""},
		{"diffs, no limit: the store's default", "/api/v1/diffs", 200, `"diffs": []`, "samples {  0}"},
		{"diffs by route, path and limit", "/api/v1/diffs?route=img&path=$.id&limit=7", 200, "", "samples {img $.id 7}"},
		{"diffs limit 1000", "/api/v1/diffs?limit=1000", 200, "", "samples {  1000}"},
		{"diffs limit 0", "/api/v1/diffs?limit=0", 400, `limit must be 1..1000, not \"0\"`, ""},
		{"diffs limit 1001", "/api/v1/diffs?limit=1001", 400, `limit must be 1..1000, not \"1001\"`, ""},
		{"diffs limit negative", "/api/v1/diffs?limit=-5", 400, `not \"-5\"`, ""},
		{"diffs limit not a number", "/api/v1/diffs?limit=ten", 400, `not \"ten\"`, ""},
		{"diffs limit malformed escape", "/api/v1/diffs?limit=%zz", 400, "cannot parse the query string", ""},
		{"diffs since a time", "/api/v1/diffs?route=img&since=2026-01-02T15:04:05Z", 200, "", "samples {img  0} since 2026-01-02T15:04:05Z"},
		{"diffs bad since", "/api/v1/diffs?since=1h", 400, `since must be RFC 3339`, ""},
		{"series, defaults: all data per minute", "/api/v1/series", 200, `"step": "1m"`, "series  0001-01-01T00:00:00Z 1m0s"},
		{"series of a route since a time per hour", "/api/v1/series?route=img&since=" + recent + "&step=1h", 200, `"routes": []`, "series img " + recent + " 1h0m0s"},
		{"series per day", "/api/v1/series?step=1d", 200, "", "series  0001-01-01T00:00:00Z 24h0m0s"},
		{"series, a step not offered", "/api/v1/series?step=2m", 400, `step must be one of 1m, 5m, 15m, 1h, 1d, not \"2m\"`, ""},
		{"series, a Go duration", "/api/v1/series?step=60s", 400, `not \"60s\"`, ""},
		{"series, bad since", "/api/v1/series?since=-1h", 400, `since must be RFC 3339`, ""},
		{"series, since in the future", "/api/v1/series?since=2999-01-01T00:00:00Z", 400, `is in the future`, ""},
		{"series, too many buckets", "/api/v1/series?since=2020-01-01T00:00:00Z&step=1m", 400, `buckets; at most 10080 are answered: use a larger step`, ""},
		{"series, unknown parameter", "/api/v1/series?rout=img", 400, `unknown parameter \"rout\": GET /api/v1/series takes route, since, step and instance`, ""},
		{"series, step twice", "/api/v1/series?step=1m&step=1h", 400, `step is given 2 times; give it once`, ""},
		{"series, unknown route", "/api/v1/series?route=nope", 404, `unknown route \"nope\"`, ""},
		{"one diff", "/api/v1/diffs/s1", 200, `"id": "s1"`, "sample s1"},
		{"no such diff", "/api/v1/diffs/nope", 404, `no diff sample \"nope\"`, "sample nope"},
	} {
		n := len(f.reports.asked)
		expect(t, c.why, do(f.srv, req("GET", c.target, "")), c.status, c.want)
		if c.asked != "" && f.reports.lastAsked() != c.asked {
			t.Errorf("%s: the store was asked %q, want %q", c.why, f.reports.lastAsked(), c.asked)
		}
		if c.status == 400 && len(f.reports.asked) != n {
			t.Errorf("%s: refused, but the store was asked %q", c.why, f.reports.lastAsked())
		}
	}

	for _, c := range []struct {
		why, target string
		status      int
		want        string
		asked       string
	}{
		{"events, defaults", "/api/v1/events", 200, `"events": []`, "0001-01-01T00:00:00Z 500"},
		{"events since, limit", "/api/v1/events?since=2026-01-02T15:04:05Z&limit=10000", 200, "", "2026-01-02T15:04:05Z 10000"},
		{"events limit 10001", "/api/v1/events?limit=10001", 400, `limit must be 1..10000, not \"10001\"`, ""},
		{"events bad since", "/api/v1/events?since=yesterday", 400, `since must be RFC 3339`, ""},
	} {
		n := len(f.rules.eventsAsked)
		expect(t, c.why, do(f.srv, req("GET", c.target, "")), c.status, c.want)
		switch {
		case c.status == 400 && len(f.rules.eventsAsked) != n:
			t.Errorf("%s: refused, but the store was asked", c.why)
		case c.asked != "" && (len(f.rules.eventsAsked) == n || f.rules.eventsAsked[len(f.rules.eventsAsked)-1] != c.asked):
			t.Errorf("%s: the store was asked %q, want %q last", c.why, f.rules.eventsAsked, c.asked)
		}
	}
}

// GET /api/v1/rules gives the version as ETag, for PUT's If-Match.
func TestGetRulesETag(t *testing.T) {
	f := newFixture()
	w := do(f.srv, req("GET", "/api/v1/rules", ""))
	expect(t, "GET rules", w, http.StatusOK, `"name": "img"`)
	if w.Header().Get("ETag") != "1" {
		t.Errorf("ETag %q, want 1", w.Header().Get("ETag"))
	}
	w = do(f.srv, req("GET", "/api/v1/routes", ""))
	expect(t, "GET routes", w, http.StatusOK, `"routes": [`, `"name": "img"`)
}
