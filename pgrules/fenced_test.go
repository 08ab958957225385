package pgrules

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tandem-proxy/tandem/rules"
)

// ApplyTx's and RecordTx's hook runs in the change's transaction: a hook
// error leaves no version and no audit row, a hook's write commits with
// the change. ServeNewSince finds where a route's serve_new began.
func TestApplyTxHookAndServeNewSince(t *testing.T) {
	_, url := database(t)
	a := open(t, url, "a", Options{})
	c := conn(t, url)
	if _, err := c.Exec(context.Background(), "CREATE TABLE hook_marks (v BIGINT)"); err != nil {
		t.Fatal(err)
	}
	refuse := errors.New("refused by the hook")
	count := func(q string) (n int) {
		t.Helper()
		if err := c.QueryRow(context.Background(), q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	audits := count("SELECT count(*) FROM rules_audit")
	ev := rules.Event{Actor: "ramp", Kind: "ramp_step", Route: "images"}
	no := func(context.Context, pgx.Tx) error { return refuse }
	if _, _, err := a.ApplyTx(0, ev, rules.SetServeNew("images", 25, nil), no); !errors.Is(err, refuse) {
		t.Fatalf("ApplyTx with a refusing hook: %v", err)
	}
	if err := a.RecordTx(rules.Event{Actor: "ramp", Kind: "ramp_done", Route: "images"}, no); !errors.Is(err, refuse) {
		t.Fatalf("RecordTx with a refusing hook: %v", err)
	}
	if a.Current().Version != 1 || count("SELECT count(*) FROM rules_audit") != audits {
		t.Fatalf("a refused change was written: version %d", a.Current().Version)
	}
	mark := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO hook_marks VALUES (1)")
		return err
	}
	if _, changed, err := a.ApplyTx(1, ev, rules.SetServeNew("images", 25, nil), mark); err != nil || !changed {
		t.Fatalf("ApplyTx: changed %v, %v", changed, err)
	}
	if err := a.RecordTx(rules.Event{Actor: "ramp", Kind: "ramp_done", Route: "images"}, mark); err != nil {
		t.Fatal(err)
	}
	if n := count("SELECT count(*) FROM hook_marks"); n != 2 {
		t.Fatalf("hook writes committed: %d, want 2", n)
	}
	// Versions: 1 seed (0%), 2 25%, 3 static changed, 4 12.5%, 5 25%.
	if _, _, err := a.Promote("static", 0, "api", ""); err != nil { // no new backend: no change
		t.Fatal(err)
	}
	if _, _, err := a.Apply(0, rules.Event{Actor: "api", Kind: rules.KindReplace}, func(r *rules.Rules) error {
		r.Routes[1].Mirror = 50
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []float64{12.5, 25} {
		if _, _, err := a.Promote("images", p, "api", ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		route    string
		at, want int64
	}{{"images", 1, 1}, {"images", 2, 2}, {"images", 3, 2}, {"images", 4, 4}, {"images", 5, 5}, {"static", 5, 1}} {
		got, age, err := a.ServeNewSince(c.route, c.at)
		if err != nil || got != c.want || age < 0 {
			t.Fatalf("ServeNewSince(%s, %d) = %d, %v, %v; want %d", c.route, c.at, got, age, err, c.want)
		}
	}
	if _, _, err := a.ServeNewSince("nope", 5); err == nil {
		t.Fatal("ServeNewSince of an unknown route")
	}
}
