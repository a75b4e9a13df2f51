package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// redacted replaces secrets in JSON().
const redacted = "[redacted]"

// JSON returns the config as indented JSON with secrets redacted: consumer
// API keys, and policy settings named keys, secret, password, token or
// api_keys (or ending in _secret, _password or _token). Policies appear as
// their type plus their settings as written.
func (c *Config) JSON() ([]byte, error) {
	m, err := c.plain(true)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(m, "", "  ")
}

// Redacted returns the config as JSON() writes it, as maps and slices:
// policies as their type plus their settings, secrets redacted.
func (c *Config) Redacted() (map[string]any, error) { return c.plain(true) }

// Version returns a short content hash of the config: the first 12 hex
// digits of the SHA-256 of its canonical (compact, sorted, unredacted)
// JSON. Equal configs have equal versions whatever their formatting.
func (c *Config) Version() string {
	m, err := c.plain(false)
	if err != nil {
		return "unknown"
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}

// plain converts c into maps and slices that encoding/json writes with
// sorted keys, with the policy settings filled in.
func (c *Config) plain(redact bool) (map[string]any, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	if len(c.Policies) > 0 {
		pols := make(map[string]any, len(c.Policies))
		// One budget for all policies: aliases may repeat a large spec
		// under many names.
		budget := maxNodes
		for name, p := range c.Policies {
			if p == nil {
				pols[name] = nil
				continue
			}
			spec, _ := plain(p.Spec, &budget, 0).(map[string]any)
			if spec == nil {
				spec = map[string]any{}
			}
			spec["type"] = p.Type
			if redact {
				redactSecrets(spec)
			}
			pols[name] = spec
		}
		m["policies"] = pols
	}
	if cs, ok := m["consumers"].([]any); ok && redact {
		for _, item := range cs {
			if cm, ok := item.(map[string]any); ok && cm["api_keys"] != nil {
				cm["api_keys"] = redactValue(cm["api_keys"])
			}
		}
	}
	return m, nil
}

// secretKey reports whether a setting named k holds a secret.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	switch k {
	case "keys", "secret", "password", "token", "api_keys":
		return true
	}
	return strings.HasSuffix(k, "_secret") || strings.HasSuffix(k, "_password") || strings.HasSuffix(k, "_token")
}

// redactSecrets replaces, at any depth, the values of secret settings.
func redactSecrets(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, val := range v {
			if secretKey(k) {
				v[k] = redactValue(val)
			} else {
				redactSecrets(val)
			}
		}
	case []any:
		for _, item := range v {
			redactSecrets(item)
		}
	}
}

// redactValue hides a secret but keeps the shape of a list, so that a
// reader can still see how many there are.
func redactValue(v any) any {
	if s, ok := v.([]any); ok {
		out := make([]any, len(s))
		for i := range s {
			out[i] = redacted
		}
		return out
	}
	if v == nil {
		return nil
	}
	return redacted
}
