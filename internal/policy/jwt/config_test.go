package jwt

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/policy/policytest"
)

// indent prefixes every line of s with n spaces (for YAML block scalars).
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
}

func TestConfigErrors(t *testing.T) {
	testKeys(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	es := newSigner(t, "ES256", "e1")
	goodFile := write("good.json", string(jwks(t, es)))
	garbage := write("garbage.json", "<html>hello</html>")
	octOnly := write("oct.json", `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`)
	shortSecret := write("short.secret", "tooshort\n")
	secret32 := write("ok.secret", strings.Repeat("s", 32)+"\n")
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	privDER, _ := x509.MarshalECPrivateKey(es.priv.(*ecdsa.PrivateKey))
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: privDER}))

	tests := []struct{ name, body, want string }{
		{"jwks_url", "jwks_url: https://idp.example/jwks", ""},
		{"jwks_file", "jwks_file: " + goodFile, ""},
		{"secret", "secret: " + strings.Repeat("x", 32), ""},
		{"secret_file", "secret_file: " + secret32, ""},
		{"every key", "jwks_url: http://127.0.0.1:9/j\n    issuer: https://idp/\n    audiences: [api, web]\n    algorithms: [RS256, ES256]\n" +
			"    leeway: 5s\n    required_claims: [sub, tenant]\n    header: X-Token\n    cookie: session\n    query: access_token\n" +
			"    forward_token: true\n    forward_claims: {sub: X-User-ID, role: X-User-Role}\n    consumer_claim: \"off\"\n" +
			"    roles_claim: roles\n    refresh: 1m\n    cache_size: 0", ""},
		{"no source", "issuer: x", "test.yaml:3:11: policies.a.type: jwt needs a key source"},
		{"two sources", "jwks_url: https://i/j\n    secret: " + strings.Repeat("x", 32), "test.yaml:5:13: policies.a.secret: set only one of jwks_url, jwks_file, keys, secret or secret_file (got jwks_url and secret)"},
		{"bad scheme", "jwks_url: ftp://i/j", `invalid jwks_url "ftp://i/j": scheme must be http or https`},
		{"no host", "jwks_url: https:///j", "no host"},
		{"short secret", "secret: abc", "test.yaml:4:13: policies.a.secret: secret must be at least 32 bytes (RFC 7518, section 3.2), got 3"},
		{"short secret file", "secret_file: " + shortSecret, "must be at least 32 bytes"},
		{"missing secret file", "secret_file: " + filepath.Join(dir, "nope"), "policies.a.secret_file: read secret_file:"},
		{"alg none", "jwks_url: https://i/j\n    algorithms: [none]", `test.yaml:5:18: policies.a.algorithms[0]: algorithm "none" is never accepted`},
		{"hmac with jwks", "jwks_url: https://i/j\n    algorithms: [HS256]", "HS256 needs secret or secret_file: HMAC is never used with keys from jwks_url"},
		{"rsa with secret", "secret: " + strings.Repeat("x", 32) + "\n    algorithms: [RS256]", "RS256 needs public keys"},
		{"unknown alg", "jwks_url: https://i/j\n    algorithms: [RS1]", `unknown algorithm "RS1"`},
		{"alg twice", "jwks_url: https://i/j\n    algorithms: [RS256, RS256]", "listed twice"},
		{"hs512 short secret", "secret: " + strings.Repeat("x", 32) + "\n    algorithms: [HS512]", "HS512 is not allowed by the configured keys (they allow HS256)"},
		{"empty audiences", "jwks_url: https://i/j\n    audiences: []", "audiences must not be empty"},
		{"empty audience", "jwks_url: https://i/j\n    audiences: [\"\"]", "audience must not be empty"},
		{"long leeway", "jwks_url: https://i/j\n    leeway: 1h", "leeway must be at most 10m0s"},
		{"claim twice", "jwks_url: https://i/j\n    required_claims: [sub, sub]", `claim "sub" listed twice`},
		{"bad header", "jwks_url: https://i/j\n    header: \"X Token\"", `invalid header name "X Token"`},
		{"bad cookie", "jwks_url: https://i/j\n    cookie: \"a;b\"", `invalid cookie name "a;b"`},
		{"bad query", "jwks_url: https://i/j\n    query: \"a=b\"", `invalid query parameter name "a=b"`},
		{"forward to host", "jwks_url: https://i/j\n    forward_claims: {sub: Host}", `test.yaml:5:27: policies.a.forward_claims.sub: header "Host" cannot carry a claim`},
		{"forward to request id", "jwks_url: https://i/j\n    forward_claims: {sub: x-request-id}", `cannot carry a claim`},
		{"forward bad name", "jwks_url: https://i/j\n    forward_claims: {sub: \"X User\"}", `invalid header name "X User"`},
		{"forward to token header", "jwks_url: https://i/j\n    forward_claims: {sub: authorization}", `header "authorization" carries the token`},
		{"forward twice", "jwks_url: https://i/j\n    forward_claims: {a: X-A, b: x-a}", `header "x-a" already carries claim "a"`},
		{"refresh with secret", "secret: " + strings.Repeat("x", 32) + "\n    refresh: 1m", "refresh applies to jwks_url and jwks_file only"},
		{"refresh too short", "jwks_url: https://i/j\n    refresh: 10ms", "refresh must be at least 1s"},
		{"cache size", "jwks_url: https://i/j\n    cache_size: -1", "cache_size must be between 0 and"},
		{"consumer claim empty", "jwks_url: https://i/j\n    consumer_claim: \"\"", "consumer_claim must name a claim"},
		{"typo", "jwks_url: https://i/j\n    issuers: [x]", `unknown key "issuers"`},
		{"missing jwks file", "jwks_file: " + filepath.Join(dir, "nope.json"), "test.yaml:4:16: policies.a.jwks_file: read jwks_file:"},
		{"garbage jwks file", "jwks_file: " + garbage, "not a JSON Web Key Set (invalid JSON)"},
		{"symmetric jwks file", "jwks_file: " + octOnly, `no usable signing key in the key set (key 0: symmetric key (kty "oct") refused`},
		{"inline pem", "keys:\n      - |\n" + indent(pemPublic(t, rsaKey.Public()), 8), ""},
		{"inline pem with kid", "keys:\n      - kid: k1\n        alg: ES256\n        pem: |\n" + indent(pemPublic(t, es.priv.Public()), 10), ""},
		{"inline jwk", "keys:\n      - " + string(es.jwk(t, true)), ""},
		{"inline jwk wrong alg", "keys:\n      - " + strings.Replace(string(es.jwk(t, true)), `"ES256"`, `"RS256"`, 1), `test.yaml:5:9: policies.a.keys[0]: alg "RS256" does not fit the key (it allows ES256)`},
		{"inline oct", "keys:\n      - {kty: oct, k: c2VjcmV0}", `symmetric key (kty "oct") refused: HMAC keys come only from secret or secret_file`},
		{"inline private pem", "keys:\n      - |\n" + indent(privPEM, 8), `PEM block "EC PRIVATE KEY" is not a public key or certificate`},
		{"inline short rsa", "keys:\n      - |\n" + indent(pemPublic(t, small.Public()), 8), "RSA key of 1024 bits is too short (at least 2048)"},
		{"inline not pem", "keys: [hello]", "no PEM block"},
		{"inline pem unknown key", "keys:\n      - {pem: x, use: sig}", `unknown key "use" next to pem`},
		{"inline empty", "keys: []", "keys must list at least one key"},
		{"inline jwk enc", "keys:\n      - " + strings.Replace(string(es.jwk(t, false)), `"sig"`, `"enc"`, 1), `key use "enc" is not sig`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "policies:\n  a:\n    type: jwt\n    " + tc.body + "\n"
			p, err := New(policytest.Spec(t, doc, "a"))
			policytest.WantError(t, err, tc.want)
			if p != nil {
				p.(*JWT).Close()
			}
		})
	}
}

// TestConfigDefaults checks the defaults a minimal config gets.
func TestConfigDefaults(t *testing.T) {
	p, err := New(policytest.Spec(t, "policies:\n  a:\n    type: jwt\n    secret: "+strings.Repeat("k", 64)+"\n", "a"))
	if err != nil {
		t.Fatal(err)
	}
	j := p.(*JWT)
	if j.leeway != DefaultLeeway || j.header != "Authorization" || !j.bearer || j.consumer != "sub" || j.cache.max != DefaultCacheSize {
		t.Fatalf("defaults: leeway %v header %q bearer %v consumer %q cache %d", j.leeway, j.header, j.bearer, j.consumer, j.cache.max)
	}
	if strings.Join(j.algs, ",") != "HS256,HS384,HS512" {
		t.Fatalf("algs %v", j.algs)
	}
}
