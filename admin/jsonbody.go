package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Limits on the JSON bodies of mutating API calls (whose size fasthttp
// bounds at 4 MiB).
const (
	// MaxReason bounds the "reason" of a rules change, in bytes of UTF-8.
	// It is written to the audit log and shown in the UI with every event,
	// so it is a sentence, not a document.
	MaxReason = 1024
	// maxJSONDepth bounds the nesting of a body's values.
	maxJSONDepth = 32
)

// checkJSON checks that b is exactly one JSON value in which no object has
// the same key twice, nested no deeper than maxJSONDepth. encoding/json
// takes the last of duplicate keys and ignores nothing after the first value
// only when told to, so {"percent":1,"percent":100} or a second document
// appended to the first would otherwise be read as something other than what
// a reviewer of the request saw. RFC 8259 §4 leaves duplicate names to the
// implementation; RFC 7493 (I-JSON) forbids them, as this does.
func checkJSON(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []jsonFrame
	started := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if !started {
				return errors.New("body is empty; want a JSON object")
			}
			if len(stack) > 0 {
				return errors.New("unexpected end of JSON input")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if started && len(stack) == 0 {
			return fmt.Errorf("trailing data after the JSON value (at byte %d)", dec.InputOffset())
		}
		started = true
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone(stack)
				continue
			}
			key := tok.(string) // the decoder only yields strings here
			if _, dup := stack[n-1].keys[key]; dup {
				return fmt.Errorf("duplicate key %q", key)
			}
			stack[n-1].keys[key] = struct{}{}
			stack[n-1].expectKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) == maxJSONDepth {
				return fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
			}
			f := jsonFrame{object: tok == json.Delim('{')}
			if f.object {
				f.expectKey, f.keys = true, map[string]struct{}{}
			}
			stack = append(stack, f)
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone(stack)
		default:
			valueDone(stack)
		}
	}
}

// jsonFrame is one open object or array in checkJSON.
type jsonFrame struct {
	object    bool
	expectKey bool                // object: the next token is a key (or its end)
	keys      map[string]struct{} // object: the keys seen so far
}

// valueDone notes that a value inside the innermost frame ended: in an
// object, a key (or the end) comes next.
func valueDone(stack []jsonFrame) {
	if n := len(stack); n > 0 && stack[n-1].object {
		stack[n-1].expectKey = true
	}
}
