package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration document, placed at the
// YAML node it is about. Load and Parse return every problem as a *Problem.
type Problem struct {
	// Line and Column are 1-based, counted in characters; 0 when unknown
	// (a file that cannot be read).
	Line   int `json:"line"`
	Column int `json:"column"`
	// Path names the field, as "routes[1].serve_new" or "backends.legacy.url";
	// empty for syntax errors and for the document as a whole.
	Path string `json:"path"`
	// Msg says what is wrong, without the position, the path or the suggestion.
	Msg string `json:"message"`
	// Suggestion is a valid name close to a misspelt one ("limits" for
	// "limtis"), else empty.
	Suggestion string `json:"suggestion"`
}

// Error is "LINE:COL: path: message; did you mean `x`?", with the parts that
// are unknown or empty left out.
func (p *Problem) Error() string {
	var b strings.Builder
	switch {
	case p.Line > 0 && p.Column > 0:
		fmt.Fprintf(&b, "%d:%d: ", p.Line, p.Column)
	case p.Line > 0:
		fmt.Fprintf(&b, "%d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Suggestion != "" {
		fmt.Fprintf(&b, "; did you mean `%s`?", p.Suggestion)
	}
	return b.String()
}

// under reports whether path is p or lies below it ("routes[0].x" is under
// "routes[0]" and "routes").
func under(path, p string) bool {
	if !strings.HasPrefix(path, p) {
		return false
	}
	rest := path[len(p):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}
