package transcode

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Template is a compiled google.api.http path template (google/api/http.proto):
//
//	Template = "/" Segments [ Verb ] ;
//	Segments = Segment { "/" Segment } ;
//	Segment  = "*" | "**" | LITERAL | Variable ;
//	Variable = "{" FieldPath [ "=" Segments ] "}" ;
//	FieldPath = IDENT { "." IDENT } ;
//	Verb     = ":" LITERAL ;
//
// "*" matches one path segment, "**" any number (zero or more) and is only
// allowed last; a variable without "=" is "{name=*}". A template such as
// "/v1/{name=shelves/*}/books/{book.id}" binds name to "shelves/NAME" and
// the nested field book.id to the last segment.
type Template struct {
	src  string
	segs []seg
	vars []variable
	verb string
	// literals counts the literal segments, for ranking matches.
	literals int
	// rest says the last segment is "**".
	rest bool
}

// seg is one segment: a literal, "*" or "**".
type seg struct {
	lit  string
	kind segKind
}

type segKind uint8

const (
	segLiteral segKind = iota
	segOne             // *
	segRest            // **
)

// variable binds the segments [start, end) of the path to a field path.
type variable struct {
	field      []string
	start, end int // end == -1: to the end of the path (a "**")
}

// Capture is a variable's value in a matched path: the field path it
// binds (["book", "id"]) and the percent-decoded text. A variable of one
// segment is decoded whole; one of several keeps "%2F" so that its
// slashes stay distinguishable (the rule's "reserved expansion").
type Capture struct {
	Field []string
	Value string
}

// String returns the template as written.
func (t *Template) String() string { return t.src }

// Fields returns the field paths the template's variables bind, dotted.
func (t *Template) Fields() []string {
	out := make([]string, len(t.vars))
	for i, v := range t.vars {
		out[i] = strings.Join(v.field, ".")
	}
	return out
}

// maxTemplateSegments bounds a template's length (a backstop for odd
// descriptors).
const maxTemplateSegments = 64

// ParseTemplate compiles a path template.
func ParseTemplate(s string) (*Template, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, errors.New("path template must start with \"/\"")
	}
	t := &Template{src: s}
	body := s[1:]
	// The verb is a ':' after the last '/' that is outside braces.
	depth, verbAt := 0, -1
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			depth++
		case '}':
			depth--
		case '/':
			verbAt = -1
		case ':':
			if depth == 0 && verbAt < 0 {
				verbAt = i
			}
		}
	}
	if verbAt >= 0 {
		t.verb = body[verbAt+1:]
		body = body[:verbAt]
		if t.verb == "" || strings.ContainsAny(t.verb, "/{}*:") {
			return nil, fmt.Errorf("invalid verb %q", t.verb)
		}
	}
	if body == "" {
		return nil, errors.New("path template has no segment (\"/\" alone is not a template)")
	}
	p := &tparser{s: body}
	if err := p.segments(t, false); err != nil {
		return nil, err
	}
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected %q at offset %d", p.s[p.i], p.i+1)
	}
	for i, sg := range t.segs {
		if sg.kind == segRest && i != len(t.segs)-1 {
			return nil, errors.New("\"**\" must be the last segment")
		}
	}
	if len(t.segs) > maxTemplateSegments {
		return nil, fmt.Errorf("path template has more than %d segments", maxTemplateSegments)
	}
	seen := map[string]bool{}
	for _, v := range t.vars {
		f := strings.Join(v.field, ".")
		if seen[f] {
			return nil, fmt.Errorf("field %s is bound twice", f)
		}
		seen[f] = true
	}
	return t, nil
}

type tparser struct {
	s string
	i int
}

// segments parses Segments; inVar stops at '}'.
func (p *tparser) segments(t *Template, inVar bool) error {
	for {
		if err := p.segment(t, inVar); err != nil {
			return err
		}
		if p.i < len(p.s) && p.s[p.i] == '/' {
			p.i++
			continue
		}
		return nil
	}
}

func (p *tparser) segment(t *Template, inVar bool) error {
	if p.i >= len(p.s) {
		return errors.New("empty segment")
	}
	switch c := p.s[p.i]; {
	case c == '*':
		if strings.HasPrefix(p.s[p.i:], "**") {
			p.i += 2
			t.segs = append(t.segs, seg{kind: segRest})
			t.rest = true
		} else {
			p.i++
			t.segs = append(t.segs, seg{kind: segOne})
		}
		if p.i < len(p.s) && p.s[p.i] != '/' && p.s[p.i] != '}' {
			return fmt.Errorf("unexpected %q after \"*\"", p.s[p.i])
		}
		return nil
	case c == '{':
		if inVar {
			return errors.New("nested variable")
		}
		p.i++
		start := p.i
		for p.i < len(p.s) && p.s[p.i] != '=' && p.s[p.i] != '}' {
			p.i++
		}
		if p.i >= len(p.s) {
			return errors.New("unclosed variable")
		}
		field := strings.Split(p.s[start:p.i], ".")
		for _, f := range field {
			if !ident(f) {
				return fmt.Errorf("invalid field path %q", p.s[start:p.i])
			}
		}
		v := variable{field: field, start: len(t.segs)}
		if p.s[p.i] == '=' {
			p.i++
			if err := p.segments(t, true); err != nil {
				return err
			}
		} else {
			t.segs = append(t.segs, seg{kind: segOne})
		}
		if p.i >= len(p.s) || p.s[p.i] != '}' {
			return errors.New("unclosed variable")
		}
		p.i++
		v.end = len(t.segs)
		if t.segs[len(t.segs)-1].kind == segRest {
			v.end = -1
		}
		t.vars = append(t.vars, v)
		if p.i < len(p.s) && p.s[p.i] != '/' {
			return fmt.Errorf("unexpected %q after a variable", p.s[p.i])
		}
		return nil
	default:
		start := p.i
		for p.i < len(p.s) && !strings.ContainsRune("/{}*=", rune(p.s[p.i])) {
			p.i++
		}
		if p.i == start {
			return fmt.Errorf("unexpected %q", c)
		}
		lit, err := url.PathUnescape(p.s[start:p.i])
		if err != nil {
			return fmt.Errorf("invalid literal %q", p.s[start:p.i])
		}
		t.segs = append(t.segs, seg{lit: lit})
		t.literals++
		return nil
	}
}

func ident(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// Match matches an escaped request path (url.URL.EscapedPath) against
// the template and returns the variables' values.
func (t *Template) Match(escaped string) ([]Capture, bool) {
	if !strings.HasPrefix(escaped, "/") {
		return nil, false
	}
	p := escaped[1:]
	if t.verb != "" {
		i := strings.LastIndexByte(p, ':')
		if i < 0 || strings.IndexByte(p[i:], '/') >= 0 {
			return nil, false
		}
		v, err := url.PathUnescape(p[i+1:])
		if err != nil || v != t.verb {
			return nil, false
		}
		p = p[:i]
	}
	parts := strings.Split(p, "/")
	if len(parts) == 1 && parts[0] == "" {
		parts = nil
	}
	if t.rest {
		if len(parts) < len(t.segs)-1 {
			return nil, false
		}
	} else if len(parts) != len(t.segs) {
		return nil, false
	}
	for i, sg := range t.segs {
		switch sg.kind {
		case segLiteral:
			v, err := url.PathUnescape(parts[i])
			if err != nil || v != sg.lit {
				return nil, false
			}
		case segOne:
			if parts[i] == "" {
				return nil, false
			}
		}
	}
	caps := make([]Capture, 0, len(t.vars))
	for _, v := range t.vars {
		end := v.end
		if end < 0 {
			end = len(parts)
		}
		var val string
		var err error
		if end-v.start == 1 && (v.end >= 0) {
			val, err = url.PathUnescape(parts[v.start])
		} else {
			val, err = unescapeReserved(strings.Join(parts[v.start:end], "/"))
		}
		if err != nil {
			return nil, false
		}
		caps = append(caps, Capture{Field: v.field, Value: val})
	}
	return caps, true
}

// unescapeReserved percent-decodes s except "%2F" (and "%2f"), which
// stays as it is.
func unescapeReserved(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", fmt.Errorf("invalid escape in %q", s)
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		if c == '/' {
			b.WriteString(s[i : i+3])
		} else {
			b.WriteByte(c)
		}
		i += 2
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
