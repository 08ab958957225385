package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/rules"
)

// CheckRules compiles without effect: the rules in force stay, a route
// that is only checked gets no metric series, and what SetRules would
// refuse it refuses with the same error.
func TestCheckRulesIsADryRun(t *testing.T) {
	b, err := backends.New("legacy", backends.Options{URLs: []string{"http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{
		Backends: map[string]*backends.Backend{"legacy": b},
		Rules:    &rules.Rules{Version: 3, Routes: []rules.Route{{Name: "live", Legacy: "legacy", Match: rules.Match{PathPrefix: "/"}}}},
		SpoolDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	if err := srv.CheckRules([]rules.Route{{Name: "checked", Legacy: "legacy", Match: rules.Match{PathPrefix: "/"}}}); err != nil {
		t.Fatalf("CheckRules of a servable route: %v", err)
	}
	if v := srv.RulesVersion(); v != 3 {
		t.Errorf("rules version %d after CheckRules, want 3 (unchanged)", v)
	}
	if _, ok := srv.Counters()["checked"]; ok {
		t.Error("the checked route is in force")
	}
	var sb strings.Builder
	srv.Metrics().WritePrometheus(&sb)
	if strings.Contains(sb.String(), `route="checked"`) {
		t.Errorf("CheckRules created metric series:\n%s", sb.String())
	}
	bad := []rules.Route{{Name: "bad", Legacy: "nowhere", Match: rules.Match{PathPrefix: "/"}}}
	cerr, serr := srv.CheckRules(bad), srv.SetRules(4, bad)
	if cerr == nil || serr == nil || cerr.Error() != serr.Error() {
		t.Errorf("CheckRules = %v, SetRules = %v; want the same refusal", cerr, serr)
	}
	if v := srv.RulesVersion(); v != 3 {
		t.Errorf("rules version %d after a refused SetRules, want 3", v)
	}
}
