package store

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tandem-proxy/tandem/compare"
	"github.com/tandem-proxy/tandem/exchange"
)

// Every counter column of the minutes table adds to a report field of its
// own, so ScanCounters can read any store's columns by name.
func TestCounterFieldsCoverColumns(t *testing.T) {
	seen := map[string]string{}
	for _, c := range colNames {
		add := counterFields[c]
		if add == nil {
			t.Errorf("column %q adds to no report field", c)
			continue
		}
		r := newRouteReport("r", time.Time{})
		add(r, 7)
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if other, ok := seen[string(b)]; ok {
			t.Errorf("columns %q and %q add to the same field (or none): %s", other, c, b)
		}
		seen[string(b)] = c
	}
	if _, ok := seen[mustJSON(t, newRouteReport("r", time.Time{}))]; ok {
		t.Error("a column adds nothing")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSampleQuotaKeep(t *testing.T) {
	committed := map[SampleKey]int{}
	reads := 0
	q := NewSampleQuota(2, func(k SampleKey) (int, error) { reads++; return committed[k], nil })
	a := SampleKey{"r", compare.KindJSON, "$.a"}
	b := SampleKey{"r", compare.KindJSON, "$.b"}
	committed[a] = 1
	ex := func(o compare.Outcome) *exchange.Exchange {
		return &exchange.Exchange{Route: "r", Result: compare.Result{Outcome: o}}
	}

	if keys, _, _ := q.Keep(ex(compare.OutcomeMatch), []SampleKey{a}); keys != nil {
		t.Errorf("a match keeps a sample under %v", keys)
	}
	if keys, _, _ := q.Keep(ex(compare.OutcomeMismatch), nil); keys != nil {
		t.Errorf("a mismatch without differences keeps a sample under %v", keys)
	}
	keys, charged, err := q.Keep(ex(compare.OutcomeError), nil)
	if want := (SampleKey{"r", compare.KindStatus, "$.error"}); err != nil || len(keys) != 1 || keys[0] != want || !charged[0] {
		t.Errorf("an error without differences: %v %v %v, want [%v] charged", keys, charged, err, want)
	}

	// a has one committed sample: room for one more, then only b has room.
	keys, charged, _ = q.Keep(ex(compare.OutcomeNoise), []SampleKey{a, b})
	if len(keys) != 2 || !charged[0] || !charged[1] {
		t.Errorf("first: %v %v, want both charged", keys, charged)
	}
	keys, charged, _ = q.Keep(ex(compare.OutcomeMismatch), []SampleKey{a, b})
	if len(keys) != 2 || charged[0] || !charged[1] {
		t.Errorf("second: %v %v, want only b charged", keys, charged)
	}
	if keys, charged, _ = q.Keep(ex(compare.OutcomeMismatch), []SampleKey{a, b}); keys != nil {
		t.Errorf("third: kept under %v (%v), both keys are full", keys, charged)
	}
	if q.pending[a] != 1 || q.pending[b] != 2 {
		t.Errorf("pending %v, want a 1, b 2", q.pending)
	}

	boom := errors.New("boom")
	q = NewSampleQuota(2, func(SampleKey) (int, error) { return 0, boom })
	if _, _, err := q.Keep(ex(compare.OutcomeMismatch), []SampleKey{a}); !errors.Is(err, boom) {
		t.Errorf("count's error: got %v", err)
	}
	if reads == 0 {
		t.Error("count never read")
	}
}
