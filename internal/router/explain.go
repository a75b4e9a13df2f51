package router

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Verdict is how one rule fared in Explain.
type Verdict struct {
	// Index is the rule's position in config order.
	Index int `json:"index"`
	// Matched is set when every condition of the rule holds.
	Matched bool `json:"matched"`
	// PathKind is exact, prefix, regex or template; Path its pattern
	// (prefix "/" for a rule without a path); Literal, for a regex or
	// template, the literal prefix it ranks by.
	PathKind string `json:"path_kind"`
	Path     string `json:"path"`
	Literal  string `json:"literal,omitempty"`
	// PathRank and HostRank describe the rule's rank for this request
	// ("exact", "prefix, 7 bytes", "regex, literal 7 bytes"; "exact",
	// "wildcard *.example.com", "any"). HostRank is empty when no host
	// of the rule matches.
	PathRank string `json:"path_rank"`
	HostRank string `json:"host_rank,omitempty"`
	// Conditions counts the rule's conditions, the third precedence key.
	Conditions int `json:"conditions"`
	// Reason says why a rule did not match, or why a matching rule lost
	// to the winner; it is empty for the winner.
	Reason string `json:"reason,omitempty"`

	passed   int // nearness: host and path count 2, methods, headers, query 1
	nearRank int // pathRank when the path matches, else -1
	pathRank int
	hostCls  int // 2 exact, 1 wildcard, 0 none given
	hostLen  int // wildcard suffix length
}

// Explanation is what Explain found.
type Explanation struct {
	// Winner is the index of the rule Match picks, or -1.
	Winner int
	// Verdicts holds one entry per rule: the winner first, then the other
	// matching rules best first, then the rules that did not match, the
	// nearest first (the most conditions holding, the host and the path
	// counting double; then the path rank, if the path matches; then
	// config order).
	Verdicts []Verdict
}

// Explain answers what Match answers, and why: it evaluates every rule on
// its own, in a linear scan that allocates freely and is meant for the
// admin API, never for the request path. Its winner is Match's (a test
// compares the two on random configs and requests).
func (rt *Router) Explain(host, path, method string, h http.Header, rawQuery string) Explanation {
	q := request{path: path, method: method, header: h, rawQuery: rawQuery}
	host = lowerASCII(trimHost(host))
	vs := make([]Verdict, 0, len(rt.all))
	for _, r := range rt.all {
		vs = append(vs, r.verdict(host, &q))
	}
	slices.SortStableFunc(vs, func(a, b Verdict) int {
		switch {
		case a.Matched != b.Matched:
			if a.Matched {
				return -1
			}
			return 1
		case a.Matched:
			return -compareKey(a, b)
		case a.passed != b.passed:
			return b.passed - a.passed
		case a.nearRank != b.nearRank:
			return cmpInt(b.nearRank, a.nearRank)
		}
		return a.Index - b.Index
	})
	e := Explanation{Winner: -1, Verdicts: vs}
	if len(vs) > 0 && vs[0].Matched {
		w := &vs[0]
		e.Winner = w.Index
		for i := 1; i < len(vs) && vs[i].Matched; i++ {
			vs[i].Reason = lostTo(&vs[i], w)
		}
	}
	return e
}

// compareKey orders two matching verdicts by precedence: path rank, host
// rank, conditions, then config order (earlier is greater).
func compareKey(a, b Verdict) int {
	switch {
	case a.pathRank != b.pathRank:
		return cmpInt(a.pathRank, b.pathRank)
	case a.hostCls != b.hostCls:
		return cmpInt(a.hostCls, b.hostCls)
	case a.hostLen != b.hostLen:
		return cmpInt(a.hostLen, b.hostLen)
	case a.Conditions != b.Conditions:
		return cmpInt(a.Conditions, b.Conditions)
	}
	return cmpInt(b.Index, a.Index)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// lostTo says why the matching verdict v lost to the winner w.
func lostTo(v, w *Verdict) string {
	switch {
	case v.pathRank != w.pathRank:
		return fmt.Sprintf("lower path rank: %s < %s of route %d", v.PathRank, w.PathRank, w.Index)
	case v.hostCls != w.hostCls || v.hostLen != w.hostLen:
		return fmt.Sprintf("equal path rank; lower host rank: %s < %s of route %d", v.HostRank, w.HostRank, w.Index)
	case v.Conditions != w.Conditions:
		return fmt.Sprintf("equal path and host rank; fewer conditions: %d < %d of route %d", v.Conditions, w.Conditions, w.Index)
	}
	return fmt.Sprintf("equal rank and conditions; later in config order than route %d", w.Index)
}

// verdict evaluates r alone against the request; host is trimmed and
// lower-cased.
func (r *route) verdict(host string, q *request) Verdict {
	v := Verdict{Index: r.index, Conditions: r.weight}
	p := r.path
	var pathOK bool
	switch {
	case p.Exact != "":
		v.PathKind, v.Path, v.pathRank, v.PathRank = "exact", p.Exact, rankExact, "exact"
		pathOK = q.path == p.Exact
	case p.Regex != "" || p.Template != "":
		v.PathKind, v.Path = "regex", p.Regex
		if p.Template != "" {
			v.PathKind, v.Path = "template", p.Template
		}
		v.Literal, v.pathRank = r.lit, rankPattern(len(r.lit))
		v.PathRank = fmt.Sprintf("%s, literal %d bytes", v.PathKind, len(r.lit))
		pathOK = strings.HasPrefix(q.path, r.lit) && r.matchPath(q.path)
	default:
		prefix := p.Prefix
		if prefix == "" {
			prefix = "/"
		}
		v.PathKind, v.Path, v.pathRank = "prefix", prefix, rankPrefix(len(prefix))
		v.PathRank = fmt.Sprintf("prefix, %d bytes", len(prefix))
		pathOK = strings.HasPrefix(q.path, prefix)
	}

	var reasons []string
	hostOK := true
	if len(r.hosts) == 0 {
		v.HostRank = "any"
	} else {
		hostOK = false
		for _, hh := range r.hosts {
			switch {
			case !hh.Wildcard && hh.Name == host:
				hostOK, v.hostCls, v.hostLen = true, 2, 0
			case hh.Wildcard && v.hostCls < 2 && len(host) > len(hh.Name)+1 &&
				strings.HasSuffix(host, hh.Name) && host[len(host)-len(hh.Name)-1] == '.' && len(hh.Name)+1 > v.hostLen:
				hostOK, v.hostCls, v.hostLen = true, 1, len(hh.Name)+1
			}
		}
		switch {
		case !hostOK:
			reasons = append(reasons, fmt.Sprintf("host %q matches none of %s", host, hostList(r)))
		case v.hostCls == 2:
			v.HostRank = "exact"
		default:
			v.HostRank = "wildcard *" + host[len(host)-v.hostLen:]
		}
	}
	if hostOK {
		v.passed += 2
	}
	v.nearRank = -1
	if pathOK {
		v.passed += 2
		v.nearRank = v.pathRank
	} else {
		reasons = append(reasons, fmt.Sprintf("path %q does not match %s %q", q.path, v.PathKind, v.Path))
	}
	if len(r.methods) == 0 || slices.Contains(r.methods, q.method) {
		v.passed++
	} else {
		reasons = append(reasons, fmt.Sprintf("method %q is not one of %q", q.method, r.methods))
	}
	ok := true
	for _, p := range r.headers {
		if !slices.Contains(q.header[p.name], p.value) {
			ok = false
			reasons = append(reasons, fmt.Sprintf("header %s: %q is not among its values", p.name, p.value))
		}
	}
	if ok {
		v.passed++
	}
	ok = true
	for _, p := range r.query {
		if !queryHas(q.rawQuery, p.name, p.value) {
			ok = false
			reasons = append(reasons, fmt.Sprintf("query %s=%s is not in the query", p.name, p.value))
		}
	}
	if ok {
		v.passed++
	}
	v.Matched = len(reasons) == 0
	if !v.Matched {
		v.Reason = strings.Join(reasons, "; ")
	}
	return v
}

func hostList(r *route) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, h := range r.hosts {
		if i > 0 {
			b.WriteString(", ")
		}
		if h.Wildcard {
			b.WriteString("*.")
		}
		b.WriteString(h.Name)
	}
	b.WriteByte(']')
	return b.String()
}
