package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
	"gopkg.in/yaml.v3"
)

// decoder fills a Go value from a yaml.v3 node tree field by field, so that
// one bad field does not stop the others: every unknown key, duplicate key
// and wrong type becomes a Problem at its node, and decoding goes on. It
// keeps every path's nodes so that semantic checks, which know only paths,
// can be placed too.
//
// Struct types with an UnmarshalYAML method (Backend, rules.Route,
// rules.Ramp) use it only for their defaults: it is called with an empty
// mapping, then the fields are decoded here. Other types with such a method
// (Size, rules.Duration) and plain scalars are decoded by yaml.v3 itself,
// one node at a time.
type decoder struct {
	probs  []*Problem
	at     map[string]place
	failed []string // paths whose value could not be decoded
	visits int      // nodes decoded, aliases counted each time they are used
}

// maxVisits bounds the nodes decoded, so that a document of aliases to
// aliases cannot expand without end; a real configuration has hundreds.
const maxVisits = 100_000

// place is where a path stands in the document.
type place struct {
	key, val *yaml.Node // key is nil for list items and the document
	typ      reflect.Type
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func newDecoder() *decoder { return &decoder{at: map[string]place{}} }

// problem records a problem at node n.
func (d *decoder) problem(n *yaml.Node, path, format string, args ...any) *Problem {
	p := &Problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.probs = append(d.probs, p)
	return p
}

// fail records a problem with the value at path, whose checks are then
// not run (a value that could not be read has only its default).
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.problem(n, path, format, args...)
	d.failed = append(d.failed, path)
}

// decode fills v (addressable) from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, key *yaml.Node) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if d.visits++; d.visits > maxVisits {
		if d.visits == maxVisits+1 {
			d.fail(n, path, "the document expands aliases to more than %d nodes", maxVisits)
		}
		return
	}
	d.at[path] = place{key: key, val: n, typ: v.Type()}
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		if isNull(n) {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, v.Elem(), path, key)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
		// The type's own method sets its defaults; the fields are ours.
		_ = u.UnmarshalYAML(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"})
	}
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping of keys (%s), got %s", strings.Join(fieldNames(v.Type()), ", "), describe(n))
		return
	}
	fields := yamlFields(v.Type())
	names := fieldNames(v.Type())
	d.eachPair(n, path, func(k, val *yaml.Node, p string) {
		i, ok := fields[k.Value]
		if !ok {
			pr := d.problem(k, p, "unknown key %q", k.Value)
			pr.Suggestion = suggest(k.Value, names)
			d.failed = append(d.failed, p)
			return
		}
		d.decode(val, v.Field(i), p, k)
	})
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.SetZero()
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		panic("BUG: config: map keys must be strings, not " + t.Key().String())
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	d.eachPair(n, path, func(k, val *yaml.Node, p string) {
		e := reflect.New(t.Elem()).Elem()
		d.decode(val, e, p, k)
		// Kept even when it failed, so that a backend whose value is wrong
		// is still known to the routes that name it.
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), e)
	})
}

// eachPair calls f for each key of mapping n, after the keys merged into it
// with "<<"; it reports keys that are not strings and keys given twice.
func (d *decoder) eachPair(n *yaml.Node, path string, f func(k, v *yaml.Node, p string)) {
	seen := map[string]*yaml.Node{}
	merged := map[*yaml.Node]bool{} // keys from "<<", which explicit keys override
	var pairs [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			for _, m := range mergeSources(v) {
				if m.Kind != yaml.MappingNode {
					d.problem(k, path, "<< merges mappings only, got %s", describe(m))
					continue
				}
				for j := 0; j+1 < len(m.Content); j += 2 {
					merged[m.Content[j]] = true
					pairs = append(pairs, [2]*yaml.Node{m.Content[j], m.Content[j+1]})
				}
			}
			continue
		}
		pairs = append(pairs, [2]*yaml.Node{k, v})
	}
	// An explicit key overrides a merged one, and among merged mappings the
	// first to give a key wins, as in yaml.v3.
	explicit := map[string]bool{}
	for _, kv := range pairs {
		if !merged[kv[0]] {
			explicit[kv[0].Value] = true
		}
	}
	for _, kv := range pairs {
		k, v := kv[0], kv[1]
		if k.Kind != yaml.ScalarNode {
			d.problem(k, path, "a key must be a plain name, got %s", describe(k))
			continue
		}
		p := join(path, k.Value)
		if merged[k] {
			if explicit[k.Value] || seen[k.Value] != nil {
				continue
			}
		} else if first, dup := seen[k.Value]; dup {
			d.problem(k, p, "duplicate key %q (first at %d:%d)", k.Value, first.Line, first.Column)
			d.failed = append(d.failed, p)
			continue
		}
		seen[k.Value] = k
		f(k, v, p)
	}
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.SequenceNode {
		return []*yaml.Node{v}
	}
	var out []*yaml.Node
	for _, e := range v.Content {
		if e.Kind == yaml.AliasNode && e.Alias != nil {
			e = e.Alias
		}
		out = append(out, e)
	}
	return out
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.SetZero()
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "want a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		d.decode(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i), nil)
	}
	v.Set(s)
}

var linePrefix = regexp.MustCompile(`^(yaml: )?(unmarshal errors:\n\s*)?line \d+: `)

// decodeScalar lets yaml.v3 decode one scalar (or a type with its own
// UnmarshalYAML), naming what was wanted when the node does not fit.
func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	custom := v.Addr().Type().Implements(unmarshalerType)
	if n.Kind != yaml.ScalarNode {
		w := want(v.Type())
		if custom {
			w = "a single value"
		}
		d.fail(n, path, "want %s, got %s", w, describe(n))
		return
	}
	err := n.Decode(v.Addr().Interface())
	if err == nil {
		return
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && !custom {
		d.fail(n, path, "want %s, got %s", want(v.Type()), describe(n))
		return
	}
	d.fail(n, path, "%s", linePrefix.ReplaceAllString(err.Error(), ""))
}

// want names what a Go type is written as.
func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number not below 0"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

// describe names what a node is, for "want X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("%q", v)
	}
	return "nothing"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps a struct's YAML keys to field indexes, as yaml.v3 names
// them (the tag's name, else the field name in lower case).
func yamlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			panic("BUG: config: inline fields are not supported: " + t.String() + "." + f.Name)
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	return m
}

// fieldNames lists a struct's YAML keys in field order.
func fieldNames(t reflect.Type) []string {
	m := yamlFields(t)
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return m[names[i]] < m[names[j]] })
	return names
}

// suggest returns the name among valid that the misspelt key most likely
// meant: one equal but for case, else the nearest within an edit distance
// of 2 (and shorter than the key, so "ab" does not suggest "url"); or "".
func suggest(key string, valid []string) string {
	for _, v := range valid {
		if strings.EqualFold(key, v) {
			return v
		}
	}
	best, bestD := "", 3
	for _, v := range valid {
		if dist := levenshtein.ComputeDistance(key, v); dist < bestD && dist < len(key) {
			best, bestD = v, dist
		}
	}
	return best
}

// locate places a path named by a semantic check: at the node of the
// path or of its nearest ancestor in the document. A scalar is placed at
// its value; a mapping, a list or an empty value at its key.
func (d *decoder) locate(path string) (line, col int) {
	for p := path; ; {
		if pl, ok := d.at[p]; ok {
			n := pl.val
			if pl.key != nil && (n.Kind != yaml.ScalarNode || isNull(n)) {
				n = pl.key
			}
			return n.Line, n.Column
		}
		if p == "" {
			return 0, 0
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			p = ""
		} else {
			p = p[:i]
		}
	}
}

var fieldPrefix = regexp.MustCompile(`^([a-z_][a-z0-9_]*)((?:\[\d+\])*): (.*)$`)

// refine moves a message that starts with a field of the struct at path
// ("image_min_ssim: must be …", as compare.Settings.Validate writes them)
// to that field's path.
func (d *decoder) refine(path, msg string) (string, string) {
	pl, ok := d.at[path]
	if !ok {
		return path, msg
	}
	t := pl.typ
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	m := fieldPrefix.FindStringSubmatch(msg)
	if m == nil || t.Kind() != reflect.Struct {
		return path, msg
	}
	if _, ok := yamlFields(t)[m[1]]; !ok {
		return path, msg
	}
	return join(path, m[1]+m[2]), m[3]
}

// failedAt reports whether path lies under a path whose value could not be
// decoded.
func (d *decoder) failedAt(path string) bool {
	for _, f := range d.failed {
		if under(path, f) {
			return true
		}
	}
	return false
}
