package cors

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Config is the `cors` policy's settings.
type Config struct {
	// AllowOrigins are the allowed origins ("https://app.example.com"), or
	// "*" for any. Required.
	AllowOrigins []string `yaml:"allow_origins" json:"allow_origins"`
	// AllowMethods are the methods a preflight may ask for. Default GET,
	// HEAD, POST.
	AllowMethods []string `yaml:"allow_methods" json:"allow_methods,omitempty"`
	// AllowHeaders are the request headers a preflight may ask for; "*"
	// allows any. Default: only the CORS-safelisted headers.
	AllowHeaders []string `yaml:"allow_headers" json:"allow_headers,omitempty"`
	// ExposeHeaders are response headers scripts may read.
	ExposeHeaders []string `yaml:"expose_headers" json:"expose_headers,omitempty"`
	// AllowCredentials lets browsers send cookies and credentials. Default
	// false; it cannot be combined with the "*" origin.
	AllowCredentials bool `yaml:"allow_credentials" json:"allow_credentials,omitempty"`
	// MaxAge is how long browsers may cache a preflight answer (whole
	// seconds). Default: not sent (browsers use 5s).
	MaxAge config.Duration `yaml:"max_age" json:"max_age,omitempty"`
}

// Validate checks origins, methods and header names.
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	if len(c.AllowOrigins) == 0 {
		errs = append(errs, s.Errorf("allow_origins", "allow_origins is required (exact origins such as https://app.example.com, or \"*\")"))
	}
	for i, o := range c.AllowOrigins {
		p := "allow_origins[" + strconv.Itoa(i) + "]"
		if o == "*" {
			if c.AllowCredentials {
				errs = append(errs, s.Errorf(p, `"*" cannot be combined with allow_credentials: list the origins`))
			}
			continue
		}
		if err := checkOrigin(o); err != "" {
			errs = append(errs, s.Errorf(p, "invalid origin %q: %s", o, err))
		}
	}
	for i, m := range c.AllowMethods {
		if !policy.ValidHeaderName(m) {
			errs = append(errs, s.Errorf("allow_methods["+strconv.Itoa(i)+"]", "invalid method %q", m))
		}
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"allow_headers", c.AllowHeaders}, {"expose_headers", c.ExposeHeaders}} {
		for i, h := range l.list {
			if h == "*" && c.AllowCredentials {
				// Fetch: with credentials "*" is the literal header name "*".
				errs = append(errs, s.Errorf(l.key+"["+strconv.Itoa(i)+"]", `"*" cannot be combined with allow_credentials: list the headers`))
				continue
			}
			if !policy.ValidHeaderName(h) {
				errs = append(errs, s.Errorf(l.key+"["+strconv.Itoa(i)+"]", "invalid header name %q", h))
			}
		}
	}
	return errs
}

// checkOrigin returns why o is not a serialized origin (scheme://host[:port]),
// or "".
func checkOrigin(o string) string {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return "not a URL"
	case u.Scheme == "" || u.Host == "":
		return "want scheme://host[:port]"
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(o, "/"):
		return "an origin has no path, query or user (want scheme://host[:port])"
	case strings.Contains(u.Host, "*"):
		return `wildcards are not supported inside an origin; use "*" alone or list the origins`
	}
	return ""
}
