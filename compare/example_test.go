package compare_test

import (
	"fmt"

	"github.com/tandem-proxy/tandem/compare"
)

func response(body string) *compare.Response {
	r := &compare.Response{Status: 200, Header: []compare.HeaderField{{Name: "Content-Type", Value: "application/json"}}}
	r.SetBody([]byte(body))
	return r
}

// A route with a secondary legacy instance learns that processed_at differs
// between any two instances, so a new backend differing there is noise.
func ExampleLearner() {
	c, err := compare.New(compare.Settings{NoiseMinSamples: 3})
	if err != nil {
		panic(err)
	}
	l := compare.NewLearner()
	l.Configure("images", c.Settings())
	for i := range 3 {
		legacy := response(fmt.Sprintf(`{"id":1,"processed_at":"10:0%d"}`, i))
		secondary := response(fmt.Sprintf(`{"id":1,"processed_at":"11:0%d"}`, i))
		l.ObserveSecondary("images", c.Compare(legacy, secondary))
	}
	r := c.Compare(response(`{"id":1,"processed_at":"10:00"}`), response(`{"id":1,"processed_at":"12:00"}`))
	l.ObservePrimary("images", r)
	l.Apply("images", &r)
	fmt.Print(r.Text())

	r = c.Compare(response(`{"id":1,"processed_at":"10:00"}`), response(`{"id":2,"processed_at":"12:00"}`))
	l.ObservePrimary("images", r)
	l.Apply("images", &r)
	fmt.Print(r.Text())
	// Output:
	// noise: 1 difference (1 noise)
	//   json  $.processed_at  "10:00" → "12:00"  (noise)
	// mismatch: 2 differences (1 noise)
	//   json  $.id            1 → 2
	//   json  $.processed_at  "10:00" → "12:00"  (noise)
}
