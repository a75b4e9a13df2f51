package sanitize

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Defaults.
const (
	DefaultMaxValueBytes = 4096
	DefaultMaxBodyBytes  = 1 << 20
	DefaultMaxJSONDepth  = 32
)

var (
	modes    = []string{"block", "detect"}
	checks   = []string{"sqli", "xss"}
	inspects = []string{"path", "query", "cookies", "body"}
)

// Config is the `sanitize` policy's settings.
type Config struct {
	// Mode is block (refuse with 403 waf_blocked) or detect (log, count
	// and forward). Default block.
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// Checks are the injection checks: sqli, xss. Default both.
	Checks []string `yaml:"checks" json:"checks,omitempty"`
	// Inspect are the parts of the request checked: path, query, cookies,
	// body. Default all four.
	Inspect []string `yaml:"inspect" json:"inspect,omitempty"`
	// Headers are request headers whose values are checked too. Default
	// none.
	Headers []string `yaml:"headers" json:"headers,omitempty"`
	// Exclude are query, form, JSON key and cookie names whose values are
	// not checked for sqli/xss (structure still is). Default none.
	Exclude []string `yaml:"exclude" json:"exclude,omitempty"`
	// MaxValueBytes refuses a single value longer than this. Default 4096
	// bytes.
	MaxValueBytes int `yaml:"max_value_bytes" json:"max_value_bytes,omitempty"`
	// MaxBodyBytes refuses a JSON or form body larger than this (bodies of
	// other types are not read). Default 1048576 bytes (1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
	// MaxJSONDepth refuses JSON nested deeper than this. Default 32.
	MaxJSONDepth int `yaml:"max_json_depth" json:"max_json_depth,omitempty"`
}

// Validate checks the vocabularies and bounds, and applies defaults.
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	if c.Mode == "" {
		c.Mode = "block"
	} else if !slices.Contains(modes, c.Mode) {
		errs = append(errs, s.Errorf("mode", "invalid mode %q (want block or detect)", c.Mode))
	}
	oneOf := func(key string, list []string, want []string) {
		for i, v := range list {
			if !slices.Contains(want, v) {
				errs = append(errs, s.Errorf(key+"["+strconv.Itoa(i)+"]", "invalid %s %q (want %s)", key, v, strings.Join(want, ", ")))
			}
		}
	}
	oneOf("checks", c.Checks, checks)
	oneOf("inspect", c.Inspect, inspects)
	if c.Checks == nil {
		c.Checks = checks
	}
	if c.Inspect == nil {
		c.Inspect = inspects
	}
	for i, h := range c.Headers {
		if !validHeaderName(h) {
			errs = append(errs, s.Errorf("headers["+strconv.Itoa(i)+"]", "invalid header name %q", h))
		}
	}
	if c.MaxValueBytes < 0 {
		errs = append(errs, s.Errorf("max_value_bytes", "must not be negative"))
	} else if c.MaxValueBytes == 0 {
		c.MaxValueBytes = DefaultMaxValueBytes
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, s.Errorf("max_body_bytes", "must not be negative"))
	} else if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxJSONDepth < 0 || c.MaxJSONDepth > 1000 {
		errs = append(errs, s.Errorf("max_json_depth", "must be between 1 and 1000"))
	} else if c.MaxJSONDepth == 0 {
		c.MaxJSONDepth = DefaultMaxJSONDepth
	}
	return errs
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return http.CanonicalHeaderKey(h) != ""
}
