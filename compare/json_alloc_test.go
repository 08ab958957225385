package compare

import (
	"fmt"
	"strings"
	"testing"
)

// TestJSONEqualAllocs: comparing two equal JSON documents allocates nothing
// once the Comparer's pool holds a warm tape, whatever the settings and
// whatever the documents hold (escapes, large objects, repeated keys).
func TestJSONEqualAllocs(t *testing.T) {
	var wide, wideReordered strings.Builder // 40 keys: sorted, not paired
	wide.WriteByte('{')
	wideReordered.WriteByte('{')
	for i := 0; i < 40; i++ {
		if i > 0 {
			wide.WriteByte(',')
			wideReordered.WriteByte(',')
		}
		fmt.Fprintf(&wide, `"key%02d":%d`, i, i)
		fmt.Fprintf(&wideReordered, `"key%02d":%d.0`, 39-i, 39-i)
	}
	wide.WriteByte('}')
	wideReordered.WriteByte('}')
	pairs := []struct {
		name     string
		legacy   string
		new      string
		settings Settings
	}{
		{"bench documents", string(jsonDoc(false, false)), string(jsonDoc(false, true)), Settings{}},
		{"ignore_json", `{"id":1,"items":[{"id":"a","w":1}],"processed_at":"10:00"}`,
			`{"items":[{"w":1,"id":"b"}],"id":1,"processed_at":"10:01"}`,
			Settings{IgnoreJSON: []string{"$.processed_at", "$.items[*].id"}}},
		{"tolerance", `[1.333,0.5,12345678901234567890]`, `[1.3334,0.5000,12345678901234567890.0]`, Settings{JSONNumberTolerance: 0.01}},
		{"escapes", `{"\u00e9":"a\/b\n","x":"\ud83d\ude00"}`, `{"x":"😀","é":"a/b\n"}`, Settings{}},
		{"wide object", wide.String(), wideReordered.String(), Settings{}},
		{"repeated key", `{"a":1,"b":2,"a":3}`, `{"b":2,"a":3}`, Settings{}},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			c, err := New(p.settings)
			if err != nil {
				t.Fatal(err)
			}
			l, n := jsonPair(p.legacy, p.new)
			if r := c.Compare(&l, &n); r.Outcome != OutcomeMatch {
				t.Fatalf("not equal: %s", r.Text())
			}
			if jsonRaceEnabled {
				t.Skip("the race detector makes sync.Pool drop tapes at random")
			}
			if allocs := testing.AllocsPerRun(200, func() { c.Compare(&l, &n) }); allocs != 0 {
				t.Errorf("Compare of equal documents: %v allocations, want 0", allocs)
			}
		})
	}
}

// TestJSONConcurrent: one Comparer used by several goroutines at once (its
// pooled tapes are never shared) gives every pair the result it gives alone.
func TestJSONConcurrent(t *testing.T) {
	c, err := New(Settings{IgnoreJSON: []string{"$.items[*].id"}})
	if err != nil {
		t.Fatal(err)
	}
	docs := [][2]string{
		{string(jsonDoc(false, false)), string(jsonDoc(true, true))},
		{string(jsonDoc(false, false)), string(jsonDoc(false, true))},
		{corpusDoc, strings.Replace(corpusDoc, "800", "801", 1)},
		{`{"items":[{"id":"a","w":1}]}`, `{"items":[{"id":"b","w":2}]}`},
		{`{"a":1`, `{"a":1}`},
	}
	want := make([]Result, len(docs))
	for i, d := range docs {
		l, n := jsonPair(d[0], d[1])
		want[i] = c.Compare(&l, &n)
	}
	errs := make(chan string, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for k := 0; k < 100; k++ {
				i := (g + k) % len(docs)
				l, n := jsonPair(docs[i][0], docs[i][1])
				if got := c.Compare(&l, &n); got.Text() != want[i].Text() {
					errs <- fmt.Sprintf("pair %d: got %s, want %s", i, got.Text(), want[i].Text())
					return
				}
			}
			errs <- ""
		}()
	}
	for range 4 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}
