package router

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/textproto"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
)

// Rule is the compiled form's input: one per route, in config order.
type Rule struct {
	Match config.Match
}

// Router finds the winning rule for a request. It is immutable after New and
// safe for concurrent use.
type Router struct {
	exact map[string]*table // by lower-case host
	wild  map[string]*table // by wildcard suffix, ".example.com"
	any   *table            // rules without hosts
	rules []*route          // by rule index, for Params

	// all holds every rule in config order, for Explain only.
	all []*route
}

// Path ranks: an exact path ranks rankExact, a prefix of n bytes 2n+1 and a
// regex or template whose literal prefix has n bytes 2n, so that a regex or
// template beats a prefix shorter than its literal and loses to one of equal
// or greater length.
const rankExact = math.MaxInt

func rankPrefix(n int) int  { return 2*n + 1 }
func rankPattern(n int) int { return 2 * n }

// maxStackHost bounds the hosts lower-cased on the stack; DNS names are at
// most 253 bytes, so longer ones only come from broken or hostile clients.
const maxStackHost = 256

// route is one compiled rule. It may sit in several tables (one per host).
type route struct {
	index   int
	weight  int // number of conditions, for precedence
	methods []string
	headers []pair // canonical header names
	query   []pair

	// Regex and template rules only.
	lit string // literal prefix every matching path starts with
	re  *regexp.Regexp
	tpl *config.Template

	hosts []config.Host // parsed hosts, read by Explain only
	path  config.PathMatch
}

type pair struct{ name, value string }

// table holds the rules of one host bucket, indexed by path.
type table struct {
	exact  map[string][]*route
	root   *node // prefix rules by prefix
	pat    *node // regex and template rules by literal prefix
	patMax int   // longest literal prefix in pat

	prefixes map[string][]*route // only while building
	patterns map[string][]*route // only while building
}

// node is a radix-tree node; the path from the root to a node spells a
// prefix of depth bytes.
type node struct {
	label    string   // edge from the parent
	depth    int      // length of the prefix ending here
	routes   []*route // rules with exactly this prefix, best first
	up       *node    // nearest ancestor with routes
	indices  string   // first byte of each child's label
	children []*node
}

// request bundles what Match compares, so that it travels by pointer.
type request struct {
	path     string
	method   string
	header   http.Header
	rawQuery string
}

// New compiles rules. It reports every bad rule (an invalid host, regex or
// template, or more than one path kind), joined into one error. Hosts and
// templates are parsed by config.ParseHost and config.ParseTemplate, the
// grammar Validate checks.
func New(rules []Rule) (*Router, error) {
	rt := &Router{exact: map[string]*table{}, wild: map[string]*table{}, rules: make([]*route, len(rules))}
	var errs []error
	for i, rule := range rules {
		r, err := compile(i, rule.Match)
		if err != nil {
			errs = append(errs, fmt.Errorf("compile rule %d: %w", i, err))
			continue
		}
		rt.rules[i] = r
		rt.all = append(rt.all, r)
		if len(rule.Match.Hosts) == 0 {
			if rt.any == nil {
				rt.any = &table{}
			}
			rt.any.add(r, rule.Match.Path)
			continue
		}
		seen := map[config.Host]bool{}
		for _, h := range r.hosts {
			if seen[h] {
				continue
			}
			seen[h] = true
			m, name := rt.exact, h.Name
			if h.Wildcard {
				m, name = rt.wild, "."+h.Name
			}
			t := m[name]
			if t == nil {
				t = &table{}
				m[name] = t
			}
			t.add(r, rule.Match.Path)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, t := range rt.exact {
		t.finish()
	}
	for _, t := range rt.wild {
		t.finish()
	}
	if rt.any != nil {
		rt.any.finish()
	}
	return rt, nil
}

// compile checks one rule's match and turns it into a route.
func compile(i int, m config.Match) (*route, error) {
	r := &route{index: i, path: m.Path}
	for _, s := range m.Hosts {
		h, err := config.ParseHost(s)
		if err != nil {
			return nil, err
		}
		r.hosts = append(r.hosts, h)
	}
	if len(m.Hosts) > 0 {
		r.weight++
	}
	p := m.Path
	kinds := 0
	for _, s := range []string{p.Exact, p.Prefix, p.Regex, p.Template} {
		if s != "" {
			kinds++
		}
	}
	if kinds > 1 {
		return nil, errors.New("path: set only one of exact, prefix, regex and template")
	}
	if kinds == 1 {
		r.weight++
	}
	switch {
	case p.Regex != "":
		re, err := compileRegex(p.Regex)
		if err != nil {
			return nil, fmt.Errorf("path regex %q: %w", p.Regex, err)
		}
		r.re = re
		r.lit = regexLiteral(re.String())
	case p.Template != "":
		tpl, err := config.ParseTemplate(p.Template)
		if err != nil {
			return nil, fmt.Errorf("path: %w", err)
		}
		r.tpl = tpl
		r.lit = tpl.Literal
	}
	if len(m.Methods) > 0 {
		r.weight++
		for _, s := range m.Methods {
			r.methods = append(r.methods, strings.ToUpper(s))
		}
	}
	for name, v := range m.Headers {
		r.headers = append(r.headers, pair{textproto.CanonicalMIMEHeaderKey(name), v})
	}
	for k, v := range m.Query {
		r.query = append(r.query, pair{k, v})
	}
	// Map order is random; sort so that evaluation cost is the same on
	// every run.
	sortPairs(r.headers)
	sortPairs(r.query)
	r.weight += len(r.headers) + len(r.query)
	return r, nil
}

func sortPairs(ps []pair) {
	slices.SortFunc(ps, func(a, b pair) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
}

// compileRegex compiles a path regex so that it must match the whole path.
func compileRegex(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err
	}
	// A leading ^ is redundant once the expression is anchored, and
	// dropping it lets LiteralPrefix see the literal text after it, which
	// guards the regex cheaply. It is kept when a repetition follows, where
	// dropping it would change the meaning ("^{2}" versus "{2}").
	if len(expr) > 1 && expr[0] == '^' && !strings.ContainsRune("*+?{", rune(expr[1])) {
		if re, err := regexp.Compile("^(?:" + expr[1:] + ")$"); err == nil {
			return re, nil
		}
	}
	return regexp.Compile("^(?:" + expr + ")$")
}

// regexLiteral returns the literal prefix of an anchored regex, the text
// every match starts with as far as Go's regexp parser sees it: the leading
// case-sensitive literal characters after an optional ^. It ends at the first
// character class, repetition (which takes its character along, "/ab+" has
// "/a"), alternation the parser could not factor, capture group,
// case-insensitive part or other anchor. It is both the path rank of the
// route and its key in the pattern tree, so it must be a true prefix of
// every path the regex matches; U+FFFD ends it, since the regexp engine reads
// a byte that is not UTF-8 as U+FFFD.
func regexLiteral(expr string) string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return ""
	}
	var b strings.Builder
	literalPrefix(&b, re)
	return b.String()
}

// literalPrefix appends the literal text that starts re to b and reports
// whether re is all literal, so that the caller may go on after it.
func literalPrefix(b *strings.Builder, re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !literalPrefix(b, sub) {
				return false
			}
		}
		return true
	case syntax.OpBeginText:
		return b.Len() == 0
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return false
		}
		for _, r := range re.Rune {
			if r == utf8.RuneError {
				return false
			}
			b.WriteRune(r)
		}
		return true
	}
	return false
}

// Literal returns the literal prefix a regex or template path ranks by (see
// the package documentation), and false for other paths or ones that do not
// compile.
func Literal(p config.PathMatch) (string, bool) {
	switch {
	case p.Exact != "" || p.Prefix != "":
		return "", false
	case p.Regex != "":
		re, err := compileRegex(p.Regex)
		if err != nil {
			return "", false
		}
		return regexLiteral(re.String()), true
	case p.Template != "":
		tpl, err := config.ParseTemplate(p.Template)
		if err != nil {
			return "", false
		}
		return tpl.Literal, true
	}
	return "", false
}

// Params appends to dst the path captures of rule idx for path, the decoded
// path Match chose it for: the {name} and {*name} variables of a template,
// and the named groups of a regex ((?P<name>...); a group that took no
// part in the match captures ""). Other rules capture nothing. Only
// routes that use captures call it, so Match itself never allocates for
// them.
func (rt *Router) Params(idx int, path string, dst []exchange.Param) []exchange.Param {
	if idx < 0 || idx >= len(rt.rules) || rt.rules[idx] == nil {
		return dst
	}
	r := rt.rules[idx]
	switch {
	case r.tpl != nil:
		return templateParams(r.tpl, path, dst)
	case r.re != nil:
		names := r.re.SubexpNames()
		named := false
		for _, n := range names {
			if n != "" {
				named = true
				break
			}
		}
		if !named {
			return dst
		}
		m := r.re.FindStringSubmatchIndex(path)
		if m == nil {
			return dst
		}
		for i, n := range names {
			if n == "" || i == 0 {
				continue
			}
			v := ""
			if m[2*i] >= 0 {
				v = path[m[2*i]:m[2*i+1]]
			}
			dst = append(dst, exchange.Param{Name: n, Value: v})
		}
	}
	return dst
}

// add files r under its path in t.
func (t *table) add(r *route, p config.PathMatch) {
	switch {
	case p.Exact != "":
		if t.exact == nil {
			t.exact = map[string][]*route{}
		}
		t.exact[p.Exact] = append(t.exact[p.Exact], r)
	case p.Regex != "" || p.Template != "":
		if t.patterns == nil {
			t.patterns = map[string][]*route{}
		}
		t.patterns[r.lit] = append(t.patterns[r.lit], r)
		t.patMax = max(t.patMax, len(r.lit))
	default:
		prefix := p.Prefix
		if prefix == "" {
			prefix = "/"
		}
		if t.prefixes == nil {
			t.prefixes = map[string][]*route{}
		}
		t.prefixes[prefix] = append(t.prefixes[prefix], r)
	}
}

// better orders routes of equal path and host rank: more conditions first,
// then config order.
func better(a, b *route) int {
	if a.weight != b.weight {
		return b.weight - a.weight
	}
	return a.index - b.index
}

// finish sorts the candidate lists and builds the trees.
func (t *table) finish() {
	for _, rs := range t.exact {
		slices.SortFunc(rs, better)
	}
	t.root = tree(t.prefixes)
	t.pat = tree(t.patterns)
	t.prefixes, t.patterns = nil, nil
}

// tree builds a radix tree over the keys of m, sorting each key's routes.
func tree(m map[string][]*route) *node {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k, rs := range m {
		slices.SortFunc(rs, better)
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return build(keys, 0, "", nil, m)
}

// build makes the radix node at depth d for the sorted, distinct keys that
// all share their first d bytes. up is the nearest ancestor with routes.
func build(keys []string, d int, label string, up *node, routes map[string][]*route) *node {
	n := &node{label: label, depth: d, up: up}
	if len(keys[0]) == d {
		n.routes = routes[keys[0]]
		keys = keys[1:]
		up = n
	}
	for len(keys) > 0 {
		c := keys[0][d]
		j := 1
		for j < len(keys) && keys[j][d] == c {
			j++
		}
		group := keys[:j]
		keys = keys[j:]
		// The keys are sorted, so the first and the last share the
		// longest common prefix of the whole group.
		first, last := group[0], group[len(group)-1]
		l := d + 1
		for l < len(first) && l < len(last) && first[l] == last[l] {
			l++
		}
		n.indices += string(c)
		n.children = append(n.children, build(group, l, first[d:l], up, routes))
	}
	return n
}

// longest returns the deepest node with routes whose prefix starts path.
func (n *node) longest(path string) *node {
	var last *node
	d := 0
	for {
		if n.routes != nil {
			last = n
		}
		if d >= len(path) {
			return last
		}
		i := strings.IndexByte(n.indices, path[d])
		if i < 0 {
			return last
		}
		c := n.children[i]
		if !strings.HasPrefix(path[d:], c.label) {
			return last
		}
		d += len(c.label)
		n = c
	}
}

// search returns the best rule in t whose path rank is above min, with its
// rank, or -1 and min. Prefix and pattern candidates come out of their trees
// longest first; they are merged by rank, a prefix first on equal length.
func (t *table) search(q *request, min int) (int, int) {
	if rs, ok := t.exact[q.path]; ok {
		for _, r := range rs {
			if r.accepts(q) {
				return r.index, rankExact
			}
		}
	}
	var pn, tn *node
	if t.root != nil {
		pn = t.root.longest(q.path)
	}
	// The pattern tree is walked only once a pattern could outrank the
	// prefix candidate at hand and the rank already found.
	walked := t.pat == nil || rankPattern(t.patMax) <= min
	for {
		if !walked && (pn == nil || pn.depth < t.patMax) {
			tn, walked = t.pat.longest(q.path), true
		}
		if pn == nil && tn == nil {
			break
		}
		if pn != nil && (tn == nil || pn.depth >= tn.depth) {
			rank := rankPrefix(pn.depth)
			if rank <= min {
				break // and every pattern left ranks lower still
			}
			for _, r := range pn.routes {
				if r.accepts(q) {
					return r.index, rank
				}
			}
			pn = pn.up
			continue
		}
		rank := rankPattern(tn.depth)
		if rank <= min {
			break
		}
		// Every route in the node has this rank and the routes are
		// sorted best first, so the first that matches wins.
		for _, r := range tn.routes {
			if r.accepts(q) && r.matchPath(q.path) {
				return r.index, rank
			}
		}
		tn = tn.up
	}
	return -1, min
}

// matchPath runs a regex or template route's path matcher.
func (r *route) matchPath(path string) bool {
	if r.tpl != nil {
		return matchTemplate(r.tpl, path)
	}
	return r.re.MatchString(path)
}

// accepts checks the conditions other than host and path.
func (r *route) accepts(q *request) bool {
	if len(r.methods) > 0 && !slices.Contains(r.methods, q.method) {
		return false
	}
	for _, p := range r.headers {
		if !slices.Contains(q.header[p.name], p.value) {
			return false
		}
	}
	for _, p := range r.query {
		if !queryHas(q.rawQuery, p.name, p.value) {
			return false
		}
	}
	return true
}

// Match returns the index of the winning rule, or -1 when none matches. host
// may carry a port and any case; path is the decoded path (r.URL.Path) and
// rawQuery is r.URL.RawQuery.
func (rt *Router) Match(host, path, method string, h http.Header, rawQuery string) int {
	q := request{path: path, method: method, header: h, rawQuery: rawQuery}
	host = trimHost(host)
	if hasUpper(host) {
		if len(host) <= maxStackHost {
			var buf [maxStackHost]byte
			b := buf[:len(host)]
			for i := 0; i < len(host); i++ {
				b[i] = lower(host[i])
			}
			return find(rt, b, &q)
		}
		host = lowerASCII(host)
	}
	return find(rt, host, &q)
}

// find searches the host buckets from the best host rank to the worst; a
// later bucket must beat the path rank found so far, since it loses ties.
func find[H string | []byte](rt *Router, host H, q *request) int {
	best, rank := -1, -1
	if len(rt.exact) > 0 {
		if t := rt.exact[string(host)]; t != nil {
			best, rank = t.search(q, rank)
		}
	}
	if len(rt.wild) > 0 {
		// Longest suffix first; i > 0 leaves at least one label in front.
		for i := 1; i < len(host) && rank < rankExact; i++ {
			if host[i] != '.' {
				continue
			}
			if t := rt.wild[string(host[i:])]; t != nil {
				if idx, r := t.search(q, rank); idx >= 0 {
					best, rank = idx, r
				}
			}
		}
	}
	if rt.any != nil && rank < rankExact {
		if idx, _ := rt.any.search(q, rank); idx >= 0 {
			best = idx
		}
	}
	return best
}

// trimHost drops a port, the brackets of an IPv6 literal and one trailing
// dot. A name with several colons and no brackets is a bare IPv6 literal and
// has no port.
func trimHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// lowerASCII lowers ASCII letters only: host names are ASCII (RFC 1123;
// international names travel as punycode).
func lowerASCII(s string) string {
	if !hasUpper(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		b[i] = lower(c)
	}
	return string(b)
}
