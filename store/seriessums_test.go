package store

import (
	"database/sql"
	"strings"
	"testing"
	"time"
)

// Every counter column Series reads adds to a point field of its own.
func TestSeriesFieldsDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, c := range seriesCols {
		add := seriesFields[c]
		if add == nil {
			t.Fatalf("column %q adds to no series field", c)
		}
		var p SeriesPoint
		add(&p, 7)
		b := mustJSON(t, p)
		if other, ok := seen[b]; ok {
			t.Errorf("columns %q and %q add to the same field (or none): %s", other, c, b)
		}
		seen[b] = c
	}
	if _, ok := seen[mustJSON(t, SeriesPoint{})]; ok {
		t.Error("a column adds nothing")
	}
}

// ScanMinutes sums one bucket's histograms at a time, so rows that come
// back to a finished bucket are refused rather than summed wrong, and an
// unknown column is refused.
func TestSeriesSumsScanMinutes(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	scan := func(step time.Duration, cols []string, q string) (*SeriesSums, error) {
		t.Helper()
		acc, err := NewSeriesSums(step)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		return acc, acc.ScanMinutes(rows, cols, addEncoded)
	}
	req := []string{colNames[colRequests]}
	acc, err := scan(5*time.Minute, req, "SELECT 'r', 0, 1, NULL, NULL UNION ALL SELECT 'r', 4, 2, NULL, NULL UNION ALL SELECT 'r', 5, 4, NULL, NULL")
	if err != nil {
		t.Fatal(err)
	}
	if got := acc.Series(""); len(got) != 1 || len(got[0].Points) != 2 || got[0].Points[0].Requests != 3 || got[0].Points[1].Requests != 4 {
		t.Errorf("Series = %+v, want r with 3 then 4 requests", got)
	}
	if _, err := scan(5*time.Minute, req, "SELECT 'r', 0, 1, NULL, NULL UNION ALL SELECT 'r', 5, 2, NULL, NULL UNION ALL SELECT 'r', 1, 4, NULL, NULL"); err == nil || !strings.Contains(err.Error(), "not adjacent") {
		t.Errorf("rows back to a finished bucket: %v, want an error", err)
	}
	if _, err := scan(time.Minute, []string{"served_legacy"}, "SELECT 'r', 0, 1, NULL, NULL"); err == nil {
		t.Error("an unknown column: no error")
	}
	if _, err := NewSeriesSums(7 * time.Minute); err == nil {
		t.Error("a 7-minute step: no error")
	}
}
