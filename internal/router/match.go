package router

import (
	"errors"
	"fmt"
	"strings"
)

// template is a compiled path template such as "/u/{id}/{*rest}".
type template struct {
	segs []segment
	lit  string // the literal text before the first variable
}

// segment is one "/"-separated part of a template: literal text, a {name}
// variable (one non-empty segment) or a trailing {*name} (the rest).
type segment struct {
	lit  string
	kind segKind
}

type segKind uint8

const (
	segLit segKind = iota
	segVar
	segRest
)

// parseTemplate checks and compiles a path template.
func parseTemplate(s string) (*template, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, errors.New(`must start with "/"`)
	}
	t := &template{lit: s}
	if i := strings.IndexByte(s, '{'); i >= 0 {
		t.lit = s[:i]
	}
	names := map[string]bool{}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		if !strings.ContainsAny(p, "{}") {
			t.segs = append(t.segs, segment{lit: p})
			continue
		}
		if len(p) < 3 || p[0] != '{' || p[len(p)-1] != '}' {
			return nil, fmt.Errorf("segment %q: a variable must fill a whole segment", p)
		}
		name, kind := p[1:len(p)-1], segVar
		if strings.HasPrefix(name, "*") {
			name, kind = name[1:], segRest
			if i != len(parts)-1 {
				return nil, fmt.Errorf("segment %q: {*name} must be the last segment", p)
			}
		}
		if name == "" || strings.ContainsAny(name, "{}*") {
			return nil, fmt.Errorf("segment %q: bad variable name", p)
		}
		if names[name] {
			return nil, fmt.Errorf("segment %q: variable %q appears twice", p, name)
		}
		names[name] = true
		t.segs = append(t.segs, segment{kind: kind})
	}
	return t, nil
}

// match reports whether path fits the template.
func (t *template) match(path string) bool {
	if !strings.HasPrefix(path, "/") {
		return false
	}
	p := path[1:]
	for i, s := range t.segs {
		if s.kind == segRest {
			return true
		}
		seg, rest, more := strings.Cut(p, "/")
		switch s.kind {
		case segLit:
			if seg != s.lit {
				return false
			}
		case segVar:
			if seg == "" {
				return false
			}
		}
		if last := i == len(t.segs)-1; last == more {
			return false // the path has more segments, or fewer
		}
		p = rest
	}
	return true
}

// queryHas reports whether rawQuery holds key=value, decoded and split the way
// url.ParseQuery does it, without allocating.
func queryHas(rawQuery, key, value string) bool {
	for rawQuery != "" {
		var kv string
		kv, rawQuery, _ = strings.Cut(rawQuery, "&")
		// url.ParseQuery drops pairs with a semicolon (golang.org/issue/25192).
		if kv == "" || strings.IndexByte(kv, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if decodedEqual(k, key) && decodedEqual(v, value) {
			return true
		}
	}
	return false
}

// decodedEqual reports whether the query component raw, unescaped ("+" is a
// space, %XX a byte), equals want. A bad escape never equals anything, as
// url.ParseQuery drops such pairs.
func decodedEqual(raw, want string) bool {
	if strings.IndexByte(raw, '%') < 0 && strings.IndexByte(raw, '+') < 0 {
		return raw == want
	}
	j := 0
	for i := 0; i < len(raw); {
		c := raw[i]
		switch c {
		case '+':
			c = ' '
			i++
		case '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return false
			}
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 3
		default:
			i++
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
