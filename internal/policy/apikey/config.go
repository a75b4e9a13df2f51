package apikey

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Config is the `api_key` policy's settings.
type Config struct {
	// Header carries the key. Default X-API-Key.
	Header string `yaml:"header" json:"header,omitempty"`
	// Query, when set, is a query parameter that may carry the key when
	// the header is absent. Default: none.
	Query string `yaml:"query" json:"query,omitempty"`
	// ForwardConsumerHeader names the header that tells the upstream the
	// consumer's name. Default X-Consumer-Name; "off" sends none.
	ForwardConsumerHeader *string `yaml:"forward_consumer_header" json:"forward_consumer_header,omitempty"`
}

// Defaults.
const (
	DefaultHeader         = "X-API-Key"
	DefaultConsumerHeader = "X-Consumer-Name"
	hashPrefix            = "sha256:"
)

// Validate checks the names, and every consumer key (in consumers:).
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	if c.Header != "" && !policy.ValidHeaderName(c.Header) {
		errs = append(errs, s.Errorf("header", "invalid header name %q", c.Header))
	}
	if c.Query != "" && strings.ContainsAny(c.Query, "&=#? \t") {
		errs = append(errs, s.Errorf("query", "invalid query parameter name %q", c.Query))
	}
	if f := c.ForwardConsumerHeader; f != nil && *f != "off" && !policy.ValidHeaderName(*f) {
		errs = append(errs, s.Errorf("forward_consumer_header", "invalid header name %q (or \"off\")", *f))
	}
	if s.Config == nil {
		return errs
	}
	n := 0
	seen := map[[32]byte]string{}
	for i, cs := range s.Config.Consumers {
		for j, k := range cs.APIKeys {
			p := "consumers[" + strconv.Itoa(i) + "].api_keys[" + strconv.Itoa(j) + "]"
			n++
			h, err := ParseKey(k)
			if err != nil {
				errs = append(errs, s.Config.Errorf(p, "%v", err))
				continue
			}
			if owner, dup := seen[h]; dup {
				errs = append(errs, s.Config.Errorf(p, "api key already used by consumer %q (same key hashed)", owner))
				continue
			}
			seen[h] = cs.Name
		}
	}
	if n == 0 {
		errs = append(errs, s.Errorf("type", "no consumer has api_keys: every request would be refused (add consumers[].api_keys)"))
	}
	return errs
}

// ParseKey returns the SHA-256 of a configured key: a plain key is hashed,
// "sha256:<64 hex digits>" is decoded.
func ParseKey(k string) ([32]byte, error) {
	var h [32]byte
	if rest, ok := strings.CutPrefix(k, hashPrefix); ok {
		if len(rest) != 64 {
			return h, fmt.Errorf("sha256 key must be 64 hex digits, got %d characters", len(rest))
		}
		if _, err := hex.Decode(h[:], []byte(rest)); err != nil {
			return h, fmt.Errorf("sha256 key is not hex")
		}
		return h, nil
	}
	if k == "" {
		return h, fmt.Errorf("api key must not be empty")
	}
	return sha256.Sum256([]byte(k)), nil
}
