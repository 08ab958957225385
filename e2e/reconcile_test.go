package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	tb "github.com/tandem-proxy/tandem/internal/testbackend"
	"github.com/tandem-proxy/tandem/store"
)

// Counts reconcile end to end: for N requests, requests = served;
// mirrored + skipped = requests; every finished comparison appears once; the
// numbers survive a restart; tandem report -json says the same.
func TestCountsReconcileThroughRestart(t *testing.T) {
	legacy := tb.Start(t, "legacy", tb.Mode{Kind: tb.KindEchoHash})
	newb := tb.Start(t, "new", tb.Mode{Kind: tb.KindEchoHash})
	cfg := fmt.Sprintf(apiConfig, legacy.URL, newb.URL)
	cfg = strings.Replace(cfg, "sticky: header:X-User-Id", "sticky: header:X-User-Id\n    mirror: 50", 1)
	p := startInProcess(t, cfg, "")
	const n = 200
	for i := 0; i < n; i++ {
		resp, err := p.httpClient.Post(p.proxyBase+"/upload", "application/octet-stream", strings.NewReader(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	token := p.run.Token()
	p.stop() // drains shadows, flushes counters and the store
	p2 := startInProcess(t, cfg, p.dataDir)
	if p2.run.Token() != token {
		t.Fatal("the generated admin token changed across a restart")
	}
	st, b := p2.api("GET", "/api/v1/report?route=images", "", "", "")
	if st != 200 {
		t.Fatalf("report: %d %s", st, b)
	}
	var rep struct{ Routes []store.RouteReport }
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Routes) != 1 {
		t.Fatalf("report %s: %v", b, err)
	}
	r := rep.Routes[0]
	skipped := int64(0)
	for _, v := range r.Skipped {
		skipped += v
	}
	if r.Requests != n || r.ServedLegacy != n || r.ServedNew != 0 {
		t.Errorf("requests %d served legacy %d new %d, want %d/%d/0", r.Requests, r.ServedLegacy, r.ServedNew, n, n)
	}
	if r.Mirrored+skipped != n || r.Skipped["sampling"] != skipped {
		t.Errorf("mirrored %d + skipped %d (%v) != %d", r.Mirrored, skipped, r.Skipped, n)
	}
	if r.Mirrored != int64(newb.Count()) {
		t.Errorf("mirrored %d but new received %d", r.Mirrored, newb.Count())
	}
	// mirror 50 over 200 requests: 100 ± 5 sd (sd ≈ 7).
	if r.Mirrored < 65 || r.Mirrored > 135 {
		t.Errorf("mirrored %d of %d at mirror 50", r.Mirrored, n)
	}
	// The backends differ in X-Backend and the JSON "shadow" field: every
	// comparison is a mismatch, counted once.
	if r.Compared != r.Mirrored || r.Mismatched != r.Compared || r.Matched != 0 {
		t.Errorf("compared %d mismatched %d matched %d, mirrored %d", r.Compared, r.Mismatched, r.Matched, r.Mirrored)
	}
	var shadowPath *store.PathStat
	for i := range r.Diffs {
		if r.Diffs[i].Path == "$.shadow" {
			shadowPath = &r.Diffs[i]
		}
	}
	if shadowPath == nil || shadowPath.Count != r.Compared || shadowPath.ExampleID == "" {
		t.Fatalf("diff paths %+v", r.Diffs)
	}
	if st, b := p2.api("GET", "/api/v1/diffs/"+shadowPath.ExampleID, "", "", ""); st != 200 || !strings.Contains(string(b), `"$.shadow"`) {
		t.Fatalf("example sample: %d %s", st, b)
	}
	if st, b := p2.api("GET", "/api/v1/diffs?route=images&path=$.shadow&limit=3", "", "", ""); st != 200 || strings.Count(string(b), `"id"`) != 3 {
		t.Fatalf("diff list: %d %s", st, b)
	}
	// The CLI reads the same numbers.
	t.Setenv("TANDEM_ADMIN_TOKEN", p2.run.Token())
	var out, errb bytes.Buffer
	if code := cli(t, &out, &errb, "report", "-json", "-route", "images", "-admin", p2.apiBase); code != 0 {
		t.Fatalf("tandem report: %d %s", code, errb.String())
	}
	var cliRep struct{ Routes []store.RouteReport }
	if err := json.Unmarshal(out.Bytes(), &cliRep); err != nil || len(cliRep.Routes) != 1 || cliRep.Routes[0].Compared != r.Compared || cliRep.Routes[0].Requests != n {
		t.Fatalf("tandem report -json: %v %s", err, out.String())
	}
	out.Reset()
	if code := cli(t, &out, &errb, "report", "-admin", p2.apiBase); code != 0 || !strings.Contains(out.String(), "$.shadow") {
		t.Fatalf("tandem report: %d %s", code, out.String())
	}
}
