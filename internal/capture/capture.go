// Package capture substitutes a route's path captures ({id}, {*rest} of a
// template, (?P<id>...) of a regex; exchange.Param) and request query
// values into the strings that use them: rewrite.path, aggregate backend
// paths and queries, headers policy values. Captures are percent-decoded
// (they come from the decoded request path) and re-encoded here, for the
// place they are substituted into.
package capture

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/rampart-gw/rampart/internal/exchange"
)

// Subst is a parsed string with placeholders: {name} is the capture name,
// {query.NAME} the first value of the request's query parameter NAME ("" when
// absent). {*name} is accepted for {name}. Every other brace is an error.
type Subst struct {
	src   string
	parts []part
}

type part struct {
	lit   string
	name  string // capture or query parameter name, or resp path; "" for a literal
	query bool
	resp  bool // {resp.GROUP.path}: a field of an earlier aggregate answer
}

// Mode is where an expansion goes, which decides its escaping.
type Mode uint8

const (
	// Path escapes a value as one path segment (a {*rest} capture as
	// segments, its slashes kept).
	Path Mode = iota
	// Query escapes a value as a query component.
	Query
	// Header inserts the value as it is, control characters dropped.
	Header
)

// Parse parses s.
func Parse(s string) (*Subst, error) { return parse(s, false) }

// ParseSteps parses s, an aggregate backend path, which may also hold
// {resp.GROUP.dotted.path}: a field of the answer of the backend with
// that group (sequential steps).
func ParseSteps(s string) (*Subst, error) { return parse(s, true) }

func parse(s string, steps bool) (*Subst, error) {
	t := &Subst{src: s}
	rest := s
	for rest != "" {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			t.parts = append(t.parts, part{lit: rest})
			break
		}
		if rest[i] == '}' {
			return nil, fmt.Errorf("%q: unmatched \"}\"", s)
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("%q: unclosed \"{\"", s)
		}
		name := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		p := part{}
		if rp, ok := strings.CutPrefix(name, "resp."); ok && steps {
			if rp == "" || strings.HasPrefix(rp, ".") || strings.HasSuffix(rp, ".") || strings.Contains(rp, "..") {
				return nil, fmt.Errorf("%q: invalid placeholder {%s} (want {resp.GROUP.field})", s, name)
			}
			p.name, p.resp = rp, true
		} else if q, ok := strings.CutPrefix(name, "query."); ok {
			if q == "" || strings.ContainsAny(q, "{&=#") {
				return nil, fmt.Errorf("%q: invalid query placeholder {%s}", s, name)
			}
			p.name, p.query = q, true
		} else {
			name = strings.TrimPrefix(name, "*")
			if !isName(name) {
				return nil, fmt.Errorf("%q: invalid placeholder {%s} (want {name} or {query.NAME})", s, name)
			}
			p.name = name
		}
		t.parts = append(t.parts, p)
	}
	return t, nil
}

// isName reports whether s is a capture name: letters, digits and '_'
// (the names Go's regexp allows for groups, and template names).
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// String returns the source text.
func (t *Subst) String() string { return t.src }

// Literal reports whether t has no placeholder.
func (t *Subst) Literal() bool {
	for _, p := range t.parts {
		if p.name != "" {
			return false
		}
	}
	return true
}

// Names returns the capture names t uses, in order, once each.
func (t *Subst) Names() []string {
	var out []string
	for _, p := range t.parts {
		if p.name != "" && !p.query && !p.resp && !contains(out, p.name) {
			out = append(out, p.name)
		}
	}
	return out
}

// UsesQuery reports whether t has a {query.NAME} placeholder.
func (t *Subst) UsesQuery() bool {
	for _, p := range t.parts {
		if p.query {
			return true
		}
	}
	return false
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Resps returns the {resp.PATH} paths t uses, in order.
func (t *Subst) Resps() []string {
	var out []string
	for _, p := range t.parts {
		if p.resp {
			out = append(out, p.name)
		}
	}
	return out
}

// Missing returns the first capture name t uses that have does not hold.
func (t *Subst) Missing(have []string) (string, bool) {
	for _, n := range t.Names() {
		if !contains(have, n) {
			return n, true
		}
	}
	return "", false
}

// Expand appends t to dst with the placeholders replaced by params and the
// values of rawQuery, escaped for mode.
func (t *Subst) Expand(dst []byte, params []exchange.Param, rawQuery string, mode Mode) []byte {
	return t.ExpandSteps(dst, params, rawQuery, mode, nil)
}

// ExpandSteps is Expand with resp giving the value of each {resp.PATH}
// ("" without it).
func (t *Subst) ExpandSteps(dst []byte, params []exchange.Param, rawQuery string, mode Mode, resp func(path string) string) []byte {
	var q url.Values
	for _, p := range t.parts {
		if p.name == "" {
			dst = append(dst, p.lit...)
			continue
		}
		var v string
		rest := false
		if p.resp {
			if resp != nil {
				v = resp(p.name)
			}
		} else if p.query {
			if q == nil {
				q, _ = url.ParseQuery(rawQuery)
			}
			v = q.Get(p.name)
		} else {
			for _, c := range params {
				if c.Name == p.name {
					v, rest = c.Value, c.Rest
					break
				}
			}
		}
		dst = escape(dst, v, rest, mode)
	}
	return dst
}

// ExpandString is Expand into a new string.
func (t *Subst) ExpandString(params []exchange.Param, rawQuery string, mode Mode) string {
	return string(t.Expand(make([]byte, 0, len(t.src)+32), params, rawQuery, mode))
}

func escape(dst []byte, v string, rest bool, mode Mode) []byte {
	switch mode {
	case Path:
		if !rest {
			return append(dst, url.PathEscape(v)...)
		}
		for i, seg := range strings.Split(v, "/") {
			if i > 0 {
				dst = append(dst, '/')
			}
			dst = append(dst, url.PathEscape(seg)...)
		}
		return dst
	case Query:
		return append(dst, url.QueryEscape(v)...)
	}
	for i := range len(v) {
		if c := v[i]; c >= 0x20 && c != 0x7f {
			dst = append(dst, c)
		}
	}
	return dst
}
