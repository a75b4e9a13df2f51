package router

import (
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
)

// matchTemplate reports whether path fits the template t.
func matchTemplate(t *config.Template, path string) bool {
	if !strings.HasPrefix(path, "/") {
		return false
	}
	p := path[1:]
	for i, s := range t.Segments {
		if s.Kind == config.SegmentRest {
			return true
		}
		seg, rest, more := strings.Cut(p, "/")
		switch s.Kind {
		case config.SegmentLiteral:
			if seg != s.Lit {
				return false
			}
		case config.SegmentVar:
			if seg == "" {
				return false
			}
		}
		if last := i == len(t.Segments)-1; last == more {
			return false // the path has more segments, or fewer
		}
		p = rest
	}
	return true
}

// templateParams appends the variables of t in path, which fits t.
func templateParams(t *config.Template, path string, dst []exchange.Param) []exchange.Param {
	p := strings.TrimPrefix(path, "/")
	for _, s := range t.Segments {
		if s.Kind == config.SegmentRest {
			return append(dst, exchange.Param{Name: s.Name, Value: p, Rest: true})
		}
		seg, rest, _ := strings.Cut(p, "/")
		if s.Kind == config.SegmentVar {
			dst = append(dst, exchange.Param{Name: s.Name, Value: seg})
		}
		p = rest
	}
	return dst
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
