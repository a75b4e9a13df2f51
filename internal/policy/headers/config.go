package headers

import (
	"net/http"
	"slices"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Config is the `headers` policy's settings.
type Config struct {
	// Request changes the headers sent upstream.
	Request Changes `yaml:"request" json:"request"`
	// Response changes the headers sent to the client.
	Response Changes `yaml:"response" json:"response"`
}

// Changes is one side's edits, applied in the order remove, set, add.
type Changes struct {
	// Set replaces every value of each header with the given one.
	Set map[string]string `yaml:"set" json:"set,omitempty"`
	// Add appends a value to each header.
	Add map[string]string `yaml:"add" json:"add,omitempty"`
	// Remove deletes each header.
	Remove []string `yaml:"remove" json:"remove,omitempty"`
}

// managed are headers the gateway frames messages with; editing them would
// corrupt the exchange (RFC 9110, section 7.6.1 for the hop-by-hop ones).
var managed = []string{"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
	"Proxy-Connection", "Te", "Trailer", "Upgrade"}

// Validate checks every header name and value.
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	errs = c.Request.validate(s, "request", true, errs)
	errs = c.Response.validate(s, "response", false, errs)
	return errs
}

func (ch *Changes) validate(s policy.Spec, side string, request bool, errs config.Errors) config.Errors {
	name := func(path, n string) {
		switch {
		case !policy.ValidHeaderName(n):
			errs = append(errs, s.Errorf(path, "invalid header name %q", n))
		case slices.Contains(managed, http.CanonicalHeaderKey(n)):
			errs = append(errs, s.Errorf(path, "header %s is managed by the gateway and cannot be changed", n))
		case !request && http.CanonicalHeaderKey(n) == "Host":
			errs = append(errs, s.Errorf(path, "Host is not a response header"))
		}
	}
	for _, op := range []struct {
		key string
		m   map[string]string
	}{{"set", ch.Set}, {"add", ch.Add}} {
		for _, k := range sortedKeys(op.m) {
			p := side + "." + op.key + "." + k
			name(p, k)
			if !policy.ValidHeaderValue(op.m[k]) {
				errs = append(errs, s.Errorf(p, "header %s: value contains control characters", k))
			}
			if request && http.CanonicalHeaderKey(k) == "Host" && (op.key == "add" || op.m[k] == "") {
				errs = append(errs, s.Errorf(p, "Host can only be set, to a non-empty value"))
			}
		}
	}
	for i, k := range ch.Remove {
		p := side + ".remove[" + itoa(i) + "]"
		name(p, k)
		if request && http.CanonicalHeaderKey(k) == "Host" {
			errs = append(errs, s.Errorf(p, "Host cannot be removed"))
		}
	}
	return errs
}
