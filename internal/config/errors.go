package config

import (
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a config document, with where it stood.
type Error struct {
	// Pos is where the offending value (or key) stands in the document.
	Pos Pos
	// Path names the value, for example "routes[2].upstream"; it may be
	// empty for problems with the document as a whole.
	Path string
	// Msg says what is wrong, in lower case, without a trailing period.
	Msg string
}

// Error formats e as "FILE:LINE:COL: PATH: MSG"; the PATH part is left out
// when Path is empty, and the position when it is entirely unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos != (Pos{}) {
		b.WriteString(e.Pos.String())
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a document, sorted by position.
type Errors []*Error

// Error joins the errors with newlines, one problem a line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sort orders es by file, line and column, keeping the order of errors at
// the same position.
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		if c := strings.Compare(a.Pos.File, b.Pos.File); c != 0 {
			return c
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		return a.Pos.Col - b.Pos.Col
	})
}

// err returns es as an error: nil when empty, otherwise sorted Errors.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	es.sort()
	return es
}

// File returns the file name used in positions.
func (c *Config) File() string { return c.file }

// Pos returns where the value at path stood in the document. A path that
// was not in the document (a default, or a missing key) falls back to its
// nearest parent that was, and finally to the start of the file.
func (c *Config) Pos(path string) Pos {
	for p := path; ; p = parentPath(p) {
		if pos, ok := c.pos[p]; ok {
			return pos
		}
		if p == "" {
			break
		}
	}
	if c.file == "" {
		return Pos{}
	}
	return Pos{File: c.file, Line: 1, Col: 1}
}

// Errorf returns an error about the value at path, positioned where it
// stood in the document.
func (c *Config) Errorf(path, format string, args ...any) *Error {
	return &Error{Pos: c.Pos(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

// parentPath strips the last element of a path: "a.b[2]" -> "a.b",
// "a.b" -> "a", "a" -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}
