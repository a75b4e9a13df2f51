package config

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/capture"
)

// MaxHealthPayload bounds health_check.active.send and expect, in bytes.
const MaxHealthPayload = 4096

// Choices accepted for enumerated keys.
var (
	listenerProtocols = []string{"http", "tcp"}
	tlsVersions       = []string{"1.2", "1.3"}
	clientAuthModes   = []string{"none", "request", "require"}
	discoveryTypes    = []string{"static", "dns", "srv", "etcd"}
	balancers         = []string{"round_robin", "random", "least_request", "ring_hash", "maglev", "ewma"}
	upstreamProtocols = []string{"http1", "h2c", "h2"}
	redisFailureModes = []string{"local", "allow", "deny"}
	logFormats        = []string{"json"}
	tracingProtocols  = []string{"grpc", "http"}
	bufferingModes    = []string{"auto", "on", "off"}
	proxyProtocols    = []string{"v1", "v2"}

	// PolicyTypes are the policy types a config may name.
	PolicyTypes = []string{"jwt", "api_key", "client_cert", "rate_limit", "ip_filter", "waf", "sanitize", "concurrency_limit", "require_role", "cors", "headers", "grpc_web"}
)

// Vocabulary returns the choices of every enumerated key, by the key's
// path written as in Reserved ("listeners[].protocol", "upstreams.*.balancer").
// The lists are the ones Validate checks against (copied, so that callers
// cannot change them); package schema turns them into the JSON Schema's
// enums. retry.on, which also takes status codes, is RetryConditions.
func Vocabulary() map[string][]string {
	m := map[string][]string{
		"listeners[].protocol":             listenerProtocols,
		"listeners[].tls.min_version":      tlsVersions,
		"listeners[].tls.client_auth.mode": clientAuthModes,
		"upstreams.*.discovery.type":       discoveryTypes,
		"upstreams.*.balancer":             balancers,
		"upstreams.*.protocol":             upstreamProtocols,
		"routes[].request_buffering":       bufferingModes,
		"policies.*.type":                  PolicyTypes,
		"cluster.redis.on_failure":         redisFailureModes,
		"observability.access_log.format":  logFormats,
	}
	for k, v := range m {
		m[k] = slices.Clone(v)
	}
	return m
}

// Validate checks the whole config and reports every problem at once, each
// positioned where it stands in the document, as Errors sorted by
// position; it returns nil when the config is valid. It checks values and
// references between them (routes to upstreams and policies, listeners to
// upstreams); the keys specific to each policy type are checked by the
// policy packages. Keys that are not built yet (Reserved) are refused.
// Validate does not modify c.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.listeners()
	v.admin()
	v.process()
	v.upstreams()
	v.trips()
	v.routes()
	v.policies()
	v.consumers()
	v.cluster()
	v.observability()
	v.reserved()
	return v.errs.err()
}

type validator struct {
	c    *Config
	errs Errors
	// around holds every parent of a path that failed to decode.
	around map[string]bool
	// hints memoizes "did you mean" suggestions by name: a document full
	// of aliases can repeat one unknown name very many times.
	hints map[string]string
}

// errorf reports a problem at path, unless Parse already reported a
// problem with that value, one inside it or one around it.
func (v *validator) errorf(path, format string, args ...any) {
	if v.quiet(path) {
		return
	}
	v.errs = append(v.errs, v.c.Errorf(path, format, args...))
}

// quiet reports whether path is, is inside or is around a path that
// failed to decode.
func (v *validator) quiet(path string) bool {
	if len(v.c.bad) == 0 {
		return false
	}
	if v.around == nil {
		v.around = map[string]bool{}
		for bad := range v.c.bad {
			for p := bad; p != ""; {
				p = parentPath(p)
				v.around[p] = true
			}
		}
	}
	if v.around[path] {
		return true
	}
	for p := path; ; p = parentPath(p) {
		if v.c.bad[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

// hint returns a memoized suggestion for name among the keys of m.
func hint[V any](v *validator, kind, name string, m map[string]V) string {
	if v.hints == nil {
		v.hints = map[string]string{}
	}
	key := kind + "\x00" + name
	h, ok := v.hints[key]
	if !ok {
		h = suggest(name, slices.Sorted(maps.Keys(m)))
		v.hints[key] = h
	}
	return h
}

// oneOf reports s at path unless it is one of choices.
func (v *validator) oneOf(path, what, s string, choices []string) bool {
	if slices.Contains(choices, s) {
		return true
	}
	v.errorf(path, "invalid %s %q (want %s)%s", what, s, orList(choices), suggest(s, choices))
	return false
}

func orList(choices []string) string {
	if len(choices) == 1 {
		return choices[0]
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

func andList(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// hostPort checks a host:port address. allowEmptyHost accepts ":8080";
// allowZero accepts port 0 (any free port, for listeners).
func hostPort(addr string, allowEmptyHost, allowZero bool) error {
	if addr == "" {
		return fmt.Errorf("address is required (host:port)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q (want host:port)", addr)
	}
	if host == "" && !allowEmptyHost {
		return fmt.Errorf("invalid address %q: missing host", addr)
	}
	if strings.Contains(host, "/") || strings.ContainsAny(host, " \t") {
		return fmt.Errorf("invalid address %q: invalid host %q", addr, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || strings.HasPrefix(port, "+") || strings.HasPrefix(port, "-") {
		return fmt.Errorf("invalid address %q: port %q is not a number", addr, port)
	}
	if n > 65535 || (n == 0 && !allowZero) {
		if allowZero {
			return fmt.Errorf("invalid address %q: port %d out of range 0-65535", addr, n)
		}
		return fmt.Errorf("invalid address %q: port %d out of range 1-65535", addr, n)
	}
	return nil
}

func (v *validator) listeners() {
	c := v.c
	if len(c.Listeners) == 0 {
		v.errorf("listeners", "at least one listener is required")
	}
	names := map[string]string{}
	addrs := map[string]string{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := idx("listeners", i)
		switch first, dup := names[l.Name]; {
		case l.Name == "":
			v.errorf(p+".name", "name must not be empty")
		case dup:
			v.errorf(p+".name", "duplicate listener name %q (first used by %s)", l.Name, first)
		default:
			names[l.Name] = p
		}
		if err := hostPort(l.Address, true, true); err != nil {
			v.errorf(p+".address", "%v", err)
		} else if first, dup := addrs[l.Address]; dup && !strings.HasSuffix(l.Address, ":0") {
			v.errorf(p+".address", "address %q already used by %s", l.Address, first)
		} else {
			addrs[l.Address] = p
		}
		if v.oneOf(p+".protocol", "protocol", l.Protocol, listenerProtocols) {
			switch {
			case l.Protocol == "tcp":
				v.tcpListener(p, l)
			case l.Upstream != "":
				v.errorf(p+".upstream", "upstream is only for protocol tcp; http listeners use routes")
			}
			if l.HTTP3 && l.Protocol == "tcp" {
				v.errorf(p+".http3", "http3 is for http listeners")
			} else if l.HTTP3 && l.TLS == nil {
				v.errorf(p+".http3", "http3 needs tls (QUIC is always encrypted)")
			}
			if l.Protocol == "tcp" && l.Explain {
				v.errorf(p+".explain", "explain is for http listeners; a tcp listener sees no HTTP request to explain")
			}
			if l.Protocol != "tcp" && l.TLS != nil && l.TLS.SNIRoutes != nil {
				v.errorf(p+".tls.sni_routes", "sni_routes is for tcp listeners; an http listener routes by host with routes[].match.hosts")
			}
		}
		if l.Protocol != "tcp" {
			for j, tp := range l.TrustedProxies {
				if _, err := ParsePrefix(tp); err != nil {
					v.errorf(idx(p+".trusted_proxies", j), "%v", err)
				}
			}
		}
		lp := p + ".limits"
		if l.Limits.MaxHeaderBytes < 0 {
			v.errorf(lp+".max_header_bytes", "must not be negative")
		}
		if l.Limits.MaxBodyBytes < -1 {
			v.errorf(lp+".max_body_bytes", "must not be negative (-1 means unlimited)")
		}
		if l.Limits.ReadHeaderTimeout < 0 {
			v.errorf(lp+".read_header_timeout", "must not be negative")
		}
		if l.Limits.IdleTimeout < 0 {
			v.errorf(lp+".idle_timeout", "must not be negative")
		}
		if l.Limits.MaxConnections < 0 {
			v.errorf(lp+".max_connections", "must not be negative")
		}
		for _, f := range []struct {
			key string
			n   int
		}{
			{"max_connections_per_ip", l.Limits.MaxConnectionsPerIP},
			{"max_headers", l.Limits.MaxHeaders},
			{"max_uri_bytes", l.Limits.MaxURIBytes},
			{"max_requests_per_connection", l.Limits.MaxRequestsPerConnection},
			{"max_concurrent_streams", l.Limits.MaxConcurrentStreams},
		} {
			if f.n < 0 {
				v.errorf(lp+"."+f.key, "must not be negative")
			}
		}
		switch {
		case l.Limits.BodyBufferBytes < 0:
			v.errorf(lp+".body_buffer_bytes", "must not be negative")
		case l.Limits.BufferMemoryBytes < 0:
			v.errorf(lp+".buffer_memory_bytes", "must not be negative")
		case l.Limits.BodyBufferBytes > l.Limits.BufferMemoryBytes:
			// One request could never hold what body_buffer_bytes
			// promises: the listener's whole budget is smaller.
			v.errorf(lp+".body_buffer_bytes", "%d exceeds buffer_memory_bytes (%d)", l.Limits.BodyBufferBytes, l.Limits.BufferMemoryBytes)
		}
		if t := l.TLS; t != nil {
			tp := p + ".tls"
			if len(t.Certificates) == 0 {
				v.errorf(tp+".certificates", "at least one certificate is required")
			}
			for j, cert := range t.Certificates {
				cp := idx(tp+".certificates", j)
				if cert.CertFile == "" {
					v.errorf(cp+".cert_file", "cert_file is required")
				}
				if cert.KeyFile == "" {
					v.errorf(cp+".key_file", "key_file is required")
				}
			}
			if t.MinVersion != "" {
				v.oneOf(tp+".min_version", "TLS version", t.MinVersion, tlsVersions)
			}
			mode := t.ClientAuth.Mode
			if mode == "" {
				mode = "none"
			}
			if v.oneOf(tp+".client_auth.mode", "client_auth mode", mode, clientAuthModes) && mode != "none" && t.ClientAuth.CAFile == "" {
				v.errorf(tp+".client_auth.ca_file", "client_auth mode %q needs a ca_file", mode)
			}
		}
	}
}

// httpLimits are the listener limits that only HTTP listeners apply: a
// tcp listener refuses them rather than ignore them.
var httpLimits = []string{"max_header_bytes", "max_body_bytes", "max_headers", "max_uri_bytes",
	"max_requests_per_connection", "max_concurrent_streams", "body_buffer_bytes", "buffer_memory_bytes", "buffer_dir"}

// tcpListener checks what is particular to a protocol tcp listener (the
// L4 proxy, docs/tcp.md): its upstream, and no HTTP-only limit.
func (v *validator) tcpListener(p string, l *Listener) {
	var routes map[string]string
	if l.TLS != nil {
		routes = l.TLS.SNIRoutes
	}
	switch {
	case l.Upstream != "":
		v.upstreamRef(p+".upstream", l.Upstream)
	case len(routes) == 0:
		v.errorf(p+".upstream", "a tcp listener needs an upstream (or tls.sni_routes)")
	}
	seen := map[Host]string{}
	for _, host := range slices.Sorted(maps.Keys(routes)) {
		rp := p + ".tls.sni_routes." + host
		h, err := ParseHost(host)
		if err != nil {
			v.errorf(rp, "%v", err)
		} else if first, dup := seen[h]; dup {
			v.errorf(rp, "host %q is also routed as %q", host, first)
		} else {
			seen[h] = host
		}
		v.upstreamRef(rp, routes[host])
	}
	for j, tp := range l.TrustedProxies {
		if _, err := ParsePrefix(tp); err != nil {
			v.errorf(idx(p+".trusted_proxies", j), "%v", err)
		}
	}
	for _, k := range httpLimits {
		if v.written(p + ".limits." + k) {
			v.errorf(p+".limits."+k, "%s is for http listeners; a tcp listener carries bytes, not requests", k)
		}
	}
}

// written reports whether the document set the value at path (a config
// built in Go has no positions and sets nothing this way).
func (v *validator) written(path string) bool {
	_, ok := v.c.pos[path]
	return ok
}

// tcpUpstreams returns the upstreams that tcp listeners use, directly or
// through failover, each with the path of the first listener key that
// leads to it; and the set of upstreams that routes use, likewise.
func (v *validator) upstreamUsers() (tcp, http map[string]string) {
	tcp, http = map[string]string{}, map[string]string{}
	follow := func(name string, visit func(string) bool) {
		// Bounded by the number of upstreams: failover cycles are
		// reported elsewhere and must not loop here.
		for range len(v.c.Upstreams) {
			u := v.c.Upstreams[name]
			if u == nil || !visit(name) {
				return
			}
			name = u.Failover
		}
	}
	for i := range v.c.Listeners {
		l := &v.c.Listeners[i]
		if l.Protocol != "tcp" {
			continue
		}
		at := idx("listeners", i)
		for _, name := range l.tcpUpstreams() {
			follow(name, func(n string) bool {
				if _, seen := tcp[n]; seen {
					return false
				}
				tcp[n] = at
				return true
			})
		}
	}
	for i := range v.c.Routes {
		r := &v.c.Routes[i]
		at := idx("routes", i)
		names := []string{r.Upstream}
		for _, it := range r.Split {
			names = append(names, it.Upstream)
		}
		if r.Mirror != nil {
			names = append(names, r.Mirror.Upstream)
		}
		if r.Aggregate != nil {
			for _, b := range r.Aggregate.Backends {
				names = append(names, b.Upstream)
			}
		}
		for _, name := range names {
			follow(name, func(n string) bool {
				if _, seen := http[n]; seen {
					return false
				}
				http[n] = at
				return true
			})
		}
	}
	return tcp, http
}

// tcpUpstreams names every upstream a tcp listener may connect to.
func (l *Listener) tcpUpstreams() []string {
	var names []string
	if l.Upstream != "" {
		names = append(names, l.Upstream)
	}
	if l.TLS != nil {
		for _, host := range slices.Sorted(maps.Keys(l.TLS.SNIRoutes)) {
			names = append(names, l.TLS.SNIRoutes[host])
		}
	}
	return names
}

// tcpOnlyKeys are upstream keys that shape HTTP requests: an upstream only
// tcp listeners use refuses them rather than ignore them.
var tcpOnlyKeys = []struct{ key, why string }{
	{"protocol", "the L4 proxy carries bytes; it speaks no HTTP version"},
	{"keepalive", "the L4 proxy opens one upstream connection per client connection and pools none"},
	{"circuit_breaker.max_pending_requests", "the L4 proxy has no requests; circuit_breaker.max_connections bounds its connections"},
	{"circuit_breaker.max_requests", "the L4 proxy has no requests; circuit_breaker.max_connections bounds its connections"},
	{"circuit_breaker.max_retries", "the L4 proxy does not retry; it fails over to the next target on a failed connect"},
	{"circuit_breaker.trip", "the failure-tripped breaker judges HTTP answers"},
}

// tcpUpstreamKeys refuses, on upstreams that only tcp listeners use, the
// keys that would be ignored there.
func (v *validator) tcpUpstreamKeys() {
	tcp, http := v.upstreamUsers()
	for _, name := range slices.Sorted(maps.Keys(v.c.Upstreams)) {
		u := v.c.Upstreams[name]
		if u == nil || u.ProxyProtocol == "" {
			continue
		}
		p := "upstreams." + name + ".proxy_protocol"
		if v.oneOf(p, "proxy_protocol", u.ProxyProtocol, proxyProtocols) {
			if route, ok := http[name]; ok {
				v.errorf(p, "proxy_protocol is sent by tcp listeners only, and %s uses this upstream for HTTP", route)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tcp)) {
		u := v.c.Upstreams[name]
		if _, shared := http[name]; u == nil || shared {
			continue
		}
		p := "upstreams." + name
		for _, k := range tcpOnlyKeys {
			if v.written(p + "." + k.key) {
				v.errorf(p+"."+k.key, "%s has no effect on an upstream only tcp listeners use (%s): %s", k.key, tcp[name], k.why)
			}
		}
		switch {
		case u.Balancer == "ewma":
			v.errorf(p+".balancer", "balancer ewma needs HTTP latencies; the upstream is used only by tcp listeners (%s): use least_request", tcp[name])
		case u.HashKey != "" && u.HashKey != "ip":
			v.errorf(p+".hash_key", "hash_key %q needs HTTP requests; the upstream is used only by tcp listeners (%s): use ip", u.HashKey, tcp[name])
		}
	}
}

func (v *validator) admin() {
	a := v.c.Admin.Address
	if a == "off" {
		return
	}
	if err := hostPort(a, true, true); err != nil {
		v.errorf("admin.address", "%v; or \"off\" to disable the admin API", err)
	}
}

// process checks the process-level keys: drain, pid file, upgrade.
func (v *validator) process() {
	if _, written := v.c.pos["upgrade.timeout"]; written && v.c.Upgrade.Timeout == 0 {
		v.errorf("upgrade.timeout", "must be positive (default %s)", DefaultUpgradeTimeout.D())
	}
	if v.c.PIDFile != "" && strings.HasSuffix(v.c.PIDFile, "/") {
		v.errorf("pid_file", "%q names a directory; want a file path", v.c.PIDFile)
	}
}

var upstreamName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// upstreamRef checks that name refers to a defined upstream.
func (v *validator) upstreamRef(path, name string) {
	if name == "" {
		v.errorf(path, "upstream name is required")
		return
	}
	if _, ok := v.c.Upstreams[name]; !ok {
		v.errorf(path, "unknown upstream %q%s", name, hint(v, "upstream", name, v.c.Upstreams))
	}
}

// discovery checks upstream p's discovery settings: each key is used by
// the types that document it and refused with the others, so that none is
// accepted and ignored.
func (v *validator) discovery(p string, u *Upstream, d *Discovery) {
	dp := p + ".discovery"
	if !v.oneOf(dp+".type", "discovery type", d.Type, discoveryTypes) {
		return
	}
	// only refuses a key that type t does not use.
	only := func(key string, set bool, types ...string) {
		if set && !slices.Contains(types, d.Type) {
			v.errorf(dp+"."+key, "%s is not used by discovery type %s (only by %s)", key, d.Type, andList(types))
		}
	}
	only("name", d.Name != "", "dns", "srv", "etcd")
	only("port", d.Port != 0, "dns")
	only("refresh", !d.Refresh.IsZero(), "dns", "srv")
	only("resolver", d.Resolver != "", "dns", "srv")
	only("timeout", d.Timeout != 0, "dns", "srv", "etcd")
	only("endpoints", d.Endpoints != nil, "etcd")
	only("prefix", d.Prefix != "", "etcd")
	if d.Type == "static" {
		return
	}
	if len(u.Targets) > 0 {
		v.errorf(p+".targets", "targets and discovery type %s exclude each other (discovery finds the targets)", d.Type)
	}
	if d.Name == "" {
		v.errorf(dp+".name", "discovery type %s needs a name", d.Type)
	} else if d.Type != "etcd" && !dnsName.MatchString(strings.TrimSuffix(d.Name, ".")) {
		v.errorf(dp+".name", "invalid DNS name %q", d.Name)
	} else if d.Type == "etcd" && (strings.Contains(d.Name, "/") || strings.TrimSpace(d.Name) != d.Name) {
		v.errorf(dp+".name", "invalid service name %q (no '/' or spaces)", d.Name)
	}
	if d.Type == "dns" && (d.Port < 1 || d.Port > 65535) {
		v.errorf(dp+".port", "discovery type dns needs a port in 1-65535")
	}
	if d.Port < 0 || d.Port > 65535 {
		v.errorf(dp+".port", "port %d out of range 1-65535", d.Port)
	}
	if !d.Refresh.TTL && d.Refresh.Every < Duration(100*time.Millisecond) && (d.Type == "dns" || d.Type == "srv") {
		v.errorf(dp+".refresh", "refresh %s is too short (at least 100ms, or ttl)", d.Refresh)
	}
	if d.Timeout < 0 {
		v.errorf(dp+".timeout", "must not be negative")
	}
	if d.Resolver != "" {
		if err := hostPort(d.Resolver, false, false); err != nil {
			v.errorf(dp+".resolver", "%v", err)
		}
	}
	if d.Type == "etcd" {
		if len(d.Endpoints) == 0 {
			v.errorf(dp+".endpoints", "discovery type etcd needs endpoints (HOST:PORT of the etcd cluster)")
		}
		for i, e := range d.Endpoints {
			if err := hostPort(e, false, false); err != nil {
				v.errorf(idx(dp+".endpoints", i), "%v", err)
			}
		}
		if !strings.HasPrefix(d.Prefix, "/") {
			v.errorf(dp+".prefix", "prefix %q must start with /", d.Prefix)
		}
	}
}

// dnsName is a DNS name: dot-separated labels of letters, digits, '-' and
// '_' (SRV names start with _service._proto).
var dnsName = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*$`)

var hashKey = regexp.MustCompile(`^(ip|path|(header|cookie|query):.+|param:[A-Za-z0-9_]+)$`)

func (v *validator) upstreams() {
	for _, name := range slices.Sorted(maps.Keys(v.c.Upstreams)) {
		u := v.c.Upstreams[name]
		p := "upstreams." + name
		if !upstreamName.MatchString(name) {
			v.errorf(p, "invalid upstream name %q (use letters, digits, '_', '.' and '-')", name)
		}
		if u == nil {
			v.errorf(p, "no targets (add targets or discovery)")
			continue
		}
		if len(u.Targets) == 0 && (u.Discovery == nil || u.Discovery.Type == "static" || u.Discovery.Type == "") {
			v.errorf(p+".targets", "at least one target is required unless discovery is set")
		}
		seen := map[string]int{}
		for i, t := range u.Targets {
			tp := idx(p+".targets", i)
			if err := hostPort(t.Address, false, false); err != nil {
				v.errorf(tp+".address", "%v", err)
			} else if first, dup := seen[strings.ToLower(t.Address)]; dup {
				v.errorf(tp+".address", "duplicate target %q (also targets[%d])", t.Address, first)
			} else {
				seen[strings.ToLower(t.Address)] = i
			}
			if t.Weight < 1 || t.Weight > 10000 {
				v.errorf(tp+".weight", "weight %d out of range 1-10000", t.Weight)
			}
		}
		if d := u.Discovery; d != nil {
			v.discovery(p, u, d)
		}
		hashed := u.Balancer == "ring_hash" || u.Balancer == "maglev"
		v.oneOf(p+".balancer", "balancer", u.Balancer, balancers)
		if u.BoundedLoad != 0 && !(u.BoundedLoad >= 1) {
			v.errorf(p+".bounded_load", "bounded load factor must be 0 (off) or at least 1, got %v", u.BoundedLoad)
		}
		switch {
		case u.HashKey != "" && !hashed:
			v.errorf(p+".hash_key", "hash_key is only for balancer ring_hash or maglev")
		case u.HashKey != "" && !hashKey.MatchString(u.HashKey):
			v.errorf(p+".hash_key", "invalid hash_key %q (want ip, path, header:NAME, cookie:NAME, query:NAME or param:NAME)", u.HashKey)
		}
		if v.oneOf(p+".protocol", "protocol", u.Protocol, upstreamProtocols) {
			switch {
			case u.Protocol == "h2" && u.TLS == nil:
				v.errorf(p+".protocol", "protocol h2 is HTTP/2 over TLS and needs tls (h2c is HTTP/2 in plain text)")
			case u.Protocol == "h2c" && u.TLS != nil:
				v.errorf(p+".protocol", "protocol h2c is HTTP/2 in plain text; with tls use h2")
			}
		}
		if u.ConnectTimeout < 0 {
			v.errorf(p+".connect_timeout", "must not be negative")
		}
		if u.Keepalive.MaxIdlePerTarget < 0 {
			v.errorf(p+".keepalive.max_idle_per_target", "must not be negative")
		}
		if u.Keepalive.IdleTimeout < 0 {
			v.errorf(p+".keepalive.idle_timeout", "must not be negative")
		}
		for _, f := range []struct {
			key string
			d   Duration
		}{{"ping_interval", u.Keepalive.PingInterval}, {"ping_timeout", u.Keepalive.PingTimeout}} {
			switch {
			case f.d < 0:
				v.errorf(p+".keepalive."+f.key, "must not be negative")
			case f.d > 0 && u.Protocol != "h2c" && u.Protocol != "h2" && u.TLS == nil:
				v.errorf(p+".keepalive."+f.key, "%s is for HTTP/2 connections: protocol h2c, or h2 with tls", f.key)
			}
		}
		if t := u.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
			if t.CertFile == "" {
				v.errorf(p+".tls.key_file", "key_file needs cert_file")
			} else {
				v.errorf(p+".tls.cert_file", "cert_file needs key_file")
			}
		}
		if h := u.HealthCheck; h != nil {
			v.health(p+".health_check", h)
			if a := h.Active; a != nil && a.GRPC != nil && u.Protocol != "h2c" && u.Protocol != "h2" && u.TLS == nil {
				v.errorf(p+".health_check.active.grpc", "gRPC health checks need an HTTP/2 upstream: protocol h2c, or h2 with tls")
			}
		}
		if b := u.CircuitBreaker; b != nil {
			bp := p + ".circuit_breaker"
			for _, f := range []struct {
				key string
				n   int
			}{{"max_connections", b.MaxConnections}, {"max_pending_requests", b.MaxPendingRequests}, {"max_requests", b.MaxRequests}} {
				if f.n < 1 {
					v.errorf(bp+"."+f.key, "must be at least 1")
				}
			}
			if b.MaxRetries < 0 {
				v.errorf(bp+".max_retries", "must not be negative")
			}
		}
		switch {
		case u.Failover == name:
			v.errorf(p+".failover", "an upstream cannot fail over to itself")
		case u.Failover != "":
			v.upstreamRef(p+".failover", u.Failover)
		}
	}
	v.failoverCycles()
	v.tcpUpstreamKeys()
}

// failoverCycles reports each cycle of failover references once, at the
// failover key of its first member by name, naming the cycle. (A
// self-reference is reported by upstreams.)
func (v *validator) failoverCycles() {
	done := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(v.c.Upstreams)) {
		var path []string
		at := map[string]int{}
		for n := name; n != "" && !done[n]; {
			u := v.c.Upstreams[n]
			if u == nil {
				break
			}
			if i, seen := at[n]; seen {
				cycle := path[i:]
				if len(cycle) > 1 {
					// Start at the first member by name, so a cycle reads
					// the same whichever upstream led into it.
					first := 0
					for j, m := range cycle {
						if m < cycle[first] {
							first = j
						}
					}
					cycle = append(slices.Clone(cycle[first:]), cycle[:first]...)
					cycle = append(cycle, cycle[0])
					v.errorf("upstreams."+cycle[0]+".failover", "failover cycle %s", strings.Join(cycle, " -> "))
				}
				break
			}
			at[n] = len(path)
			path = append(path, n)
			n = u.Failover
		}
		for _, n := range path {
			done[n] = true
		}
	}
}

func (v *validator) health(p string, h *HealthCheck) {
	if t := h.PanicThreshold; t != nil && (*t < 0 || *t > 100) {
		v.errorf(p+".panic_threshold", "%d out of range 0-100", *t)
	}
	if a := h.Active; a != nil {
		ap := p + ".active"
		switch {
		case a.GRPC != nil && (a.Path != "" || a.Send != "" || a.Expect != ""):
			key := "path"
			if a.Path == "" {
				key = "send"
				if a.Send == "" {
					key = "expect"
				}
			}
			v.errorf(ap+"."+key, "%s and grpc are exclusive: a check is gRPC (grpc), HTTP (path) or TCP (neither, with send and expect)", key)
		case a.Path != "" && !strings.HasPrefix(a.Path, "/"):
			v.errorf(ap+".path", "path must start with \"/\"")
		case a.Path != "" && (a.Send != "" || a.Expect != ""):
			key := "send"
			if a.Send == "" {
				key = "expect"
			}
			v.errorf(ap+"."+key, "%s is for TCP checks, which have no path; an HTTP check (path) judges the status", key)
		case a.Send != "" && a.Expect == "":
			v.errorf(ap+".send", "send needs expect: what a healthy target answers")
		}
		for _, f := range []struct{ key, val string }{{"send", a.Send}, {"expect", a.Expect}} {
			if len(f.val) > MaxHealthPayload {
				v.errorf(ap+"."+f.key, "%d bytes; at most %d", len(f.val), MaxHealthPayload)
			}
		}
		if a.Interval <= 0 {
			v.errorf(ap+".interval", "must be positive")
		}
		if a.Timeout <= 0 {
			v.errorf(ap+".timeout", "must be positive")
		}
		if a.HealthyThreshold < 1 {
			v.errorf(ap+".healthy_threshold", "must be at least 1")
		}
		if a.UnhealthyThreshold < 1 {
			v.errorf(ap+".unhealthy_threshold", "must be at least 1")
		}
	}
	if s := h.Passive; s != nil {
		sp := p + ".passive"
		if s.Consecutive5xx < 1 {
			v.errorf(sp+".consecutive_5xx", "must be at least 1")
		}
		if s.Interval <= 0 {
			v.errorf(sp+".interval", "must be positive")
		}
		if s.ConsecutiveConnectFailures < 0 {
			v.errorf(sp+".consecutive_connect_failures", "must not be negative")
		}
		if s.BaseEjectionTime <= 0 {
			v.errorf(sp+".base_ejection_time", "must be positive")
		}
		if s.MaxEjectionTime < 0 {
			v.errorf(sp+".max_ejection_time", "must not be negative")
		}
		if s.MaxEjectionPercent < 0 || s.MaxEjectionPercent > 100 {
			v.errorf(sp+".max_ejection_percent", "%d out of range 0-100", s.MaxEjectionPercent)
		}
	}
}

func (v *validator) routes() {
	c := v.c
	if len(c.Routes) == 0 && slices.ContainsFunc(c.Listeners, func(l Listener) bool { return l.Protocol != "tcp" }) {
		v.errorf("routes", "at least one route is required")
	}
	names := map[string]string{}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := idx("routes", i)
		switch first, dup := names[r.Name]; {
		case r.Name == "":
			v.errorf(p+".name", "name must not be empty")
		case dup:
			v.errorf(p+".name", "duplicate route name %q (first used by %s)", r.Name, first)
		default:
			names[r.Name] = p
		}
		v.match(p+".match", &r.Match)

		targets := 0
		if r.Upstream != "" {
			targets++
		}
		if r.Split != nil {
			targets++
		}
		if r.Aggregate != nil {
			targets++
		}
		if targets != 1 {
			v.errorf(p, "a route needs exactly one of upstream, split or aggregate")
		}
		if r.Upstream != "" {
			v.upstreamRef(p+".upstream", r.Upstream)
		}
		if r.Split != nil {
			v.split(p+".split", r.Split)
		}
		if a := r.Aggregate; a != nil {
			ap := p + ".aggregate"
			if a.Timeout < 0 {
				v.errorf(ap+".timeout", "must not be negative")
			}
			if len(a.Backends) == 0 {
				v.errorf(ap+".backends", "at least one backend is required")
			}
			groups := map[string]string{}
			for j, b := range a.Backends {
				bp := idx(ap+".backends", j)
				v.upstreamRef(bp+".upstream", b.Upstream)
				if !strings.HasPrefix(b.Path, "/") {
					v.errorf(bp+".path", "path must start with \"/\"")
				} else if v.placeholders(bp+".path", b.Path, r.Match.Path, true) {
					t, _ := capture.ParseSteps(b.Path)
					for _, rp := range t.Resps() {
						g, _, _ := strings.Cut(rp, ".")
						if _, ok := groups[g]; !ok {
							v.errorf(bp+".path", "placeholder {resp.%s}: no backend before this one has group %q", rp, g)
						}
					}
				}
				if b.Timeout < 0 {
					v.errorf(bp+".timeout", "must not be negative")
				}
				if b.MaxBodyBytes < 0 {
					v.errorf(bp+".max_body_bytes", "must not be negative")
				}
				for k, f := range b.Allow {
					if f == "" || strings.HasPrefix(f, ".") || strings.HasSuffix(f, ".") || strings.Contains(f, "..") {
						v.errorf(idx(bp+".allow", k), "invalid field path %q (want name or dotted.path)", f)
					}
				}
				for _, from := range slices.Sorted(maps.Keys(b.Rename)) {
					if from == "" || b.Rename[from] == "" {
						v.errorf(bp+".rename."+from, "rename needs a field name and a new name")
					}
				}
				if b.Group != "" {
					if first, dup := groups[b.Group]; dup {
						v.errorf(bp+".group", "group %q is already used by %s", b.Group, first)
					}
					groups[b.Group] = bp
				}
			}
		}

		pm := r.Match.Path
		if r.StripPrefix && pm.Prefix == "" && pm.Template == "" {
			v.errorf(p+".strip_prefix", "strip_prefix needs match.path.prefix or match.path.template")
		}
		if rw := r.Rewrite; rw != nil {
			switch {
			case rw.Prefix != "" && rw.Path != "":
				v.errorf(p+".rewrite.path", "rewrite has both prefix and path; use one")
			case rw.Path != "":
				if r.StripPrefix {
					v.errorf(p+".strip_prefix", "strip_prefix does nothing with rewrite.path, which replaces the whole path")
				}
				if !strings.HasPrefix(rw.Path, "/") {
					v.errorf(p+".rewrite.path", "path must start with \"/\"")
				} else if strings.ContainsAny(rw.Path, "?#") {
					v.errorf(p+".rewrite.path", "path must not hold a query or fragment (the request's query is kept)")
				} else {
					v.placeholders(p+".rewrite.path", rw.Path, pm, false)
				}
			default:
				if pm.Prefix == "" && pm.Template == "" {
					v.errorf(p+".rewrite", "rewrite needs match.path.prefix or match.path.template")
				}
				if !strings.HasPrefix(rw.Prefix, "/") {
					v.errorf(p+".rewrite.prefix", "prefix must start with \"/\"")
				}
			}
		}
		v.paramHashKeys(p, r)
		if m := r.Mirror; m != nil {
			v.upstreamRef(p+".mirror.upstream", m.Upstream)
			if m.Percent < 0 || m.Percent > 100 {
				v.errorf(p+".mirror.percent", "%v out of range 0-100", m.Percent)
			}
			if m.MaxInFlight < 1 {
				v.errorf(p+".mirror.max_in_flight", "must be at least 1")
			}
			if m.MaxBodyBytes < 0 {
				v.errorf(p+".mirror.max_body_bytes", "must not be negative")
			}
		}
		if r.Timeout < 0 {
			v.errorf(p+".timeout", "must not be negative")
		}
		v.oneOf(p+".request_buffering", "request_buffering", r.RequestBuffering, bufferingModes)
		if rt := r.Retry; rt != nil {
			v.retry(p+".retry", rt)
		}
		seen := map[string]int{}
		for j, name := range r.Policies {
			pp := idx(p+".policies", j)
			if first, dup := seen[name]; dup {
				v.errorf(pp, "duplicate policy %q (also policies[%d])", name, first)
				continue
			}
			seen[name] = j
			if _, ok := c.Policies[name]; !ok {
				v.errorf(pp, "unknown policy %q%s", name, hint(v, "policy", name, c.Policies))
			}
		}
		if f := r.Fallback; f != nil && (f.Status < 100 || f.Status > 599) {
			v.errorf(p+".fallback.status", "status %d out of range 100-599", f.Status)
		}
		if ca := r.Cache; ca != nil {
			if ca.TTL <= 0 {
				v.errorf(p+".cache.ttl", "must be positive")
			}
			if ca.StaleIfError < 0 {
				v.errorf(p+".cache.stale_if_error", "must not be negative")
			}
		}
	}
}

func (v *validator) split(p string, items []SplitItem) {
	if len(items) == 0 {
		v.errorf(p, "a split needs at least one item")
	}
	seen := map[string]int{}
	for j, it := range items {
		ip := idx(p, j)
		v.upstreamRef(ip+".upstream", it.Upstream)
		if first, dup := seen[it.Upstream]; dup && it.Upstream != "" {
			v.errorf(ip+".upstream", "upstream %q already in split[%d]", it.Upstream, first)
		} else {
			seen[it.Upstream] = j
		}
		if it.Weight < 1 || it.Weight > 10000 {
			v.errorf(ip+".weight", "weight %d out of range 1-10000", it.Weight)
		}
	}
}

func (v *validator) retry(p string, rt *Retry) {
	if rt.Attempts < 1 {
		v.errorf(p+".attempts", "must be at least 1")
	}
	if rt.PerTryTimeout < 0 {
		v.errorf(p+".per_try_timeout", "must not be negative")
	}
	for j, on := range rt.On {
		if _, err := ParseRetryCondition(on); err != nil {
			v.errorf(idx(p+".on", j), "%v", err)
		}
	}
	if rt.Backoff.Base < 0 {
		v.errorf(p+".backoff.base", "must not be negative")
	}
	if rt.Backoff.Max < rt.Backoff.Base {
		v.errorf(p+".backoff.max", "must not be less than backoff.base")
	}
	if b := rt.Budget; b != nil {
		if b.Percent < 0 || b.Percent > 100 {
			v.errorf(p+".budget.percent", "%v out of range 0-100", b.Percent)
		}
		if b.MinPerSecond < 0 {
			v.errorf(p+".budget.min_per_second", "must not be negative")
		}
	}
}

// isToken reports whether s is an RFC 9110 token (method and header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// placeholders checks a string with capture placeholders ({id},
// {query.NAME}) against the captures the route's path match supplies.
// With steps (an aggregate backend path), {resp.GROUP.field} is allowed
// too. It reports whether s parsed.
func (v *validator) placeholders(p, s string, pm PathMatch, steps bool) bool {
	parse := capture.Parse
	if steps {
		parse = capture.ParseSteps
	}
	t, err := parse(s)
	if err != nil {
		v.errorf(p, "%v", err)
		return false
	}
	have := PathParams(pm)
	if name, missing := t.Missing(have); missing {
		v.errorf(p, "placeholder {%s}: %s", name, supplies(pm, have))
	}
	return true
}

// supplies says which captures a path match has, for an error.
func supplies(pm PathMatch, have []string) string {
	switch {
	case len(have) > 0:
		return "the route's match.path captures only " + strings.Join(have, ", ")
	case pm.Template != "" || pm.Regex != "":
		return "the route's match.path has no captures (a template {name} or a regex (?P<name>...))"
	}
	return "captures need match.path.template or a regex with (?P<name>...) groups"
}

// paramHashKeys checks that the route supplies the capture of each
// upstream it uses whose hash_key is param:NAME.
func (v *validator) paramHashKeys(p string, r *Route) {
	check := func(at, name string) {
		u, ok := v.c.Upstreams[name]
		if !ok {
			return
		}
		param, ok := strings.CutPrefix(u.HashKey, "param:")
		if !ok {
			return
		}
		if have := PathParams(r.Match.Path); !slices.Contains(have, param) {
			v.errorf(at, "upstream %q hashes by capture %q (hash_key param:%s): %s", name, param, param, supplies(r.Match.Path, have))
		}
	}
	if r.Upstream != "" {
		check(p+".upstream", r.Upstream)
	}
	for j, s := range r.Split {
		check(idx(p+".split", j)+".upstream", s.Upstream)
	}
	if a := r.Aggregate; a != nil {
		for j, b := range a.Backends {
			check(idx(p+".aggregate.backends", j)+".upstream", b.Upstream)
		}
	}
}

func (v *validator) match(p string, m *Match) {
	for j, h := range m.Hosts {
		if _, err := ParseHost(h); err != nil {
			v.errorf(idx(p+".hosts", j), "%v", err)
		}
	}
	pp := p + ".path"
	var set []string
	for _, kv := range []struct{ key, val string }{{"exact", m.Path.Exact}, {"prefix", m.Path.Prefix}, {"regex", m.Path.Regex}, {"template", m.Path.Template}} {
		if kv.val == "" {
			continue
		}
		set = append(set, kv.key)
		switch kv.key {
		case "regex":
			if _, err := regexp.Compile(kv.val); err != nil {
				v.errorf(pp+".regex", "invalid regex: %v", err)
			}
		case "template":
			if _, err := ParseTemplate(kv.val); err != nil {
				v.errorf(pp+".template", "%v", err)
			}
		default:
			if !strings.HasPrefix(kv.val, "/") {
				v.errorf(pp+"."+kv.key, "%s must start with \"/\"", kv.key)
			}
		}
	}
	if len(set) > 1 {
		v.errorf(pp+"."+set[1], "path has both %s and %s; use one of exact, prefix, regex or template", set[0], set[1])
	}
	for j, meth := range m.Methods {
		if !isToken(meth) {
			v.errorf(idx(p+".methods", j), "invalid method %q", meth)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
		if !isToken(name) {
			v.errorf(p+".headers."+name, "invalid header name %q", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.Query)) {
		if name == "" {
			v.errorf(p+".query.", "query parameter name must not be empty")
		}
	}
}

func (v *validator) policies() {
	for _, name := range slices.Sorted(maps.Keys(v.c.Policies)) {
		p := "policies." + name
		pol := v.c.Policies[name]
		if pol == nil || pol.Type == "" {
			v.errorf(p, "type is required (one of %s)", orList(PolicyTypes))
			continue
		}
		v.oneOf(p+".type", "policy type", pol.Type, PolicyTypes)
	}
}

func (v *validator) consumers() {
	names := map[string]int{}
	keys := map[string]string{}
	certs := map[string]string{}
	for i, cs := range v.c.Consumers {
		p := idx("consumers", i)
		if cs.Name == "" {
			v.errorf(p+".name", "name must not be empty")
		} else if first, dup := names[cs.Name]; dup {
			v.errorf(p+".name", "duplicate consumer name %q (also consumers[%d])", cs.Name, first)
		} else {
			names[cs.Name] = i
		}
		for j, k := range cs.APIKeys {
			kp := idx(p+".api_keys", j)
			if k == "" {
				v.errorf(kp, "api key must not be empty")
			} else if owner, dup := keys[k]; dup {
				v.errorf(kp, "api key already used by %s", owner)
			} else {
				keys[k] = p
			}
		}
		for j, r := range cs.Roles {
			if r == "" {
				v.errorf(idx(p+".roles", j), "role must not be empty")
			}
		}
		for j, c := range cs.ClientCerts {
			cp := idx(p+".client_certs", j)
			hexs, ok := strings.CutPrefix(strings.ToLower(c), "sha256:")
			if !ok || len(hexs) != 64 || strings.Trim(hexs, "0123456789abcdef") != "" {
				v.errorf(cp, "client certificate %q: want \"sha256:\" and the 64 hex digits of the certificate's SHA-256", c)
			} else if owner, dup := certs[hexs]; dup {
				v.errorf(cp, "client certificate already used by %s", owner)
			} else {
				certs[hexs] = p
			}
		}
	}
}

func (v *validator) cluster() {
	cl := v.c.Cluster
	rd := cl.Redis
	if _, written := v.c.pos["cluster.instances"]; written || cl.Instances != 0 {
		switch {
		case rd == nil:
			v.errorf("cluster.instances", "instances applies only with cluster.redis (it divides a rate limit's rate while Redis is unavailable)")
		case cl.Instances < 1:
			v.errorf("cluster.instances", "must be at least 1")
		}
	}
	if rd == nil {
		return
	}
	var where []string
	for _, w := range []struct {
		key string
		set bool
	}{{"address", rd.Address != ""}, {"addresses", rd.Addresses != nil}, {"sentinel", rd.Sentinel != nil}} {
		if _, written := v.c.pos["cluster.redis."+w.key]; written || w.set {
			where = append(where, w.key)
		}
	}
	switch len(where) {
	case 0:
		v.errorf("cluster.redis", "one of address, addresses (Redis Cluster) or sentinel is required")
	case 1:
	default:
		v.errorf("cluster.redis."+where[1], "%s and %s are exclusive: set one of address, addresses (Redis Cluster) or sentinel", where[0], where[1])
	}
	if slices.Contains(where, "address") {
		if err := hostPort(rd.Address, false, false); err != nil {
			v.errorf("cluster.redis.address", "%v", err)
		}
	}
	if slices.Contains(where, "addresses") {
		v.redisAddrs("cluster.redis.addresses", rd.Addresses)
	}
	if s := rd.Sentinel; s != nil {
		if s.Master == "" {
			v.errorf("cluster.redis.sentinel.master", "master is required (the name sentinels know the master by)")
		}
		v.redisAddrs("cluster.redis.sentinel.addresses", s.Addresses)
	}
	_, pwWritten := v.c.pos["cluster.redis.password_file"]
	if pwWritten && rd.PasswordFile == "" {
		v.errorf("cluster.redis.password_file", "password_file must not be empty")
	}
	if rd.Username != "" && rd.PasswordFile == "" && !pwWritten {
		v.errorf("cluster.redis.username", "username needs password_file (Redis AUTH takes both)")
	}
	if t := rd.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		if t.CertFile == "" {
			v.errorf("cluster.redis.tls.key_file", "key_file needs cert_file")
		} else {
			v.errorf("cluster.redis.tls.cert_file", "cert_file needs key_file")
		}
	}
	if rd.Timeout <= 0 {
		v.errorf("cluster.redis.timeout", "must be positive")
	}
	v.oneOf("cluster.redis.on_failure", "on_failure", rd.OnFailure, redisFailureModes)
	if len(rd.Prefix) > maxRedisPrefix {
		v.errorf("cluster.redis.prefix", "prefix longer than %d bytes", maxRedisPrefix)
	}
}

// maxRedisPrefix bounds cluster.redis.prefix, so that keys stay short.
const maxRedisPrefix = 64

// redisAddrs checks a non-empty list of distinct host:port addresses.
func (v *validator) redisAddrs(path string, addrs []string) {
	if len(addrs) == 0 {
		v.errorf(path, "at least one address is required")
		return
	}
	seen := map[string]int{}
	for i, a := range addrs {
		if err := hostPort(a, false, false); err != nil {
			v.errorf(idx(path, i), "%v", err)
		} else if first, dup := seen[a]; dup {
			v.errorf(idx(path, i), "address %q listed twice (also [%d])", a, first)
		} else {
			seen[a] = i
		}
	}
}

func (v *validator) observability() {
	o := v.c.Observability
	if !isToken(o.RequestIDHeader) {
		v.errorf("observability.request_id_header", "invalid header name %q", o.RequestIDHeader)
	}
	if o.AccessLog.Path == "" {
		v.errorf("observability.access_log.path", "path must not be empty (stdout, stderr, off or a file)")
	}
	v.oneOf("observability.access_log.format", "access log format", o.AccessLog.Format, logFormats)
	if t := o.Tracing; t != nil {
		const p = "observability.tracing"
		if t.OTLPEndpoint == "" {
			v.errorf(p+".otlp_endpoint", "otlp_endpoint is required")
		} else if err := hostPort(t.OTLPEndpoint, false, false); err != nil {
			v.errorf(p+".otlp_endpoint", "%v", err)
		}
		v.oneOf(p+".protocol", "protocol", t.Protocol, tracingProtocols)
		if t.SampleRatio < 0 || t.SampleRatio > 1 || t.SampleRatio != t.SampleRatio {
			v.errorf(p+".sample_ratio", "%v out of range 0-1", t.SampleRatio)
		}
		if t.ServiceName == "" {
			v.errorf(p+".service_name", "service_name must not be empty")
		}
		for _, name := range slices.Sorted(maps.Keys(t.Headers)) {
			if !isToken(name) {
				v.errorf(p+".headers."+name, "invalid header name %q", name)
			} else if val := t.Headers[name]; strings.ContainsAny(val, "\r\n\x00") {
				v.errorf(p+".headers."+name, "header value must not contain CR, LF or NUL")
			}
		}
		if tl := t.TLS; tl != nil {
			if t.Insecure {
				v.errorf(p+".insecure", "insecure and tls are exclusive: plaintext has no TLS settings")
			}
			if (tl.CertFile == "") != (tl.KeyFile == "") {
				v.errorf(p+".tls", "cert_file and key_file go together")
			}
		}
	}
}
