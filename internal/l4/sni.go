package l4

import (
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
)

// sniRoutes maps SNI names to upstream names (tls.sni_routes): exact names
// first, then wildcards, the longest suffix first.
type sniRoutes struct {
	exact map[string]string
	// wild is keyed by the part after "*.": "*.example.com" matches
	// a.example.com and a.b.example.com, not example.com.
	wild map[string]string
}

// newSNIRoutes compiles routes, which config validated (a host it refused
// is left out).
func newSNIRoutes(routes map[string]string) sniRoutes {
	s := sniRoutes{exact: map[string]string{}, wild: map[string]string{}}
	for host, up := range routes {
		h, err := config.ParseHost(host)
		if err != nil {
			continue
		}
		if h.Wildcard {
			s.wild[h.Name] = up
		} else {
			s.exact[h.Name] = up
		}
	}
	return s
}

// route returns the upstream for the SNI name (case-insensitive, a
// trailing dot ignored), or def when none matches.
func (s sniRoutes) route(name, def string) string {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "" {
		return def
	}
	if up, ok := s.exact[name]; ok {
		return up
	}
	// Bounded by the name's labels (at most 127 in 253 bytes).
	for rest := name; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return def
		}
		rest = rest[i+1:]
		if up, ok := s.wild[rest]; ok {
			return up
		}
	}
}
