package router

import (
	"net/http"
	"net/url"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"

	"github.com/rampart-gw/rampart/internal/config"
)

// refMatch is the naive reference: a linear scan over rules that computes
// each matching rule's precedence key and keeps the largest. It shares no
// code with the Router on purpose.
func refMatch(rules []Rule, host, path, method string, h http.Header, rawQuery string) int {
	host = refHost(host)
	query, _ := url.ParseQuery(rawQuery)
	best := -1
	var bestKey [4]int
	for i, rule := range rules {
		m := rule.Match
		pathRank, ok := refPath(m.Path, path)
		if !ok {
			continue
		}
		hostClass, hostLen, ok := refHosts(m.Hosts, host)
		if !ok {
			continue
		}
		if len(m.Methods) > 0 {
			found := false
			for _, s := range m.Methods {
				found = found || strings.ToUpper(s) == method
			}
			if !found {
				continue
			}
		}
		ok = true
		for k, v := range m.Headers {
			ok = ok && refContains(h.Values(k), v)
		}
		for k, v := range m.Query {
			ok = ok && refContains(query[k], v)
		}
		if !ok {
			continue
		}
		weight := len(m.Headers) + len(m.Query)
		if len(m.Hosts) > 0 {
			weight++
		}
		if m.Path != (config.PathMatch{}) {
			weight++
		}
		if len(m.Methods) > 0 {
			weight++
		}
		key := [4]int{pathRank, hostClass*1000 + hostLen, weight, -i}
		if best < 0 || refLess(bestKey, key) {
			best, bestKey = i, key
		}
	}
	return best
}

func refLess(a, b [4]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func refContains(vs []string, v string) bool {
	for _, s := range vs {
		if s == v {
			return true
		}
	}
	return false
}

// refHost normalizes a host: ASCII lower case, no port, no IPv6 brackets, no
// trailing dot.
func refHost(h string) string {
	h = strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 32
		}
		return r
	}, h)
	switch {
	case strings.HasPrefix(h, "[") && strings.Contains(h, "]"):
		h = h[1:strings.Index(h, "]")]
	case strings.Count(h, ":") == 1:
		h = h[:strings.Index(h, ":")]
	}
	if strings.HasSuffix(h, ".") {
		h = h[:len(h)-1]
	}
	return h
}

// refHosts returns the host class (2 exact, 1 wildcard, 0 none given) and the
// wildcard suffix length of the best entry matching host.
func refHosts(hosts []string, host string) (class, n int, ok bool) {
	if len(hosts) == 0 {
		return 0, 0, true
	}
	for _, e := range hosts {
		e = refHost(e)
		if suffix, wild := strings.CutPrefix(e, "*"); wild {
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) && class < 2 && len(suffix) > n {
				class, n, ok = 1, len(suffix), true
			}
		} else if e == host {
			return 2, 0, true
		}
	}
	return class, n, ok
}

// refPath returns the path rank: 1<<40 for exact, 2n+1 for a prefix of n
// bytes, and 2n for a regex or template whose literal prefix has n bytes, so
// that a prefix wins a tie of lengths.
func refPath(p config.PathMatch, path string) (int, bool) {
	switch {
	case p.Exact != "":
		return 1 << 40, path == p.Exact
	case p.Regex != "":
		return 2 * len(refRegexLiteral(p.Regex)), regexp.MustCompile("^(?:" + p.Regex + ")$").MatchString(path)
	case p.Template != "":
		lit, _, _ := strings.Cut(p.Template, "{")
		return 2 * len(lit), refTemplateMatch(p.Template, path)
	}
	prefix := p.Prefix
	if prefix == "" {
		prefix = "/"
	}
	return 2*len(prefix) + 1, strings.HasPrefix(path, prefix)
}

// refRegexLiteral is the documented literal prefix: the case-sensitive
// literal characters at the start of the parsed expression, after any
// leading ^, up to the first other node. It flattens the parse tree into a
// list of leaves first, unlike the Router's recursive walk.
func refRegexLiteral(expr string) string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		panic(err)
	}
	var leaves []*syntax.Regexp
	var flatten func(*syntax.Regexp)
	flatten = func(re *syntax.Regexp) {
		if re.Op == syntax.OpConcat {
			for _, s := range re.Sub {
				flatten(s)
			}
			return
		}
		leaves = append(leaves, re)
	}
	flatten(re)
	for len(leaves) > 0 && leaves[0].Op == syntax.OpBeginText {
		leaves = leaves[1:]
	}
	var lit []rune
	for _, l := range leaves {
		if l.Op != syntax.OpLiteral || l.Flags&syntax.FoldCase != 0 {
			break
		}
		i := 0
		for i < len(l.Rune) && l.Rune[i] != utf8.RuneError {
			i++
		}
		lit = append(lit, l.Rune[:i]...)
		if i < len(l.Rune) {
			break
		}
	}
	return string(lit)
}

// refTemplateMatch compares path with a template segment by segment. A
// regexp-based reference cannot handle literal bytes that are not UTF-8.
func refTemplateMatch(t, path string) bool {
	ts := strings.Split(t, "/")
	ps := strings.Split(path, "/")
	for i, seg := range ts {
		switch {
		case strings.HasPrefix(seg, "{*"):
			return len(ps) > i
		case i >= len(ps):
			return false
		case strings.HasPrefix(seg, "{"):
			if ps[i] == "" {
				return false
			}
		case seg != ps[i]:
			return false
		}
	}
	return len(ps) == len(ts)
}
