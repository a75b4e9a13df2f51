// Package policy defines what a request policy is. Each policy type lives in
// its own folder below this one (jwt, apikey, ratelimit, waf, ...), with the
// same shape — doc.go, config.go (Config + Validate), <name>.go (New) and
// tests — and is registered in the single list in internal/compile
// (policies.go), so the set of policies and their names are visible in one
// place.
package policy

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/registry"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Policy is a compiled, immutable policy instance. Wrap returns next guarded
// by the policy; it is called once per route that lists the policy.
// Gateway-made refusals are written with exchange.Error.
type Policy interface {
	Wrap(next http.Handler) http.Handler
}

// ClaimReader is a policy that reads the verified token claims a jwt
// policy records on the request (exchange.Exchange.Claims). ReadsClaims
// says what reads them ("key claim:sub"), for the error when no jwt policy
// comes before it on a route; "" when this instance reads none.
type ClaimReader interface {
	ReadsClaims() string
}

// CaptureUser is a policy whose settings use path captures ({id}; see
// internal/capture). CaptureNames lists them; compile refuses a route that
// lists the policy without supplying them, and extracts the captures for
// the routes that do.
type CaptureUser interface {
	CaptureNames() []string
}

// ClaimWriter is a policy that records verified token claims.
type ClaimWriter interface {
	WritesClaims()
}

// Func adapts a middleware function to Policy.
type Func func(next http.Handler) http.Handler

// Wrap calls f.
func (f Func) Wrap(next http.Handler) http.Handler { return f(next) }

// Spec is what a policy factory gets: the policy's name, its raw config
// mapping and where it stood, plus shared services.
type Spec struct {
	Name string
	// Node is the policy's whole mapping (including "type"); decode it with
	// config.DecodeNode(File, Node, Path, &cfg, "type").
	Node *config.Policy
	File string
	Path string
	// Config is the whole config, for policies that need other sections
	// (consumers, cluster).
	Config  *config.Config
	Metrics *telemetry.Metrics
	Log     *slog.Logger
	// Claims records the policy state that must survive a config reload
	// (rate limit buckets, in-flight counters) in the registry; see Claim.
	// Nil gives the policy fresh state of its own (tests).
	Claims *registry.Claims
}

// RawNode returns the policy's YAML mapping node.
func (s Spec) RawNode() *yaml.Node {
	if s.Node == nil {
		return nil
	}
	return s.Node.Spec
}

// Decode decodes the policy's keys (all but "type") strictly into v.
func (s Spec) Decode(v any) config.Errors {
	return config.DecodeNode(s.File, s.RawNode(), s.Path, v, "type")
}

// Errorf returns an error about the value at rel, a path relative to the
// policy ("key[1]", "by_role.free"), positioned where that value stands in
// the document (or at its nearest parent that does).
func (s Spec) Errorf(rel, format string, args ...any) *config.Error {
	path := s.Path
	if rel != "" {
		path += "." + rel
	}
	pos := config.Pos{File: s.File}
	if n := find(s.RawNode(), rel); n != nil {
		pos.Line, pos.Col = n.Line, n.Column
	} else if s.Config != nil {
		pos = s.Config.Pos(path)
	}
	return &config.Error{Pos: pos, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// find walks n along rel ("a.b[2].c"); it returns the deepest node reached.
func find(n *yaml.Node, rel string) *yaml.Node {
	for rel != "" && n != nil {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var part string
		if rel[0] == '[' {
			end := strings.IndexByte(rel, ']')
			if end < 0 || n.Kind != yaml.SequenceNode {
				return n
			}
			i, err := strconv.Atoi(rel[1:end])
			if err != nil || i < 0 || i >= len(n.Content) {
				return n
			}
			n, rel = n.Content[i], strings.TrimPrefix(rel[end+1:], ".")
			continue
		}
		end := strings.IndexAny(rel, ".[")
		if end < 0 {
			part, rel = rel, ""
		} else {
			part, rel = rel[:end], strings.TrimPrefix(rel[end:], ".")
		}
		if n.Kind != yaml.MappingNode {
			return n
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// Validator is a policy Config: Validate reports every semantic problem of
// a decoded config, positioned through s.
type Validator interface {
	Validate(s Spec) config.Errors
}

// Load decodes the policy's keys into c and validates it. It returns nil or
// config.Errors holding every problem.
func Load(s Spec, c Validator) error {
	errs := s.Decode(c)
	if len(errs) == 0 {
		errs = c.Validate(s)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Claim binds the policy state of type T under key: shared through the
// registry with every snapshot whose policy claims the same key (so a
// reload with unchanged settings keeps the state), and made by mk on first
// use. set receives it when the snapshot is acquired; with nil claims, at
// once. Keys must be unique across policy types: prefix them with the type.
func Claim[T any](claims *registry.Claims, key string, mk func() *T, set func(*T)) {
	if claims == nil {
		set(mk())
		return
	}
	registry.Claim(claims, "policy|"+key, mk, set)
}

// Factory builds a Policy from its Spec, or returns every problem found.
type Factory func(Spec) (Policy, error)
