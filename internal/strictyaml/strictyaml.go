// Package strictyaml decodes YAML (and JSON, which is YAML) documents strictly:
// unknown keys are errors, every problem is reported with its line, and the
// caller gets an index from field paths to lines so that its own semantic
// validation can name lines too. It owns no configuration types.
package strictyaml

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem found in a document. Line is 0 when unknown.
type Error struct {
	Line int
	Path string // field path such as "routes[0].serve_new"; may be empty
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Lines maps field paths to the line where the field's key stands.
type Lines map[string]int

// Of returns the line of path, or of its longest known prefix, or 0.
func (l Lines) Of(path string) int {
	for p := path; p != ""; {
		if n, ok := l[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// Locate sets the Line of every *Error in errs that has a Path but no Line.
func (l Lines) Locate(errs []error) {
	for _, err := range errs {
		var e *Error
		if errors.As(err, &e) && e.Line == 0 && e.Path != "" {
			e.Line = l.Of(e.Path)
		}
	}
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// Decode parses data into out (a pointer to a struct whose fields carry yaml
// tags). Fields absent from the document keep the values out already has, so
// callers pre-fill defaults. It returns every problem: syntax, unknown keys,
// duplicate keys and type errors, sorted by line.
func Decode(data []byte, out any) (Lines, []error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, []error{fromYAMLError(err)}
	}
	lines := Lines{}
	if len(root.Content) == 0 {
		return lines, []error{&Error{Msg: "empty document"}}
	}
	doc := root.Content[0]
	var errs []error
	walk(doc, reflect.TypeOf(out), "", lines, &errs)
	if err := doc.Decode(out); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, s := range te.Errors {
				errs = append(errs, fromString(s))
			}
		} else {
			errs = append(errs, fromYAMLError(err))
		}
	}
	sort.SliceStable(errs, func(i, j int) bool { return lineOf(errs[i]) < lineOf(errs[j]) })
	return lines, errs
}

func lineOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Line
	}
	return 0
}

func fromYAMLError(err error) error {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	return fromString(s)
}

func fromString(s string) error {
	if m := lineRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{Line: n, Msg: m[2]}
	}
	return &Error{Msg: s}
}

// walk records the line of every key and reports keys that t does not have.
func walk(n *yaml.Node, t reflect.Type, path string, lines Lines, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type error
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			lines[p] = k.Line
			if seen[k.Value] {
				*errs = append(*errs, &Error{Line: k.Line, Path: p, Msg: "duplicate key"})
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, &Error{Line: k.Line, Path: p, Msg: fmt.Sprintf("unknown key %q", k.Value)})
				continue
			}
			walk(v, ft, p, lines, errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			lines[p] = k.Line
			walk(v, t.Elem(), p, lines, errs)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = v.Line
			walk(v, t.Elem(), p, lines, errs)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}
