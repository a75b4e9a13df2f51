package sanitize

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

var (
	errJSON      = errors.New("malformed JSON")
	errJSONDepth = errors.New("JSON nested too deep")
)

// jsonWalker walks a JSON document without building a tree and calls
// visit for every string in it, keys included, unescaped. The []byte given
// to visit is only valid during the call.
type jsonWalker struct {
	b     []byte
	i     int
	max   int    // deepest nesting allowed
	buf   []byte // scratch for the string being unescaped
	key   []byte // the current object key (for excludes)
	visit func(s []byte, isKey bool, key []byte) error
}

// walk checks that b is exactly one JSON value (with surrounding space).
func (w *jsonWalker) walk() error {
	if err := w.value(0); err != nil {
		return err
	}
	w.space()
	if w.i != len(w.b) {
		return errJSON
	}
	return nil
}

func (w *jsonWalker) space() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

func (w *jsonWalker) value(depth int) error {
	w.space()
	if w.i >= len(w.b) {
		return errJSON
	}
	switch c := w.b[w.i]; {
	case c == '{':
		if depth >= w.max {
			return errJSONDepth
		}
		w.i++
		w.space()
		if w.i < len(w.b) && w.b[w.i] == '}' {
			w.i++
			return nil
		}
		for {
			w.space()
			if w.i >= len(w.b) || w.b[w.i] != '"' {
				return errJSON
			}
			s, err := w.str()
			if err != nil {
				return err
			}
			w.key = append(w.key[:0], s...)
			if err := w.visit(w.key, true, nil); err != nil {
				return err
			}
			w.space()
			if w.i >= len(w.b) || w.b[w.i] != ':' {
				return errJSON
			}
			w.i++
			if err := w.value(depth + 1); err != nil {
				return err
			}
			w.space()
			if w.i >= len(w.b) {
				return errJSON
			}
			if w.b[w.i] == '}' {
				w.i++
				w.key = w.key[:0]
				return nil
			}
			if w.b[w.i] != ',' {
				return errJSON
			}
			w.i++
		}
	case c == '[':
		if depth >= w.max {
			return errJSONDepth
		}
		w.i++
		w.space()
		if w.i < len(w.b) && w.b[w.i] == ']' {
			w.i++
			return nil
		}
		for {
			if err := w.value(depth + 1); err != nil {
				return err
			}
			w.space()
			if w.i >= len(w.b) {
				return errJSON
			}
			if w.b[w.i] == ']' {
				w.i++
				return nil
			}
			if w.b[w.i] != ',' {
				return errJSON
			}
			w.i++
		}
	case c == '"':
		key := w.key
		s, err := w.str()
		if err != nil {
			return err
		}
		return w.visit(s, false, key)
	case c == '-' || (c >= '0' && c <= '9'):
		return w.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(w.b)-w.i >= len(lit) && string(w.b[w.i:w.i+len(lit)]) == lit {
				w.i += len(lit)
				return nil
			}
		}
		return errJSON
	}
}

// number accepts RFC 8259's number grammar.
func (w *jsonWalker) number() error {
	digits := func() int {
		n := 0
		for w.i < len(w.b) && w.b[w.i] >= '0' && w.b[w.i] <= '9' {
			w.i++
			n++
		}
		return n
	}
	if w.b[w.i] == '-' {
		w.i++
	}
	if w.i < len(w.b) && w.b[w.i] == '0' {
		w.i++
	} else if digits() == 0 {
		return errJSON
	}
	if w.i < len(w.b) && w.b[w.i] == '.' {
		w.i++
		if digits() == 0 {
			return errJSON
		}
	}
	if w.i < len(w.b) && (w.b[w.i] == 'e' || w.b[w.i] == 'E') {
		w.i++
		if w.i < len(w.b) && (w.b[w.i] == '+' || w.b[w.i] == '-') {
			w.i++
		}
		if digits() == 0 {
			return errJSON
		}
	}
	return nil
}

// str reads the string at w.i (at its opening quote) and returns its
// unescaped content: a slice of the input when it has no escapes, else of
// w.buf.
func (w *jsonWalker) str() ([]byte, error) {
	w.i++ // opening quote
	start := w.i
	for w.i < len(w.b) {
		c := w.b[w.i]
		switch {
		case c == '"':
			s := w.b[start:w.i]
			w.i++
			return s, nil
		case c == '\\':
			return w.escaped(start)
		case c < 0x20:
			return nil, errJSON
		}
		w.i++
	}
	return nil, errJSON
}

func (w *jsonWalker) escaped(start int) ([]byte, error) {
	w.buf = append(w.buf[:0], w.b[start:w.i]...)
	for w.i < len(w.b) {
		c := w.b[w.i]
		switch {
		case c == '"':
			w.i++
			return w.buf, nil
		case c < 0x20:
			return nil, errJSON
		case c != '\\':
			w.buf = append(w.buf, c)
			w.i++
			continue
		}
		if w.i+1 >= len(w.b) {
			return nil, errJSON
		}
		e := w.b[w.i+1]
		w.i += 2
		switch e {
		case '"', '\\', '/':
			w.buf = append(w.buf, e)
		case 'b':
			w.buf = append(w.buf, '\b')
		case 'f':
			w.buf = append(w.buf, '\f')
		case 'n':
			w.buf = append(w.buf, '\n')
		case 'r':
			w.buf = append(w.buf, '\r')
		case 't':
			w.buf = append(w.buf, '\t')
		case 'u':
			r, ok := w.hex4()
			if !ok {
				return nil, errJSON
			}
			if utf16.IsSurrogate(r) {
				// A pair: \uD83D\uDE00. A lone surrogate becomes U+FFFD.
				if w.i+1 < len(w.b) && w.b[w.i] == '\\' && w.b[w.i+1] == 'u' {
					save := w.i
					w.i += 2
					if r2, ok := w.hex4(); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							r = d
						} else {
							r, w.i = utf8.RuneError, save
						}
					} else {
						return nil, errJSON
					}
				} else {
					r = utf8.RuneError
				}
			}
			w.buf = utf8.AppendRune(w.buf, r)
		default:
			return nil, errJSON
		}
	}
	return nil, errJSON
}

func (w *jsonWalker) hex4() (rune, bool) {
	if len(w.b)-w.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range w.b[w.i : w.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	w.i += 4
	return r, true
}
