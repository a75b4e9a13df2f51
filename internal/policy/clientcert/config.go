package clientcert

import (
	"strconv"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Config is the `client_cert` policy's settings.
type Config struct {
	// AllowSANs, when set, admits only certificates with a subject
	// alternative name matching one of these typed patterns ("DNS:*.svc",
	// "URI:spiffe://prod/*", "email:*@example.com", "IP:10.0.0.1"); '*'
	// matches any run of characters. Default: any verified certificate.
	AllowSANs []string `yaml:"allow_sans" json:"allow_sans,omitempty"`
	// RequireConsumer refuses (403) a certificate that is in no
	// consumer's client_certs. Default false.
	RequireConsumer bool `yaml:"require_consumer" json:"require_consumer,omitempty"`
}

var sanTypes = []string{"DNS", "URI", "email", "IP"}

// Validate checks the SAN patterns.
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	for i, p := range c.AllowSANs {
		typ, val, ok := strings.Cut(p, ":")
		known := false
		for _, t := range sanTypes {
			known = known || strings.EqualFold(t, typ)
		}
		if !ok || !known || val == "" {
			errs = append(errs, s.Errorf("allow_sans["+strconv.Itoa(i)+"]", "SAN pattern %q: want TYPE:VALUE with TYPE one of DNS, URI, email, IP (e.g. \"DNS:*.svc.internal\")", p))
		}
	}
	return errs
}
