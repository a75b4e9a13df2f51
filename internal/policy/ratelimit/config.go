package ratelimit

import (
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Config is the `rate_limit` policy's settings.
type Config struct {
	// Key says what is counted: ip, consumer, route, header:NAME or
	// claim:NAME, or a list of them combined. Default ip.
	Key yaml.Node `yaml:"key" json:"-"`
	// Rate is the sustained rate, N/s, N/m or N/h. Required.
	Rate config.Rate `yaml:"rate" json:"rate"`
	// Burst is the bucket size: how many requests may come at once.
	// Default: the rate per second rounded up, at least 1.
	Burst int `yaml:"burst" json:"burst,omitempty"`
	// ByRole gives consumers with a role their own rate; a consumer's
	// first role listed here wins. Its burst scales with the rate.
	ByRole map[string]config.Rate `yaml:"by_role" json:"by_role,omitempty"`
	// Store is where buckets live: local (this process) or redis (shared
	// by every gateway instance through cluster.redis). Default local.
	Store string `yaml:"store" json:"store,omitempty"`
	// OnFailure, for store redis, overrides cluster.redis.on_failure for
	// this policy: local, allow or deny.
	OnFailure string `yaml:"on_failure" json:"on_failure,omitempty"`
	// Sync, for store redis, is how decisions reach Redis: plain (one
	// round trip per request, exact) or lease (an instance takes a small
	// batch of tokens per key and spends it locally; hot keys pay a round
	// trip every few requests). Default plain.
	Sync string `yaml:"sync" json:"sync,omitempty"`
	// TrustForwarded is how many proxies in front of the gateway append to
	// X-Forwarded-For, for the ip key. Default 0: the TCP peer.
	TrustForwarded int `yaml:"trust_forwarded" json:"trust_forwarded,omitempty"`
	// MaxKeys caps the keys (buckets) held per rate. Default 100000.
	MaxKeys int `yaml:"max_keys" json:"max_keys,omitempty"`
}

// DefaultMaxKeys applies when max_keys is not set.
const DefaultMaxKeys = 100_000

// Part kinds of a key.
const (
	partIP = iota
	partConsumer
	partRoute
	partHeader
	partClaim
)

// Part is one element of a rate-limit key.
type Part struct {
	Kind int
	Name string // canonical header name for header:NAME, the claim for claim:NAME
}

// KeyPattern is the grammar ParseKeyPart accepts, as a regular expression
// for the config's JSON Schema (a header name is an RFC 9110 token); a test
// holds the two to the same answers.
const KeyPattern = "^(ip|consumer|route|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|claim:[\\s\\S]+)$"

// ParseKeyPart parses ip, consumer, route, header:NAME or claim:NAME.
func ParseKeyPart(s string) (Part, string) {
	switch s {
	case "ip":
		return Part{Kind: partIP}, ""
	case "consumer":
		return Part{Kind: partConsumer}, ""
	case "route":
		return Part{Kind: partRoute}, ""
	}
	kind, name, ok := strings.Cut(s, ":")
	switch {
	case ok && kind == "header":
		if !policy.ValidHeaderName(name) {
			return Part{}, "invalid header name " + strconv.Quote(name) + " in key " + strconv.Quote(s)
		}
		return Part{Kind: partHeader, Name: canonical(name)}, ""
	case ok && kind == "claim":
		if name == "" {
			return Part{}, "key " + strconv.Quote(s) + " names no claim"
		}
		return Part{Kind: partClaim, Name: name}, ""
	}
	return Part{}, "invalid key " + strconv.Quote(s) + " (want ip, consumer, route, header:NAME or claim:NAME, or a list of them)"
}

// parts parses c.Key, reporting problems through s.
func (c *Config) parts(s policy.Spec) ([]Part, []string, config.Errors) {
	var errs config.Errors
	var items []*yaml.Node
	var paths []string
	switch c.Key.Kind {
	case 0:
		return []Part{{Kind: partIP}}, []string{"ip"}, nil
	case yaml.ScalarNode:
		items, paths = []*yaml.Node{&c.Key}, []string{"key"}
	case yaml.SequenceNode:
		if len(c.Key.Content) == 0 {
			return nil, nil, config.Errors{s.Errorf("key", "key list must not be empty")}
		}
		for i, n := range c.Key.Content {
			items = append(items, n)
			paths = append(paths, "key["+strconv.Itoa(i)+"]")
		}
	default:
		return nil, nil, config.Errors{s.Errorf("key", "key must be a string or a list of strings")}
	}
	var out []Part
	var names []string
	seen := map[string]bool{}
	for i, n := range items {
		if n.Kind != yaml.ScalarNode {
			errs = append(errs, s.Errorf(paths[i], "key must be a string"))
			continue
		}
		p, msg := ParseKeyPart(n.Value)
		if msg != "" {
			errs = append(errs, s.Errorf(paths[i], "%s", msg))
			continue
		}
		if seen[n.Value] {
			errs = append(errs, s.Errorf(paths[i], "key %q listed twice", n.Value))
			continue
		}
		seen[n.Value] = true
		out = append(out, p)
		names = append(names, n.Value)
	}
	return out, names, errs
}

// Validate checks the key, rates, burst and store.
func (c *Config) Validate(s policy.Spec) config.Errors {
	_, _, errs := c.parts(s)
	switch c.Store {
	case "", "local":
		if c.OnFailure != "" {
			errs = append(errs, s.Errorf("on_failure", "on_failure applies only to store redis"))
		}
		if c.Sync != "" {
			errs = append(errs, s.Errorf("sync", "sync applies only to store redis"))
		}
	case "redis":
		if s.Config == nil || s.Config.Cluster.Redis == nil {
			errs = append(errs, s.Errorf("store", "store redis needs cluster.redis (where Redis is)"))
		}
		switch c.OnFailure {
		case "", "local", "allow", "deny":
		default:
			errs = append(errs, s.Errorf("on_failure", "invalid on_failure %q (want local, allow or deny)", c.OnFailure))
		}
		switch c.Sync {
		case "", "plain", "lease":
		default:
			errs = append(errs, s.Errorf("sync", "invalid sync %q (want plain or lease)", c.Sync))
		}
		if c.Rate.N > 0 && maxRedisRate(c) > maxRedisPerSecond {
			errs = append(errs, s.Errorf("rate", "rate too high for store redis (at most %d/s: Redis keeps time in microseconds)", maxRedisPerSecond))
		}
	default:
		errs = append(errs, s.Errorf("store", "unknown store %q (want local or redis)", c.Store))
	}
	if c.Rate.N == 0 {
		errs = append(errs, s.Errorf("rate", "rate is required (N/s, N/m or N/h)"))
	} else if msg := checkRate(c.Rate, c.Burst); msg != "" {
		errs = append(errs, s.Errorf("rate", "%s", msg))
	}
	if c.Burst < 0 || c.Burst > maxBurst {
		errs = append(errs, s.Errorf("burst", "burst must be between 1 and %d", maxBurst))
	}
	for _, role := range sortedRoles(c.ByRole) {
		if role == "" {
			errs = append(errs, s.Errorf("by_role", "role must not be empty"))
			continue
		}
		if c.Rate.N > 0 {
			if msg := checkRate(c.ByRole[role], roleBurst(c, c.ByRole[role])); msg != "" {
				errs = append(errs, s.Errorf("by_role."+role, "%s", msg))
			}
		}
	}
	if c.TrustForwarded < 0 || c.TrustForwarded > 64 {
		errs = append(errs, s.Errorf("trust_forwarded", "trust_forwarded must be between 0 and 64"))
	}
	if c.MaxKeys < 0 {
		errs = append(errs, s.Errorf("max_keys", "max_keys must not be negative"))
	}
	return errs
}

const maxBurst = 1_000_000

// maxRedisPerSecond bounds the rates of store redis: its script counts in
// microseconds of Redis's clock, so one token a microsecond at most.
const maxRedisPerSecond = 1_000_000

// maxRedisRate is the highest of the policy's rates, per second.
func maxRedisRate(c *Config) float64 {
	m := c.Rate.PerSecond()
	for _, r := range c.ByRole {
		m = max(m, r.PerSecond())
	}
	return m
}

// checkRate refuses rates whose arithmetic would not fit: at most one
// token a nanosecond, and a full bucket refilling within a year.
func checkRate(r config.Rate, burst int) string {
	ps := r.PerSecond()
	if ps > 1e9 {
		return "rate too high (at most 1000000000/s)"
	}
	if burst < 1 {
		burst = defaultBurst(r)
	}
	if float64(burst)/ps > (365 * 24 * time.Hour).Seconds() {
		return "rate too low: a full bucket would take over a year to refill"
	}
	return ""
}

// defaultBurst is the rate per second rounded up, at least 1.
func defaultBurst(r config.Rate) int {
	return max(1, min(maxBurst, int(math.Ceil(r.PerSecond()-1e-9))))
}

// burstOf returns the burst for the policy's own rate.
func burstOf(c *Config) int {
	if c.Burst > 0 {
		return c.Burst
	}
	return defaultBurst(c.Rate)
}

// roleBurst scales an explicit burst with a role's rate, or defaults it
// from that rate.
func roleBurst(c *Config, r config.Rate) int {
	if c.Burst == 0 {
		return defaultBurst(r)
	}
	return max(1, min(maxBurst, int(math.Ceil(float64(c.Burst)*r.PerSecond()/c.Rate.PerSecond()-1e-9))))
}
