package main

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/router"
)

// warning is a semantic problem that does not stop a config from running.
type warning struct {
	pos config.Pos
	msg string
}

func (w warning) String() string { return w.pos.String() + ": warning: " + w.msg }

// lint finds semantic problems in a valid config: routes that can never
// match because an earlier route matches every request they would, regex
// and template routes that a prefix as long as their literal always
// outranks, and upstreams that nothing uses.
func lint(cfg *config.Config) []warning {
	var out []warning
	keys := make([]matchKey, len(cfg.Routes))
	for i := range cfg.Routes {
		keys[i] = keyOf(&cfg.Routes[i].Match)
	}
	for j := range cfg.Routes {
		shadowed := false
		for i := 0; i < j && !shadowed; i++ {
			if shadowed = shadows(keys[i], keys[j]); shadowed {
				p := fmt.Sprintf("routes[%d]", j)
				out = append(out, warning{cfg.Pos(p), fmt.Sprintf("%s: route %q can never match: route %q (routes[%d]) matches every request it would, and wins by config order",
					p, cfg.Routes[j].Name, cfg.Routes[i].Name, i)})
			}
		}
		if shadowed {
			continue
		}
		if i, ok := outranked(cfg, keys, j); ok {
			p := fmt.Sprintf("routes[%d]", j)
			out = append(out, warning{cfg.Pos(p), fmt.Sprintf("%s: route %q can never win: route %q (routes[%d]) matches every request it would, and its prefix %q is as long as this route's literal prefix, so it ranks higher",
				p, cfg.Routes[j].Name, cfg.Routes[i].Name, i, strings.TrimPrefix(keys[i].path, "prefix "))})
		}
	}
	used := map[string]bool{}
	for _, l := range cfg.Listeners {
		used[l.Upstream] = true
	}
	for _, r := range cfg.Routes {
		used[r.Upstream] = true
		for _, s := range r.Split {
			used[s.Upstream] = true
		}
		if r.Mirror != nil {
			used[r.Mirror.Upstream] = true
		}
		if r.Aggregate != nil {
			for _, b := range r.Aggregate.Backends {
				used[b.Upstream] = true
			}
		}
	}
	// A failover of a used upstream is used, transitively.
	for changed := true; changed; {
		changed = false
		for name, u := range cfg.Upstreams {
			if used[name] && u.Failover != "" && !used[u.Failover] {
				used[u.Failover], changed = true, true
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Upstreams)) {
		if !used[name] {
			p := "upstreams." + name
			out = append(out, warning{cfg.Pos(p), fmt.Sprintf("%s: upstream %q is not used by any route, listener or failover", p, name)})
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].pos.Line != out[b].pos.Line {
			return out[a].pos.Line < out[b].pos.Line
		}
		return out[a].pos.Col < out[b].pos.Col
	})
	return out
}

// matchKey is a route's match in canonical form.
type matchKey struct {
	path    string // kind + value; no path is prefix "/"
	hosts   string
	headers string
	query   string
	methods []string // sorted upper case; empty = any
}

func keyOf(m *config.Match) matchKey {
	k := matchKey{}
	switch p := m.Path; {
	case p.Exact != "":
		k.path = "exact " + p.Exact
	case p.Regex != "":
		k.path = "regex " + p.Regex
	case p.Template != "":
		k.path = "template " + p.Template
	case p.Prefix != "":
		k.path = "prefix " + p.Prefix
	default:
		k.path = "prefix /"
	}
	hosts := make([]string, len(m.Hosts))
	for i, h := range m.Hosts {
		hosts[i] = strings.TrimSuffix(strings.ToLower(h), ".")
	}
	sort.Strings(hosts)
	k.hosts = strings.Join(slices.Compact(hosts), ",")
	hdr := make([]string, 0, len(m.Headers))
	for n, v := range m.Headers {
		hdr = append(hdr, http.CanonicalHeaderKey(n)+"="+v)
	}
	sort.Strings(hdr)
	k.headers = strings.Join(hdr, "\x00")
	q := make([]string, 0, len(m.Query))
	for n, v := range m.Query {
		q = append(q, n+"="+v)
	}
	sort.Strings(q)
	k.query = strings.Join(q, "\x00")
	for _, meth := range m.Methods {
		k.methods = append(k.methods, strings.ToUpper(meth))
	}
	sort.Strings(k.methods)
	return k
}

// shadows reports whether the earlier route a wins every request that the
// later route b matches. Under the router's precedence (path rank, host
// rank, number of conditions, then config order) that holds when both have
// the same path, hosts, headers and query, and either neither lists
// methods or a lists every method b does.
func shadows(a, b matchKey) bool {
	if a.path != b.path || a.hosts != b.hosts || a.headers != b.headers || a.query != b.query {
		return false
	}
	if len(a.methods) == 0 || len(b.methods) == 0 {
		return len(a.methods) == 0 && len(b.methods) == 0
	}
	for _, m := range b.methods {
		if _, ok := slices.BinarySearch(a.methods, m); !ok {
			return false
		}
	}
	return true
}

// outranked finds a route that wins every request the regex or template
// route j matches, in any config order: a prefix route whose prefix equals
// j's literal prefix (it matches every path j does and ranks higher on
// path), whose hosts are none or the same as j's, whose methods are none or
// include j's, and whose headers and query are a subset of j's.
func outranked(cfg *config.Config, keys []matchKey, j int) (int, bool) {
	lit, ok := router.Literal(cfg.Routes[j].Match.Path)
	if !ok {
		return 0, false
	}
	b := keys[j]
	for i := range cfg.Routes {
		a := keys[i]
		if i == j || a.path != "prefix "+lit || (a.hosts != "" && a.hosts != b.hosts) ||
			!subset(a.headers, b.headers) || !subset(a.query, b.query) {
			continue
		}
		if len(a.methods) > 0 {
			if len(b.methods) == 0 {
				continue
			}
			all := true
			for _, m := range b.methods {
				if _, ok := slices.BinarySearch(a.methods, m); !ok {
					all = false
				}
			}
			if !all {
				continue
			}
		}
		return i, true
	}
	return 0, false
}

// subset reports whether every "\x00"-joined item of a is in b.
func subset(a, b string) bool {
	if a == "" {
		return true
	}
	items := strings.Split(b, "\x00")
	for _, x := range strings.Split(a, "\x00") {
		if !slices.Contains(items, x) {
			return false
		}
	}
	return true
}
