package compare

import (
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
)

// Rendering is kept apart from the model: Result and Difference are data
// (with JSON tags for the API and the diff store); Text renders them for
// people (logs, CLI). The text form is checked against testdata/*.golden.

// Text renders r for people: a summary line, then one aligned line per
// difference, "kind  path  legacy → new", noise marked:
//
//	mismatch: 2 differences (1 noise)
//	  status  $.status              200 → 500
//	  header  $.header.Cache-Control  "no-store" → <missing>  (noise)
func (r Result) Text() string {
	var b strings.Builder
	b.WriteString(string(r.Outcome))
	if n := len(r.Diffs); n > 0 {
		noise := 0
		for _, d := range r.Diffs {
			if d.Noise {
				noise++
			}
		}
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(n))
		if n == 1 {
			b.WriteString(" difference")
		} else {
			b.WriteString(" differences")
		}
		if noise > 0 {
			b.WriteString(" (" + strconv.Itoa(noise) + " noise)")
		}
	}
	b.WriteByte('\n')
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, d := range r.Diffs {
		line := "  " + string(d.Kind) + "\t" + textValue(d.Path) + "\t" + textValue(d.Legacy) + " → " + textValue(d.New)
		if d.Noise {
			line += "  (noise)"
		}
		tw.Write([]byte(line + "\n"))
	}
	tw.Flush()
	return b.String()
}

// textValue quotes v when it is empty or holds characters that would break
// the line or the columns.
func textValue(v string) string {
	if v == "" {
		return `""`
	}
	for _, c := range v {
		if c == '\t' || c == '\n' || c == '\r' || !unicode.IsPrint(c) && c != ' ' {
			return strconv.Quote(v)
		}
	}
	return v
}
