// Package jwt is the `jwt` policy: it authenticates a request by a JSON Web
// Token (RFC 7519) signed by a key of the identity provider.
//
// Config:
//
//	policies:
//	  auth:
//	    type: jwt
//	    jwks_url: https://idp.example.com/.well-known/jwks.json   # or jwks_file, keys, secret, secret_file
//	    issuer: https://idp.example.com/
//	    audiences: [api]
//	    leeway: 30s                       # clock skew on exp, nbf, iat (default 30s)
//	    required_claims: [sub]            # exp is always required
//	    forward_claims: {sub: X-User-ID, role: X-User-Role}
//
// See docs/security.md for every key and the behaviour in full.
package jwt
