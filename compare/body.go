package compare

import (
	"bytes"
	"fmt"
)

// Other bodies are compared as bytes: a difference at "$.body" whose sides
// read "sha256:<first 6 bytes of the hash in hex>… size:<bytes>". Text bodies
// (text/*, XML, JavaScript) add the first differing line, 1-based, with that
// line's start on each side, and how many lines each side has:
//
//	sha256:0123456789ab… size:120; line 3 of 7: "total: 12"

// textDiff is the body difference of two text bodies, both complete.
func textDiff(legacy, new *Response) Difference {
	d := hashDiff(legacy, new, "")
	a, b := legacy.Body, new.Body
	line := 1
	for {
		la, resta, oka := cutLine(a)
		lb, restb, okb := cutLine(b)
		if !oka && !okb {
			return d // same lines; the bytes differ in line endings only
		}
		if oka != okb || !bytes.Equal(la, lb) {
			d.Legacy += lineNote(line, legacy.Body, la, oka)
			d.New += lineNote(line, new.Body, lb, okb)
			return d
		}
		if line >= maxTextDiffLines {
			return d
		}
		a, b, line = resta, restb, line+1
	}
}

// cutLine returns the first line of b without its line ending ("\n" or
// "\r\n"), the rest, and whether there was a line at all.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	if len(b) == 0 {
		return nil, nil, false
	}
	line, rest, _ = bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), rest, true
}

func lineNote(n int, body, line []byte, ok bool) string {
	total := bytes.Count(body, []byte("\n"))
	if len(body) > 0 && body[len(body)-1] != '\n' {
		total++
	}
	if !ok {
		return fmt.Sprintf("; line %d of %d: %s", n, total, missing)
	}
	return fmt.Sprintf("; line %d of %d: %q", n, total, truncate(string(line), defaultTextLineSampleSize))
}
