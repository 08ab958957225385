package rules

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Clone copies every slice, map and pointer, including fields added later.
func TestCloneSharesNothing(t *testing.T) {
	var r Route
	fill(reflect.ValueOf(&r).Elem())
	c := r.clone()
	if !reflect.DeepEqual(r, c) {
		t.Fatal("clone differs")
	}
	shared(t, "Route", reflect.ValueOf(r), reflect.ValueOf(c))
}

// fill sets every field of v to a non-zero value, with one-element slices
// and maps and non-nil pointers.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		v.SetMapIndex(k, e)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	}
}

func shared(t *testing.T, path string, a, b reflect.Value) {
	switch a.Kind() {
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if a.Type().Field(i).IsExported() {
				shared(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
			}
		}
	case reflect.Pointer, reflect.Map:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			t.Errorf("%s is shared by the clone", path)
		} else if a.Kind() == reflect.Pointer && !a.IsNil() {
			shared(t, path, a.Elem(), b.Elem())
		}
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			t.Errorf("%s is shared by the clone", path)
		}
		for i := 0; i < a.Len(); i++ {
			shared(t, fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i))
		}
	}
}

// SetServeNew refuses a percentage the route cannot take with a message
// that names the route and the field as a person typed them, never the
// route's index in the list; valid ones are set.
func TestSetServeNewNamesTheRoute(t *testing.T) {
	base := Rules{Version: 3, Routes: []Route{
		{Name: "images", Legacy: "legacy", New: "new"},
		{Name: "upload", Legacy: "legacy", New: "new"},
		{Name: "plain", Legacy: "legacy"},
	}}
	for _, c := range []struct {
		why     string
		route   string
		percent float64
		want    string // "" = accepted
	}{
		{"above 100", "upload", 150, `route "upload": serve_new 150 must be within 0..100`},
		{"negative", "upload", -1, `route "upload": serve_new -1 must be within 0..100`},
		{"three decimals", "images", 12.345, `route "images": serve_new 12.345 has more than two decimals`},
		{"no new backend to serve from", "plain", 5, `route "plain": serve_new 5 needs a new backend, and the route has none`},
		{"0 on a route without new is a no-op, not an error", "plain", 0, ""},
		{"a valid share", "upload", 25, ""},
		{"100", "upload", 100, ""},
	} {
		r := base.Clone()
		err := SetServeNew(c.route, c.percent, nil)(&r)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.why, err)
			}
			for _, rt := range r.Routes {
				if rt.Name == c.route && rt.ServeNew != c.percent {
					t.Errorf("%s: serve_new %v, want %v", c.why, rt.ServeNew, c.percent)
				}
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Errs) != 1 || ve.Errs[0].Error() != c.want {
			t.Errorf("%s: got %v, want a *ValidationError %q", c.why, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "routes[") {
			t.Errorf("%s: the message names an index: %v", c.why, err)
		}
		if r.Routes[1].ServeNew != 0 || r.Routes[0].ServeNew != 0 {
			t.Errorf("%s: a refused change changed the rules: %+v", c.why, r.Routes)
		}
	}
	if err := SetServeNew("nope", 5, nil)(&Rules{}); !errors.Is(err, ErrUnknownRoute) {
		t.Errorf("unknown route: %v", err)
	}
}
