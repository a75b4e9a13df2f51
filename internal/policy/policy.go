// Package policy defines what a request policy is. Each policy type lives in
// its own folder below this one (jwt, apikey, ratelimit, waf, ...), with the
// same shape — doc.go, config.go (Config + Validate), <name>.go (New) and
// tests — and is registered in the single list in internal/compile
// (policies.go), so the set of policies and their names are visible in one
// place.
package policy

import (
	"log/slog"
	"net/http"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Policy is a compiled, immutable policy instance. Wrap returns next guarded
// by the policy; it is called once per route that lists the policy.
// Gateway-made refusals are written with exchange.Error.
type Policy interface {
	Wrap(next http.Handler) http.Handler
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
}

// RawNode returns the policy's YAML mapping node.
func (s Spec) RawNode() *yaml.Node { return s.Node.Spec }

// Factory builds a Policy from its Spec, or returns every problem found.
type Factory func(Spec) (Policy, error)
