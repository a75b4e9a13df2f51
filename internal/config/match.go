package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// This file holds the grammar of route hosts and path templates. It is
// the only one: Validate reports what these parsers refuse, and the
// router compiles the forms they return (issue 16).

// Host is a parsed route host, one entry of match.hosts.
type Host struct {
	// Name is the lower-case DNS name; for a wildcard, the part after "*.".
	Name string
	// Wildcard is set for "*.Name", which matches any name ending in
	// ".Name" with at least one more label in front, not Name itself.
	Wildcard bool
}

// String returns the host as written in a config, lower-cased.
func (h Host) String() string {
	if h.Wildcard {
		return "*." + h.Name
	}
	return h.Name
}

// ParseHost parses a route host: a DNS name (letters, digits and '-', no
// label starting or ending with '-', at most 63 bytes a label and 253 in
// all), optionally with a leading "*." wildcard label, without scheme,
// port or trailing dot. Names compare case-insensitively, so Name is
// lower-cased.
func ParseHost(s string) (Host, error) {
	switch {
	case s == "":
		return Host{}, fmt.Errorf("host must not be empty")
	case strings.Contains(s, "://"):
		return Host{}, fmt.Errorf("invalid host %q: no scheme allowed", s)
	case strings.ContainsAny(s, ":[]"):
		return Host{}, fmt.Errorf("invalid host %q: no port allowed (hosts match any port)", s)
	case len(s) > 253:
		return Host{}, fmt.Errorf("invalid host %q: longer than 253 characters", s)
	}
	name, wild := strings.CutPrefix(s, "*.")
	for label := range strings.SplitSeq(name, ".") {
		if strings.Contains(label, "*") {
			return Host{}, fmt.Errorf("invalid host %q: a wildcard is allowed only as the whole first label (*.example.com)", s)
		}
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return Host{}, fmt.Errorf("invalid host %q: not a DNS name", s)
		}
		for i := range len(label) {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return Host{}, fmt.Errorf("invalid host %q: not a DNS name", s)
			}
		}
	}
	return Host{Name: strings.ToLower(name), Wildcard: wild}, nil
}

// Template is a parsed path template such as "/u/{id}/{*rest}".
type Template struct {
	// Literal is the text before the first variable ("/u/" above), or the
	// whole template when it has none: every matching path starts with
	// it, the router ranks the route by its length, and strip_prefix and
	// rewrite act on it.
	Literal string
	// Segments are the "/"-separated parts after the leading "/".
	Segments []Segment
}

// Segment is one part of a Template.
type Segment struct {
	Kind SegmentKind
	// Lit is a literal segment's text; Name a variable's name.
	Lit, Name string
}

// SegmentKind says what a Segment matches.
type SegmentKind uint8

// The kinds of template segment.
const (
	// SegmentLiteral matches its text exactly.
	SegmentLiteral SegmentKind = iota
	// SegmentVar, {name}, matches one non-empty segment.
	SegmentVar
	// SegmentRest, {*name}, matches the rest of the path, possibly empty;
	// it is always the last segment.
	SegmentRest
)

// ParseTemplate parses a path template: it starts with "/", every
// segment is literal text or a whole {name}, {*name} only as the last
// segment, and names are identifiers ([A-Za-z_][A-Za-z0-9_]*) used once.
func ParseTemplate(s string) (*Template, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("template must start with \"/\"")
	}
	t := &Template{Literal: s}
	if i := strings.IndexByte(s, '{'); i >= 0 {
		t.Literal = s[:i]
	}
	segs := strings.Split(s[1:], "/")
	t.Segments = make([]Segment, 0, len(segs))
	names := map[string]bool{}
	for i, seg := range segs {
		if !strings.ContainsAny(seg, "{}") {
			t.Segments = append(t.Segments, Segment{Kind: SegmentLiteral, Lit: seg})
			continue
		}
		if !strings.HasPrefix(seg, "{") || !strings.HasSuffix(seg, "}") || strings.Count(seg, "{") != 1 || strings.Count(seg, "}") != 1 {
			return nil, fmt.Errorf("invalid template %q: segment %q must be literal or a whole {name}", s, seg)
		}
		name, kind := seg[1:len(seg)-1], SegmentVar
		if rest, ok := strings.CutPrefix(name, "*"); ok {
			if i != len(segs)-1 {
				return nil, fmt.Errorf("invalid template %q: {*%s} must be the last segment", s, rest)
			}
			name, kind = rest, SegmentRest
		}
		if !isIdent(name) {
			return nil, fmt.Errorf("invalid template %q: %q is not a valid name", s, name)
		}
		if names[name] {
			return nil, fmt.Errorf("invalid template %q: name %q used twice", s, name)
		}
		names[name] = true
		t.Segments = append(t.Segments, Segment{Kind: kind, Name: name})
	}
	return t, nil
}

// isIdent reports whether s is [A-Za-z_][A-Za-z0-9_]*.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// PathParams returns the names of the captures a path match supplies: a
// template's {name} and {*name} variables, a regex's named groups
// ((?P<name>...)). Other paths, and ones that do not parse, supply none.
func PathParams(p PathMatch) []string {
	switch {
	case p.Template != "":
		t, err := ParseTemplate(p.Template)
		if err != nil {
			return nil
		}
		var names []string
		for _, s := range t.Segments {
			if s.Kind != SegmentLiteral {
				names = append(names, s.Name)
			}
		}
		return names
	case p.Regex != "":
		re, err := regexp.Compile(p.Regex)
		if err != nil {
			return nil
		}
		var names []string
		for _, n := range re.SubexpNames() {
			if n != "" && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		return names
	}
	return nil
}
