package jwt

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/rampart-gw/rampart/internal/policy/policytest"
)

// FuzzToken feeds arbitrary Authorization, cookie and query values and
// tokens through extraction and verification: no panic, every refusal is
// one of the policy's failures, and a verified token never comes out of
// input that was not signed with the secret.
func FuzzToken(f *testing.F) {
	secret := strings.Repeat("s", 32)
	valid, _ := gojwt.NewWithClaims(gojwt.SigningMethodHS256, claimsFor(testIss, testAud, nil)).SignedString([]byte(secret))
	for _, s := range []string{valid, "Bearer " + valid, "bearer\t" + valid, "a.b.c", "..", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat(".", 3),
		"eyJhbGciOiJIUzI1NiIsImtpZCI6WzFdfQ.e30.AAAA", "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOiJzb29uIn0.AAAA", "Basic dTpw"} {
		f.Add(s, "session="+s, "access_token="+s)
	}
	doc := "policies:\n  a:\n    type: jwt\n    secret: " + secret + "\n    cookie: session\n    query: access_token\n    required_claims: [sub]\n"
	p, err := New(policytest.Spec(f, doc, "a"))
	if err != nil {
		f.Fatal(err)
	}
	j := p.(*JWT)
	j.cache = nil
	known := map[*failure]bool{failMissing: true, failAmbiguous: true, failTooLarge: true, failMalformed: true, failAlg: true,
		failUnknownKey: true, failKeyAlg: true, failSignature: true, failExpired: true, failNotYet: true, failIssuedAt: true,
		failIssuer: true, failAudience: true, failClaims: true}
	f.Fuzz(func(t *testing.T, authz, cookie, query string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{authz}
		r.Header["Cookie"] = []string{cookie}
		r.URL.RawQuery = query
		tok, _, fl := j.extract(r)
		if fl != nil {
			return
		}
		v, fl := j.verify(context.Background(), tok)
		switch {
		case fl != nil && !known[fl] && fl.result != "claims":
			t.Fatalf("unexpected failure %+v", fl)
		case fl == nil && v == nil:
			t.Fatal("neither verified nor refused")
		case fl == nil:
			// Verified: the signature checked out with the secret, so
			// the claims must be the ones signed (modulo base64
			// malleability of the last characters).
			if v.claims["sub"] != "user-1" {
				t.Fatalf("verified forged claims %v", v.claims)
			}
		}
		removeCookie(r.Header, "session")
		for _, c := range r.Cookies() {
			if c.Name == "session" {
				t.Fatalf("cookie %q survived removal", cookie)
			}
		}
	})
}
