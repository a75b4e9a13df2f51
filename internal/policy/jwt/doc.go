// Package jwt is the `jwt` policy: it authenticates a request by a JSON Web
// Token (RFC 7519, compact JWS) signed by the identity provider's key.
//
// Config:
//
//	policies:
//	  auth:
//	    type: jwt
//	    jwks_url: https://idp.example.com/.well-known/jwks.json   # or jwks_file, keys, secret, secret_file
//	    issuer: https://idp.example.com/
//	    audiences: [api]
//	    algorithms: [RS256, ES256]        # default: what the keys allow; never none
//	    leeway: 30s                       # clock skew on exp, nbf, iat (default 30s)
//	    required_claims: [sub]            # exp is always required
//	    header: Authorization             # default; Bearer scheme (RFC 6750)
//	    cookie: session                   # optional fallbacks: a cookie, then
//	    query: access_token               # a query parameter
//	    forward_token: false              # default: the token is removed upstream
//	    forward_claims: {sub: X-User-ID, role: X-User-Role}
//	    consumer_claim: sub               # default sub; "off" for none
//	    roles_claim: roles                # default: none
//	    refresh: 5m                       # default: Cache-Control max-age, else 5m (file: 5s)
//	    cache_size: 10000                 # verified-token cache; 0 turns it off
//
// Keys: RS256/384/512 and PS256/384/512 (RSA, at least 2048 bits),
// ES256/384/512 (EC P-256/384/521) and EdDSA (Ed25519) from jwks_url,
// jwks_file or inline keys (JWK mappings or PEM); HS256/384/512 only with
// an explicit secret or secret_file, never from a key set. Each key
// verifies only the algorithms of its type, which with the parser's
// allowed methods refuses alg none and algorithm confusion.
//
// A jwks_url key set (Keys) is registry state: compile only claims it, the
// first config acquired starts its one goroutine (first fetch at once,
// background refresh, immediate rate-limited re-fetch on an unknown kid,
// the last good set kept on failure), later configs share it, and it
// stops when no config uses it. jwks_file is read at compile and re-read
// on change. Verified tokens are cached by hash until their exp.
//
// Refusals: 401 unauthenticated with WWW-Authenticate: Bearer (RFC 6750;
// error="invalid_token" and an error_description for a bad token). Verified
// claims are recorded on the request (exchange.Exchange.Claims) for later
// policies: rate_limit claim:NAME keys, require_role claim.
//
// Metrics: rampart_jwt_verifications_total{policy, result} and
// rampart_jwks_reads_total{jwks, result}. See docs/policies.md and
// docs/security.md.
package jwt
