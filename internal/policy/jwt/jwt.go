package jwt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
	"github.com/rampart-gw/rampart/internal/policy/apikey"
)

// JWT is a compiled `jwt` policy.
type JWT struct {
	name string
	// keys is bound when the config is acquired (jwks_url, jwks_file) or
	// at compile (keys, secret).
	keys keySource
	// algs are the accepted signing algorithms, in parser form.
	algs     []string
	parser   *gojwt.Parser
	now      func() time.Time
	leeway   time.Duration
	required []string
	issuer   bool // issuer is set

	header   string // canonical
	bearer   bool   // header is Authorization: the Bearer scheme is required
	cookie   string
	query    string
	forward  bool // forward_token
	fwdClaim []string
	fwdName  []string // canonical header names, parallel to fwdClaim
	consumer string   // claim; "" for none
	roles    string   // claim; "" for none

	cache   *tokenCache
	results map[string]prometheus.Counter
	closer  func() // stops keys started without a registry (tests)
}

var (
	_ policy.Policy      = (*JWT)(nil)
	_ policy.ClaimWriter = (*JWT)(nil)
)

// WritesClaims marks the policy as the source of verified claims for the
// policies after it (see policy.ClaimWriter).
func (p *JWT) WritesClaims() {}

// New compiles a `jwt` policy. Key material given inline or in files is
// read and checked now, so that `rampart validate` reports a bad key with
// its position. A JWKS URL is not fetched here (compile does no network
// I/O): its key set is claimed in the registry, shared by every config
// with the same URL and refresh, and starts fetching when the config is
// acquired.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	p := &JWT{name: s.Name, now: time.Now, leeway: DefaultLeeway, header: http.CanonicalHeaderKey(DefaultHeader),
		cookie: c.Cookie, query: c.Query, forward: c.ForwardToken, required: slices.Clone(c.RequiredClaims),
		consumer: DefaultConsumerClaim, roles: c.RolesClaim}
	if c.Leeway != nil {
		p.leeway = c.Leeway.D()
	}
	if c.Header != "" {
		p.header = http.CanonicalHeaderKey(c.Header)
	}
	p.bearer = p.header == "Authorization"
	if cc := c.ConsumerClaim; cc != nil {
		p.consumer = *cc
		if *cc == "off" {
			p.consumer = ""
		}
	}
	for _, claim := range sortedKeys(c.ForwardClaims) {
		p.fwdClaim = append(p.fwdClaim, claim)
		p.fwdName = append(p.fwdName, http.CanonicalHeaderKey(c.ForwardClaims[claim]))
	}
	size := DefaultCacheSize
	if c.CacheSize != nil {
		size = *c.CacheSize
	}
	p.cache = newTokenCache(size)

	// The key source, and the algorithms its keys allow.
	var keyAlgs []string
	switch {
	case c.Secret != "" || c.SecretFile != "":
		secret := []byte(c.Secret)
		if c.SecretFile != "" {
			b, err := os.ReadFile(c.SecretFile)
			if err != nil {
				return nil, config.Errors{s.Errorf("secret_file", "read secret_file: %v", err)}
			}
			secret = bytes.TrimRight(b, "\r\n")
			if len(secret) < MinSecretBytes {
				return nil, config.Errors{s.Errorf("secret_file", "secret in %s must be at least %d bytes (RFC 7518, section 3.2), got %d", c.SecretFile, MinSecretBytes, len(secret))}
			}
		}
		k := secretKey(secret)
		keyAlgs = k.algs
		p.keys = static{newSet([]*key{k})}
	case c.Keys != nil:
		keys := make([]*key, 0, len(c.Keys))
		for i := range c.Keys {
			k, _ := inlineKey(&c.Keys[i]) // checked by Validate
			keys = append(keys, k)
			keyAlgs = union(keyAlgs, k.algs)
		}
		p.keys = static{newSet(keys)}
	case c.JWKSFile != "":
		path, err := filepath.Abs(c.JWKSFile)
		if err != nil {
			path = c.JWKSFile
		}
		seed, stamp, _, err := readJWKSFile(path)
		if err != nil {
			return nil, config.Errors{s.Errorf("jwks_file", "read jwks_file: %v", err)}
		}
		keyAlgs = asymmetricAlgs
		refresh := c.Refresh.D()
		p.claim(s, "jwt|file|"+path+"|"+c.Refresh.String(), func() *Keys {
			return newKeys(path, fileLoader(path, stamp), fileInterval(refresh), seed, s.Log, jwksMetric(s))
		})
	default:
		keyAlgs = asymmetricAlgs
		url, refresh := c.JWKSURL, c.Refresh.D()
		p.claim(s, "jwt|url|"+url+"|"+c.Refresh.String(), func() *Keys {
			client := &http.Client{Timeout: FetchTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone(),
				// A JWKS endpoint that redirects is followed a few times
				// at most, never to another scheme than it started with.
				CheckRedirect: func(req *http.Request, via []*http.Request) error {
					if len(via) >= 3 || req.URL.Scheme != via[0].URL.Scheme {
						return errors.New("too many or cross-scheme redirects")
					}
					return nil
				}}
			k := newKeys(url, httpLoader(url, client), urlInterval(refresh), nil, s.Log, jwksMetric(s))
			k.closeIdle = client.CloseIdleConnections
			return k
		})
	}
	p.algs = keyAlgs
	if c.Algorithms != nil {
		p.algs = nil
		for i, a := range c.Algorithms {
			if !slices.Contains(keyAlgs, a) {
				return nil, config.Errors{s.Errorf("algorithms["+strconv.Itoa(i)+"]", "%s is not allowed by the configured keys (they allow %s)", a, strings.Join(keyAlgs, ", "))}
			}
			p.algs = append(p.algs, a)
		}
	}

	opts := []gojwt.ParserOption{
		gojwt.WithValidMethods(p.algs), // never "none", never HMAC without a secret
		gojwt.WithJSONNumber(),
		gojwt.WithLeeway(p.leeway),
		gojwt.WithIssuedAt(),
		gojwt.WithExpirationRequired(),
		gojwt.WithTimeFunc(func() time.Time { return p.now() }),
	}
	if c.Issuer != "" {
		p.issuer = true
		opts = append(opts, gojwt.WithIssuer(c.Issuer))
	}
	if len(c.Audiences) > 0 {
		opts = append(opts, gojwt.WithAudience(c.Audiences...))
	}
	p.parser = gojwt.NewParser(opts...)

	if s.Metrics != nil {
		p.results = map[string]prometheus.Counter{}
		for _, r := range resultNames {
			p.results[r] = s.Metrics.JWTVerifications.WithLabelValues(s.Name, r)
		}
	}
	return p, nil
}

// claim binds a refreshing key set through the registry, started once the
// config is acquired; without a registry (tests) it is made and started at
// once, and Close stops it.
func (p *JWT) claim(s policy.Spec, key string, mk func() *Keys) {
	policy.Claim(s.Claims, key, mk, func(k *Keys) { p.keys = k })
	if s.Claims == nil {
		k := p.keys.(*Keys)
		k.start()
		p.closer = k.Close
		return
	}
	s.Claims.AfterAcquire(func() { p.keys.(*Keys).start() })
}

// Close stops a key set the policy started without a registry (tests).
// With a registry the set's life is the registry's.
func (p *JWT) Close() {
	if p.closer != nil {
		p.closer()
	}
}

func jwksMetric(s policy.Spec) *prometheus.CounterVec {
	if s.Metrics == nil {
		return nil
	}
	return s.Metrics.JWKSReads
}

// Wrap authenticates the request by its token: forwarded-claim headers
// sent by the client are removed, the token is verified (or found in the
// verified-token cache), its claims are recorded on the request for later
// policies and forwarded upstream.
func (p *JWT) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range p.fwdName {
			delete(r.Header, h) // a client never names itself
		}
		tok, from, f := p.extract(r)
		if f != nil {
			p.count(f.result)
			p.refuse(w, r, f)
			return
		}
		v, f := p.verify(r.Context(), tok)
		if f != nil {
			p.refuse(w, r, f)
			return
		}
		if ex := exchange.From(r.Context()); ex != nil {
			ex.Claims = v.claims
			if v.consumer != "" {
				ex.Consumer = v.consumer
			}
			if p.roles != "" {
				ex.Roles = v.roles
			}
		}
		for i, h := range p.fwdName {
			if vv := v.headers[i]; vv != nil {
				r.Header[h] = vv
			}
		}
		if !p.forward {
			p.strip(r, from)
		}
		next.ServeHTTP(w, r)
	})
}

// Token locations.
const (
	fromNone = iota
	fromHeader
	fromCookie
	fromQuery
)

// extract returns the request's token and where it was: the header, else
// the cookie, else the query parameter (those two when configured).
func (p *JWT) extract(r *http.Request) (tok string, from int, f *failure) {
	if vv := r.Header[p.header]; len(vv) > 0 {
		if len(vv) > 1 {
			return "", fromHeader, failAmbiguous
		}
		tok, ok := p.fromHeader(vv[0])
		if !ok {
			return "", fromHeader, failMissing
		}
		return tok, fromHeader, checkToken(tok)
	}
	if p.cookie != "" {
		if cs := r.CookiesNamed(p.cookie); len(cs) > 0 {
			if len(cs) > 1 {
				return "", fromCookie, failAmbiguous
			}
			return cs[0].Value, fromCookie, checkToken(cs[0].Value)
		}
	}
	if p.query != "" && r.URL != nil {
		if v, n := apikey.QueryValue(r.URL.RawQuery, p.query); n > 0 {
			if n > 1 {
				return "", fromQuery, failAmbiguous
			}
			return v, fromQuery, checkToken(v)
		}
	}
	return "", fromNone, failMissing
}

// fromHeader takes the token out of a header value: after the Bearer
// scheme (RFC 6750, section 2.1; the scheme is case-insensitive) in
// Authorization, else the bare value, with an optional Bearer prefix. ok
// is false when the value holds no bearer token (another scheme, or
// nothing).
func (p *JWT) fromHeader(v string) (string, bool) {
	v = strings.TrimSpace(v)
	const scheme = "bearer"
	if len(v) > len(scheme) && strings.EqualFold(v[:len(scheme)], scheme) && (v[len(scheme)] == ' ' || v[len(scheme)] == '\t') {
		v = strings.TrimLeft(v[len(scheme):], " \t")
	} else if p.bearer {
		return "", false
	}
	return v, v != ""
}

// checkToken refuses what cannot be a compact JWS before any parsing: too
// long, or not three base64url segments.
func checkToken(tok string) *failure {
	if tok == "" {
		return failMissing
	}
	if len(tok) > MaxTokenBytes {
		return failTooLarge
	}
	dots := 0
	for i := 0; i < len(tok); i++ {
		switch c := tok[i]; {
		case c == '.':
			dots++
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return failMalformed
		}
	}
	if dots != 2 {
		return failMalformed
	}
	return nil
}

// strip removes the token from the request sent upstream.
func (p *JWT) strip(r *http.Request, from int) {
	switch from {
	case fromHeader:
		delete(r.Header, p.header)
	case fromCookie:
		removeCookie(r.Header, p.cookie)
	case fromQuery:
		r.URL.RawQuery = apikey.RemoveParam(r.URL.RawQuery, p.query)
	}
}

// removeCookie rewrites the Cookie header without the cookie name.
func removeCookie(h http.Header, name string) {
	vv := h["Cookie"]
	if len(vv) == 0 {
		return
	}
	var kept []string
	for _, v := range vv {
		for part := range strings.SplitSeq(v, ";") {
			p := strings.TrimSpace(part)
			if p == "" {
				continue
			}
			if n, _, _ := strings.Cut(p, "="); strings.TrimSpace(n) == name {
				continue
			}
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{strings.Join(kept, "; ")}
}

// Errors of the key lookup, returned by the parser's key function.
var (
	errNoKeys     = errors.New("no keys")
	errUnknownKey = errors.New("unknown key")
	errKeyAlg     = errors.New("no key for the algorithm")
	errKID        = errors.New("kid is not a string")
)

// verify checks tok, or finds it in the verified-token cache.
func (p *JWT) verify(ctx context.Context, tok string) (*verified, *failure) {
	now := p.now()
	h := tokenHash(tok)
	if v := p.cache.get(h, now, p.keys.current()); v != nil {
		p.count("cached")
		return v, nil
	}
	var used *keySet
	claims := gojwt.MapClaims{}
	t, err := p.parser.ParseWithClaims(tok, claims, func(t *gojwt.Token) (any, error) {
		alg := t.Method.Alg()
		kid := ""
		if v, ok := t.Header["kid"]; ok {
			s, isStr := v.(string)
			if !isStr {
				return nil, errKID
			}
			kid = s
		}
		set := p.keys.current()
		if set == nil || (kid != "" && !set.known(kid)) {
			set = p.keys.demand(ctx, kid)
		}
		used = set
		if set == nil {
			return nil, errNoKeys
		}
		c := set.candidates(kid, alg)
		switch {
		case len(c) == 1:
			return c[0], nil
		case len(c) > 1:
			vks := make([]gojwt.VerificationKey, len(c))
			for i, k := range c {
				vks[i] = k
			}
			return gojwt.VerificationKeySet{Keys: vks}, nil
		case kid != "" && !set.known(kid):
			return nil, errUnknownKey
		}
		return nil, errKeyAlg
	})
	if err != nil {
		f := p.classify(t, claims, err)
		p.count(f.result)
		return nil, f
	}
	for _, name := range p.required {
		if _, ok := claims[name]; !ok {
			f := missingClaim(name)
			p.count(f.result)
			return nil, f
		}
	}
	v := p.entry(claims, used)
	p.cache.put(h, v, now)
	p.count("ok")
	return v, nil
}

// entry builds what the request (and the cache) keeps of a verified token.
func (p *JWT) entry(claims gojwt.MapClaims, set *keySet) *verified {
	v := &verified{set: set, claims: claims, headers: make([][]string, len(p.fwdClaim))}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		v.until = exp.Add(p.leeway)
	}
	if p.consumer != "" {
		if s, ok := policy.ClaimText(claims[p.consumer]); ok && policy.ValidHeaderValue(s) {
			v.consumer = s
		}
	}
	if p.roles != "" {
		v.roles = policy.ClaimStrings(claims[p.roles])
	}
	for i, name := range p.fwdClaim {
		// A value that cannot be a header field (control characters) is
		// not forwarded rather than mangled.
		if s, ok := policy.ClaimText(claims[name]); ok && policy.ValidHeaderValue(s) {
			v.headers[i] = []string{s}[:1:1]
		}
	}
	return v
}

// tokenHash is the SHA-256 of the token, the cache key. It hashes the
// string's bytes in place: converting to []byte would copy the token on
// every request, and Sum256 neither keeps nor changes its input.
func tokenHash(tok string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(tok), len(tok)))
}

func (p *JWT) count(result string) {
	if c := p.results[result]; c != nil {
		c.Inc()
	}
}

// classify turns a parse error into the failure reported to the client.
func (p *JWT) classify(t *gojwt.Token, claims gojwt.MapClaims, err error) *failure {
	switch {
	case errors.Is(err, errNoKeys):
		return failNoKeys
	case errors.Is(err, errUnknownKey):
		return failUnknownKey
	case errors.Is(err, errKeyAlg):
		return failKeyAlg
	case errors.Is(err, errKID):
		return failMalformed
	case errors.Is(err, gojwt.ErrTokenMalformed):
		return failMalformed
	case t != nil && (t.Method == nil || !slices.Contains(p.algs, t.Method.Alg())):
		// alg none, an HMAC alg on a public-key policy, an unknown alg.
		return failAlg
	case errors.Is(err, gojwt.ErrTokenSignatureInvalid):
		return failSignature
	case errors.Is(err, gojwt.ErrTokenExpired):
		return failExpired
	case errors.Is(err, gojwt.ErrTokenNotValidYet):
		return failNotYet
	case errors.Is(err, gojwt.ErrTokenUsedBeforeIssued):
		return failIssuedAt
	case errors.Is(err, gojwt.ErrTokenInvalidIssuer):
		return failIssuer
	case errors.Is(err, gojwt.ErrTokenInvalidAudience):
		return failAudience
	case errors.Is(err, gojwt.ErrTokenRequiredClaimMissing):
		// exp is required; iss and aud are when issuer and audiences
		// are set, and then reported as not accepted.
		switch {
		case claims["exp"] == nil:
			return missingClaim("exp")
		case claims["iss"] == nil && p.issuer:
			return failIssuer
		}
		return failAudience
	}
	return failClaims
}

func union(a, b []string) []string {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}
