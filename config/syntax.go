package config

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// yaml.v3 places a syntax error at the start of the construct it was
// parsing when it gave up (the enclosing block, counted from 0 for parser
// errors), not where the mistake is, and its error types carry no mark. So
// syntaxProblem finds the place itself: first by reading the flow brackets
// and quotes of the raw text (an unclosed `[`, a `}` that closes a `[`, a
// stray `]`, an unclosed quote), else as the first line whose prefix of the
// document no longer parses.

var yamlLine = regexp.MustCompile(`^line (\d+): `)

// syntaxProblem turns a yaml.v3 syntax error of data into a Problem placed
// at the mistake.
func syntaxProblem(data []byte, err error) *Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	reported := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		reported, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	sc := scanFlow(data)
	if sc.issue != nil {
		return sc.issue
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	// Prefixes that end where no bracket or quote is open parse unless a
	// mistake lies within them; find the shortest that does not.
	var cuts []int
	for k := 1; k <= len(lines); k++ {
		if sc.clean[k] {
			cuts = append(cuts, k)
		}
	}
	i := sort.Search(len(cuts), func(i int) bool {
		var n yaml.Node
		return yaml.Unmarshal(bytes.Join(lines[:cuts[i]], nil), &n) != nil
	})
	if i == len(cuts) {
		return &Problem{Line: reported, Msg: msg}
	}
	k := cuts[i]
	var n yaml.Node
	if perr := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n); perr != nil {
		msg = yamlLine.ReplaceAllString(strings.TrimPrefix(perr.Error(), "yaml: "), "")
	}
	text := strings.TrimRight(string(lines[k-1]), "\r\n")
	col := guessColumn(text, msg)
	if i := strings.IndexByte(text, '\t'); i >= 0 && utf8.RuneCountInString(text[:i])+1 == col && !strings.Contains(msg, "tab") {
		msg += " (a tab: indent with spaces)"
	}
	if strings.Contains(msg, "mapping values are not allowed") {
		col, msg = explainColon(lines[:k-1], text, col, msg)
	}
	return &Problem{Line: k, Column: col, Msg: msg}
}

// explainColon says why a "key: value" is not allowed where it stands, from
// the nearest line above with content: a key more indented than a key that
// already has its value, or a line above that lacks its colon.
func explainColon(above [][]byte, text string, col int, msg string) (int, string) {
	prevLine, prev := 0, ""
	for i := len(above) - 1; i >= 0; i-- {
		t := strings.TrimRight(string(above[i]), "\r\n")
		if c := strings.TrimSpace(t); c != "" && !strings.HasPrefix(c, "#") {
			prevLine, prev = i+1, t
			break
		}
	}
	if prevLine == 0 || strings.Count(text, ": ")+boolInt(strings.HasSuffix(text, ":")) != 1 {
		return col, msg
	}
	indent := func(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
	body := strings.TrimSpace(prev)
	switch {
	case !strings.Contains(body, ": ") && !strings.HasSuffix(body, ":") && !strings.HasPrefix(body, "- "):
		return col, fmt.Sprintf("%s (is the `:` after the key on line %d missing?)", msg, prevLine)
	case indent(text) > indent(prev) && !strings.HasSuffix(body, ":"):
		return indent(text) + 1, fmt.Sprintf("%s (indented more than line %d, whose key has its value already)", msg, prevLine)
	}
	return col, msg
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// guessColumn places a yaml.v3 message within the line it was found on.
func guessColumn(text, msg string) int {
	at := -1
	switch {
	case strings.Contains(msg, "mapping values are not allowed"):
		// "a: b: c" is wrong at its second colon, " b: 2" under "a: 1" at its first.
		var colons []int
		for i := 0; i < len(text); i++ {
			if text[i] == ':' && (i+1 == len(text) || text[i+1] == ' ') {
				colons = append(colons, i)
			}
		}
		if len(colons) > 1 {
			at = colons[1]
		} else if len(colons) == 1 {
			at = colons[0]
		}
	case strings.Contains(msg, "tab character"):
		at = strings.IndexByte(text, '\t')
	case strings.HasPrefix(msg, "unknown anchor '"):
		name, _, _ := strings.Cut(strings.TrimPrefix(msg, "unknown anchor '"), "'")
		at = strings.Index(text, "*"+name)
	}
	if at < 0 {
		at = len(text) - len(strings.TrimLeft(text, " "))
	}
	return utf8.RuneCountInString(text[:at]) + 1
}

// flowScan is what scanFlow found.
type flowScan struct {
	issue *Problem
	// clean[k] is true when no flow bracket or quote is open after the
	// first k lines.
	clean []bool
}

type mark struct {
	ch        byte
	line, col int
}

// scanFlow reads data's flow brackets, quotes, comments and block scalars
// the way YAML does: a bracket or quote starts a node only where a node may
// start (after "key: ", "- ", "[", "{" or ","), and inside brackets every
// [ ] { } , is an indicator. It reports the first unbalanced bracket or an
// unclosed quote.
func scanFlow(data []byte) flowScan {
	lines := bytes.SplitAfter(data, []byte("\n"))
	res := flowScan{clean: make([]bool, len(lines)+1)}
	res.clean[0] = true
	var stack []mark
	var quote mark // quote.ch != 0 while a quoted scalar is open
	blockIndent := -1
	nodeStart := true
	afterFlow := false
	at := func(text []byte, ln, i int) (int, int) { return ln, utf8.RuneCount(text[:i]) + 1 }
	for li, raw := range lines {
		ln := li + 1
		text := bytes.TrimRight(raw, "\r\n")
		indent := len(text) - len(bytes.TrimLeft(text, " "))
		if blockIndent >= 0 {
			if len(bytes.TrimSpace(text)) == 0 || indent > blockIndent {
				res.clean[ln] = true
				continue
			}
			blockIndent = -1
		}
		if len(stack) == 0 && quote.ch == 0 {
			nodeStart, afterFlow = true, false
		}
		prevSpace := true
	chars:
		for i := 0; i < len(text); i++ {
			c := text[i]
			switch quote.ch {
			case '"':
				if c == '\\' {
					i++
				} else if c == '"' {
					quote.ch, nodeStart = 0, false
				}
				continue
			case '\'':
				if c == '\'' {
					if i+1 < len(text) && text[i+1] == '\'' {
						i++
					} else {
						quote.ch, nodeStart = 0, false
					}
				}
				continue
			}
			space := c == ' ' || c == '\t'
			next := byte(' ')
			if i+1 < len(text) {
				next = text[i+1]
			}
			switch {
			case space:
			case c == '#' && prevSpace:
				break chars
			case (c == '"' || c == '\'') && nodeStart:
				quote = mark{c, ln, 0}
				_, quote.col = at(text, ln, i)
			case len(stack) > 0:
				switch c {
				case '[', '{':
					l, col := at(text, ln, i)
					stack = append(stack, mark{c, l, col})
					nodeStart = true
				case ']', '}':
					top := stack[len(stack)-1]
					if top.ch != opening(c) {
						l, col := at(text, ln, i)
						res.issue = &Problem{Line: top.line, Column: top.col,
							Msg: fmt.Sprintf("unclosed `%c` opened at %d:%d: found `%c` at %d:%d", top.ch, top.line, top.col, c, l, col)}
						return res
					}
					stack = stack[:len(stack)-1]
					nodeStart, afterFlow = false, len(stack) == 0
				case ',':
					nodeStart = true
				case ':':
					nodeStart = next == ' ' || next == '\t' || strings.IndexByte(",[]{}", next) >= 0
				default:
					nodeStart = false
				}
			case nodeStart || afterFlow:
				switch {
				case c == '[' || c == '{':
					l, col := at(text, ln, i)
					stack = append(stack, mark{c, l, col})
					nodeStart, afterFlow = true, false
				case c == ']' || c == '}':
					l, col := at(text, ln, i)
					res.issue = &Problem{Line: l, Column: col,
						Msg: fmt.Sprintf("`%c` at %d:%d closes nothing: no `%c` is open", c, l, col, opening(c))}
					return res
				case afterFlow:
					afterFlow = false
					nodeStart = c == ':' && (next == ' ' || next == '\t')
				case c == '|' || c == '>':
					blockIndent = indent
					break chars
				case (c == '-' || c == '?') && (next == ' ' || next == '\t'):
				case c == '&' || c == '!': // an anchor or a tag before the node
					for i+1 < len(text) && text[i+1] != ' ' {
						i++
					}
				default:
					nodeStart = false
				}
			case c == ':' && (next == ' ' || next == '\t'):
				nodeStart = true
			}
			prevSpace = space
		}
		res.clean[ln] = len(stack) == 0 && quote.ch == 0
	}
	switch {
	case quote.ch != 0:
		res.issue = &Problem{Line: quote.line, Column: quote.col,
			Msg: fmt.Sprintf("unclosed `%c` opened at %d:%d: no closing `%c` before the end of the file", quote.ch, quote.line, quote.col, quote.ch)}
	case len(stack) > 0:
		top := stack[len(stack)-1]
		res.issue = &Problem{Line: top.line, Column: top.col,
			Msg: fmt.Sprintf("unclosed `%c` opened at %d:%d: no `%c` before the end of the file", top.ch, top.line, top.col, closing(top.ch))}
	}
	return res
}

func opening(c byte) byte {
	if c == ']' {
		return '['
	}
	return '{'
}

func closing(c byte) byte {
	if c == '[' {
		return ']'
	}
	return '}'
}
