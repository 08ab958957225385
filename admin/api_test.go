package admin

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/rules"
)

const apiTestToken = "api-test-token-0123456789"

// fakeRules is a RulesStore with one route "img" that records every change.
type fakeRules struct {
	mu      sync.Mutex
	r       rules.Rules
	changes []string // "promote img 25 reason", ...
}

func newFakeRules() *fakeRules {
	return &fakeRules{r: rules.Rules{Version: 1, Routes: []rules.Route{{Name: "img", Legacy: "legacy", New: "new"}}}}
}

func (f *fakeRules) Current() rules.Rules {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.r
}

func (f *fakeRules) record(c string) rules.Rules {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, c)
	f.r.Version++
	return f.r
}

func (f *fakeRules) Update(ifMatch int64, actor, kind, route, reason string, mutate func(*rules.Rules) error) (rules.Rules, error) {
	return f.record("update " + reason), nil
}

func (f *fakeRules) Promote(route string, percent float64, actor, reason string) (rules.Rules, bool, error) {
	return f.record("promote " + route + " " + reason), true, nil
}

func (f *fakeRules) Rollback(route, actor, reason string) (rules.Rules, bool, error) {
	return f.record("rollback " + route + " " + reason), true, nil
}

func (f *fakeRules) Events(time.Time, int) ([]rules.Event, error) { return nil, nil }

func (f *fakeRules) changed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.changes...)
}

var _ RulesStore = (*fakeRules)(nil)

func startAPIServer(t *testing.T, fr *fakeRules, noise *[]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Deps{
		Token: apiTestToken,
		Rules: fr,
		ParseRules: func(b []byte) (rules.Rules, []error) {
			return rules.Rules{Routes: fr.Current().Routes}, nil
		},
		MarkNoise: func(route, path, reason string) error {
			*noise = append(*noise, route+" "+path+" "+reason)
			return nil
		},
	})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() {
		s.Shutdown()
		<-done
	})
	return "http://" + ln.Addr().String()
}

func apiCall(t *testing.T, method, url, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiTestToken)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Mutating bodies are one JSON value with no duplicate keys and a reason
// of at most MaxReason bytes; anything else gets 400 with a message that
// names the problem, and changes nothing.
func TestMutationBodiesStrict(t *testing.T) {
	fr := newFakeRules()
	var noise []string
	base := startAPIServer(t, fr, &noise)
	promote := base + "/api/v1/routes/img/promote"
	long := strings.Repeat("r", MaxReason+1)
	cases := []struct {
		why, method, url, body string
		status                 int
		msg                    string // in the error message
	}{
		{"duplicate percent: encoding/json would take the last (100)", "POST", promote,
			`{"percent": 1, "reason": "canary", "percent": 100}`, 400, `duplicate key \"percent\"`},
		{"duplicate reason", "POST", base + "/api/v1/routes/img/rollback",
			`{"reason": "a", "reason": "b"}`, 400, `duplicate key \"reason\"`},
		{"duplicate in a nested object", "PUT", base + "/api/v1/rules",
			`{"routes": [{"name": "img", "name": "other"}]}`, 400, `duplicate key \"name\"`},
		{"trailing second document", "POST", promote,
			`{"percent": 1, "reason": "x"}{"percent": 100}`, 400, "trailing data"},
		{"trailing garbage", "POST", base + "/api/v1/routes/img/rollback",
			`{"reason": "x"} junk`, 400, "invalid JSON body"},
		{"trailing data on the rules document", "PUT", base + "/api/v1/rules",
			`{"routes": []} {"routes": []}`, 400, "trailing data"},
		{"reason over the bound", "POST", promote,
			`{"percent": 5, "reason": "` + long + `"}`, 400, `\"reason\" is 1025 bytes; at most 1024`},
		{"3 MiB reason on rollback", "POST", base + "/api/v1/routes/img/rollback",
			`{"reason": "` + strings.Repeat("r", 3<<20) + `"}`, 400, "is 3145728 bytes; at most 1024"},
		{"reason over the bound on the rules document", "PUT", base + "/api/v1/rules",
			`{"routes": [], "reason": "` + long + `"}`, 400, `\"reason\" is 1025 bytes`},
		{"reason over the bound on noise", "POST", base + "/api/v1/routes/img/noise",
			`{"path": "$.x", "reason": "` + long + `"}`, 400, `\"reason\" is 1025 bytes`},
		{"empty body", "POST", base + "/api/v1/routes/img/rollback", ``, 400, "body is empty"},
		{"invalid UTF-8", "POST", base + "/api/v1/routes/img/rollback", "{\"reason\": \"\xff\"}", 400, "UTF-8"},
		{"nested too deep", "PUT", base + "/api/v1/rules",
			strings.Repeat("[", 40) + strings.Repeat("]", 40), 400, "deeper than 32"},
	}
	for _, c := range cases {
		st, b := apiCall(t, c.method, c.url, c.body, "If-Match", "1")
		if st != c.status || !strings.Contains(b, c.msg) {
			t.Errorf("%s: got %d %.200s, want %d with %q", c.why, st, b, c.status, c.msg)
		}
		var e apiError
		if err := json.Unmarshal([]byte(b), &e); err != nil || e.Error == "" {
			t.Errorf("%s: the answer is not a JSON error: %.200s", c.why, b)
		}
	}
	if got := fr.changed(); len(got) != 0 || len(noise) != 0 {
		t.Fatalf("refused requests changed something: rules %q, noise %q", got, noise)
	}

	// The same calls, well formed, go through; a reason of exactly
	// MaxReason bytes is accepted.
	okReason := strings.Repeat("r", MaxReason)
	for _, c := range []struct{ method, url, body string }{
		{"POST", promote, `{"percent": 25, "reason": "` + okReason + `"}`},
		{"POST", base + "/api/v1/routes/img/rollback", ` {"reason": "bad p99"} ` + "\n"},
		{"PUT", base + "/api/v1/rules", `{"routes": [{"name": "img", "match": {"methods": ["GET", "GET"]}}], "reason": "r"}`},
		{"POST", base + "/api/v1/routes/img/noise", `{"path": "$.id", "reason": "ids differ"}`},
	} {
		if st, b := apiCall(t, c.method, c.url, c.body, "If-Match", "1"); st != 200 {
			t.Errorf("%s %s: %d %.300s", c.method, c.url, st, b)
		}
	}
	if got := fr.changed(); len(got) != 3 || got[0] != "promote img "+okReason || got[1] != "rollback img bad p99" || got[2] != "update r" {
		t.Errorf("changes %.200q", got)
	}
	if len(noise) != 1 || noise[0] != "img $.id ids differ" {
		t.Errorf("noise %q", noise)
	}
}

// checkJSON accepts only what encoding/json accepts, and accepts every
// single JSON value whose objects have distinct keys. Seeds are the bodies
// the CLI and UI send, and the refusals above.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{
		`{"percent": 25, "reason": "canary"}`,
		`{"reason": "bad p99"}`,
		`{"path": "$.processed_at", "reason": "timestamps"}`,
		`{"version": 3, "routes": [{"name": "images", "match": {"path_prefix": "/upload", "methods": ["POST", "PUT"]}, "legacy": "legacy", "new": "new", "mirror": 100}]}`,
		`{"percent": 1, "percent": 100}`,
		`{"a": {"b": 1, "b": 2}}`,
		`{"reason": "x"}{"percent": 100}`,
		`[1, {"a": [], "b": {}}, "s", null, true]`,
		` 1 `, `{`, `}`, `[}`, `{"a" 1}`, `{"a":1,}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkJSON(b)
		if err == nil && !json.Valid(b) {
			t.Fatalf("checkJSON accepted invalid JSON %q", b)
		}
		if err != nil || !json.Valid(b) {
			return
		}
		// Accepted: decoding into a generic value and re-encoding keeps
		// every key (no duplicate was collapsed).
		var v any
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber() // numbers beyond float64 are valid JSON
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("accepted %q but encoding/json refuses it: %v", b, err)
		}
		if got, want := countKeys(v), strings.Count(string(b), ":"); got > want {
			t.Fatalf("%q: %d keys decoded, at most %d colons", b, got, want)
		}
	})
}

func countKeys(v any) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		n += len(x)
		for _, e := range x {
			n += countKeys(e)
		}
	case []any:
		for _, e := range x {
			n += countKeys(e)
		}
	}
	return n
}
