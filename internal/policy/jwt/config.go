package jwt

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Config is the `jwt` policy's settings. Exactly one key source is set:
// jwks_url, jwks_file, keys, secret or secret_file.
type Config struct {
	// JWKSURL is where the identity provider publishes its JSON Web Key
	// Set (http or https). Fetched when the config starts serving, cached,
	// refreshed in the background and re-fetched at once (rate limited) on
	// a token signed by an unknown key.
	JWKSURL string `yaml:"jwks_url" json:"jwks_url,omitempty"`
	// JWKSFile is a JWKS on disk, read when the config is loaded and
	// re-read when it changes (checked every `refresh`, default 5s).
	JWKSFile string `yaml:"jwks_file" json:"jwks_file,omitempty"`
	// Keys are inline public keys: JWK objects ({kty: RSA, n: ..., e: ...})
	// or PEM strings (a PUBLIC KEY or a CERTIFICATE block).
	Keys []yaml.Node `yaml:"keys" json:"-"`
	// Secret is the shared secret for HS256/384/512 tokens, at least 32
	// bytes. HMAC is only ever used with an explicitly configured secret.
	Secret string `yaml:"secret" json:"secret,omitempty"`
	// SecretFile holds the secret (a trailing newline is dropped); read
	// when the config is compiled: at start and on every reload.
	SecretFile string `yaml:"secret_file" json:"secret_file,omitempty"`

	// Issuer, when set, must equal the token's iss claim.
	Issuer string `yaml:"issuer" json:"issuer,omitempty"`
	// Audiences, when set: the token's aud claim must hold one of them.
	Audiences []string `yaml:"audiences" json:"audiences,omitempty"`
	// Algorithms restricts the accepted signing algorithms. Default: every
	// algorithm the keys allow (RS*, PS*, ES*, EdDSA for public keys; HS*
	// for a secret). "none" is never accepted.
	Algorithms []string `yaml:"algorithms" json:"algorithms,omitempty"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30s.
	Leeway *config.Duration `yaml:"leeway" json:"leeway,omitempty"`
	// RequiredClaims must be present in every token (exp always is).
	RequiredClaims []string `yaml:"required_claims" json:"required_claims,omitempty"`

	// Header carries the token. Default Authorization, where the token
	// follows the Bearer scheme (RFC 6750); any other header carries the
	// bare token (a "Bearer " prefix is accepted too).
	Header string `yaml:"header" json:"header,omitempty"`
	// Cookie, when set, is a cookie that may carry the token when the
	// header is absent.
	Cookie string `yaml:"cookie" json:"cookie,omitempty"`
	// Query, when set, is a query parameter that may carry the token when
	// neither the header nor the cookie does.
	Query string `yaml:"query" json:"query,omitempty"`
	// ForwardToken keeps the token on the request sent upstream. Default
	// false: the header, cookie or query parameter that carried it is
	// removed.
	ForwardToken bool `yaml:"forward_token" json:"forward_token,omitempty"`

	// ForwardClaims maps a claim to the request header that carries its
	// value upstream ({sub: X-User-ID}). A client-sent header of those
	// names is always removed.
	ForwardClaims map[string]string `yaml:"forward_claims" json:"forward_claims,omitempty"`
	// ConsumerClaim names the claim recorded as the request's consumer
	// (access log, rate_limit key consumer). Default sub; "off" records
	// none.
	ConsumerClaim *string `yaml:"consumer_claim" json:"consumer_claim,omitempty"`
	// RolesClaim, when set, names a claim (an array of strings, or a
	// space-separated string) recorded as the request's roles, for
	// rate_limit by_role and require_role without claim. Default: none.
	RolesClaim string `yaml:"roles_claim" json:"roles_claim,omitempty"`

	// Refresh is how often the key set is re-read in the background: for
	// jwks_url, default the response's Cache-Control max-age (clamped to
	// 1m..24h) or 5m without one; for jwks_file, default 5s.
	Refresh config.Duration `yaml:"refresh" json:"refresh,omitempty"`
	// CacheSize bounds the verified-token cache (entries). Default 10000;
	// 0 turns the cache off.
	CacheSize *int `yaml:"cache_size" json:"cache_size,omitempty"`
}

// Defaults and bounds. Each is documented on its field and in doc.go.
const (
	DefaultLeeway        = 30 * time.Second
	DefaultHeader        = "Authorization"
	DefaultConsumerClaim = "sub"
	DefaultURLRefresh    = 5 * time.Minute
	DefaultFileRefresh   = 5 * time.Second
	DefaultCacheSize     = 10_000

	// MinMaxAge and MaxMaxAge clamp a JWKS response's Cache-Control
	// max-age when refresh is not set: an IdP that says no-cache is not
	// polled every second, one that says a week is still re-read daily.
	MinMaxAge = time.Minute
	MaxMaxAge = 24 * time.Hour
	// DemandInterval is the rate limit of re-fetches caused by tokens with
	// an unknown kid: at most one per DemandInterval per key set, however
	// many such tokens arrive (a flood of random kids cannot hammer the
	// IdP). The first unknown kid after a quiet period is fetched at once.
	DemandInterval = 10 * time.Second
	// FetchTimeout bounds one JWKS fetch.
	FetchTimeout = 5 * time.Second
	// MaxJWKSBytes bounds a JWKS document; MaxKeys the keys kept from it.
	MaxJWKSBytes = 1 << 20
	MaxKeys      = 100
	// MaxTokenBytes bounds a token; a longer one is refused unparsed.
	MaxTokenBytes = 16 << 10
	// MinSecretBytes is the shortest HMAC secret (RFC 7518, section 3.2:
	// at least the hash size; 32 bytes for HS256).
	MinSecretBytes = 32
	// MinRSABits is the smallest RSA key accepted.
	MinRSABits = 2048

	maxLeeway    = 10 * time.Minute
	minRefresh   = time.Second
	maxCacheSize = 10_000_000
)

// Signing algorithms (RFC 7518, RFC 8037).
var (
	asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	hmacAlgs       = []string{"HS256", "HS384", "HS512"}
)

// Algorithms returns every signing algorithm the algorithms key may name
// (the config's JSON Schema lists them).
func Algorithms() []string { return slices.Concat(asymmetricAlgs, hmacAlgs) }

// sources names the key sources that are set.
func (c *Config) sources() []string {
	var out []string
	if c.JWKSURL != "" {
		out = append(out, "jwks_url")
	}
	if c.JWKSFile != "" {
		out = append(out, "jwks_file")
	}
	if c.Keys != nil {
		out = append(out, "keys")
	}
	if c.Secret != "" {
		out = append(out, "secret")
	}
	if c.SecretFile != "" {
		out = append(out, "secret_file")
	}
	return out
}

// symmetric reports whether the key source is a shared secret.
func (c *Config) symmetric() bool { return c.Secret != "" || c.SecretFile != "" }

// Validate checks every setting that needs no file: the key source, the
// algorithms, claims, token location, forwarded headers and bounds. Files
// (jwks_file, secret_file) are read and checked by New.
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	add := func(rel, format string, args ...any) { errs = append(errs, s.Errorf(rel, format, args...)) }

	switch src := c.sources(); len(src) {
	case 0:
		add("type", "jwt needs a key source: jwks_url, jwks_file, keys, secret or secret_file")
	case 1:
	default:
		add(src[1], "set only one of jwks_url, jwks_file, keys, secret or secret_file (got %s)", strings.Join(src, " and "))
	}
	if c.JWKSURL != "" {
		if msg := checkURL(c.JWKSURL); msg != "" {
			add("jwks_url", "invalid jwks_url %q: %s", c.JWKSURL, msg)
		}
	}
	if c.Keys != nil {
		if len(c.Keys) == 0 {
			add("keys", "keys must list at least one key")
		}
		if len(c.Keys) > MaxKeys {
			add("keys", "keys lists %d keys, at most %d", len(c.Keys), MaxKeys)
		}
		for i := range c.Keys {
			if _, err := inlineKey(&c.Keys[i]); err != nil {
				add("keys["+strconv.Itoa(i)+"]", "%v", err)
			}
		}
	}
	if c.Secret != "" && len(c.Secret) < MinSecretBytes {
		add("secret", "secret must be at least %d bytes (RFC 7518, section 3.2), got %d", MinSecretBytes, len(c.Secret))
	}
	if c.Refresh != 0 {
		switch {
		case c.JWKSURL == "" && c.JWKSFile == "":
			add("refresh", "refresh applies to jwks_url and jwks_file only")
		case c.Refresh.D() < minRefresh:
			add("refresh", "refresh must be at least %s", minRefresh)
		}
	}

	seenAlg := map[string]bool{}
	for i, a := range c.Algorithms {
		p := "algorithms[" + strconv.Itoa(i) + "]"
		switch {
		case strings.EqualFold(a, "none"):
			add(p, `algorithm "none" is never accepted: unsigned tokens prove nothing`)
		case slices.Contains(hmacAlgs, a):
			if !c.symmetric() && len(c.sources()) > 0 {
				add(p, "%s needs secret or secret_file: HMAC is never used with keys from %s", a, c.sources()[0])
			}
		case slices.Contains(asymmetricAlgs, a):
			if c.symmetric() {
				add(p, "%s needs public keys (jwks_url, jwks_file or keys), not a secret", a)
			}
		default:
			add(p, "unknown algorithm %q (want %s or %s)", a, strings.Join(asymmetricAlgs, ", "), strings.Join(hmacAlgs, ", "))
		}
		if seenAlg[a] {
			add(p, "algorithm %q listed twice", a)
		}
		seenAlg[a] = true
	}
	if c.Algorithms != nil && len(c.Algorithms) == 0 {
		add("algorithms", "algorithms must not be empty (leave it out to accept every algorithm the keys allow)")
	}

	for i, a := range c.Audiences {
		if a == "" {
			add("audiences["+strconv.Itoa(i)+"]", "audience must not be empty")
		}
	}
	if c.Audiences != nil && len(c.Audiences) == 0 {
		add("audiences", "audiences must not be empty (leave it out to accept any audience)")
	}
	if c.Leeway != nil && c.Leeway.D() > maxLeeway {
		add("leeway", "leeway must be at most %s", maxLeeway)
	}
	seenClaim := map[string]bool{}
	for i, name := range c.RequiredClaims {
		p := "required_claims[" + strconv.Itoa(i) + "]"
		if name == "" {
			add(p, "claim name must not be empty")
		} else if seenClaim[name] {
			add(p, "claim %q listed twice", name)
		}
		seenClaim[name] = true
	}

	if c.Header != "" && !policy.ValidHeaderName(c.Header) {
		add("header", "invalid header name %q", c.Header)
	}
	if c.Cookie != "" && !policy.ValidHeaderName(c.Cookie) { // a cookie name is a token (RFC 6265, section 4.1.1)
		add("cookie", "invalid cookie name %q", c.Cookie)
	}
	if c.Query != "" && strings.ContainsAny(c.Query, "&=#? \t") {
		add("query", "invalid query parameter name %q", c.Query)
	}

	header := strings.ToLower(c.Header)
	if header == "" {
		header = strings.ToLower(DefaultHeader)
	}
	seenHeader := map[string]string{}
	for _, claim := range sortedKeys(c.ForwardClaims) {
		h := c.ForwardClaims[claim]
		p := "forward_claims." + claim
		switch lh := strings.ToLower(h); {
		case claim == "":
			add("forward_claims", "claim name must not be empty")
		case !policy.ValidHeaderName(h):
			add(p, "invalid header name %q", h)
		case reservedHeader(lh) || (s.Config != nil && strings.EqualFold(h, s.Config.Observability.RequestIDHeader)):
			add(p, "header %q cannot carry a claim", h)
		case lh == header:
			add(p, "header %q carries the token", h)
		case seenHeader[lh] != "":
			add(p, "header %q already carries claim %q", h, seenHeader[lh])
		default:
			seenHeader[lh] = claim
		}
	}
	if c.ConsumerClaim != nil && *c.ConsumerClaim == "" {
		add("consumer_claim", `consumer_claim must name a claim (or "off")`)
	}
	if c.CacheSize != nil && (*c.CacheSize < 0 || *c.CacheSize > maxCacheSize) {
		add("cache_size", "cache_size must be between 0 and %d", maxCacheSize)
	}
	return errs
}

// checkURL returns what is wrong with a JWKS URL, or "".
func checkURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "scheme must be http or https"
	case u.Host == "":
		return "no host"
	case u.User != nil:
		return "credentials in the URL are not supported"
	case u.Fragment != "":
		return "a fragment is not sent to the server"
	}
	return ""
}

// reservedHeader reports whether a (lower-case) header is one the gateway
// or HTTP framing owns, which a claim must not set.
func reservedHeader(h string) bool {
	switch h {
	case "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
		"proxy-connection", "proxy-authorization", "cookie", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
		"forwarded", "traceparent", "tracestate":
		return true
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
