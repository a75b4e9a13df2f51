package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	gojwt "github.com/golang-jwt/jwt/v5"
)

// idp is a real JWKS endpoint on 127.0.0.1 with keys made in the test.
type idp struct {
	srv  *httptest.Server
	doc  atomic.Pointer[[]byte]
	hits atomic.Int64
}

func newIdP(t *testing.T) *idp {
	i := &idp{}
	i.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.hits.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(*i.doc.Load())
	}))
	t.Cleanup(i.srv.Close)
	return i
}

// publish makes the IdP serve exactly these keys.
func (i *idp) publish(t *testing.T, keys ...*idpKey) {
	var raw []json.RawMessage
	for _, k := range keys {
		j, err := jwkset.NewJWKFromKey(k.priv.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.method.Alg()), USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(j.Marshal())
		raw = append(raw, b)
	}
	b, _ := json.Marshal(map[string]any{"keys": raw})
	i.doc.Store(&b)
}

type idpKey struct {
	kid    string
	priv   interface{ Public() any }
	signer any
	method gojwt.SigningMethod
}

func rsaIdPKey(t *testing.T, kid string) *idpKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &idpKey{kid: kid, priv: publicOf{k.Public()}, signer: k, method: gojwt.SigningMethodRS256}
}

func ecIdPKey(t *testing.T, kid string) *idpKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &idpKey{kid: kid, priv: publicOf{k.Public()}, signer: k, method: gojwt.SigningMethodES256}
}

type publicOf struct{ pub any }

func (p publicOf) Public() any { return p.pub }

// token signs claims (over valid defaults for the test issuer).
func (k *idpKey) token(t *testing.T, claims gojwt.MapClaims) string {
	c := gojwt.MapClaims{"iss": "https://idp.test/", "aud": "api", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
	for n, v := range claims {
		c[n] = v
	}
	tok := gojwt.NewWithClaims(k.method, c)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJWT runs the jwt policy in a real gateway against a real JWKS
// server: verification, forwarded claims with a spoofed client copy, a
// role from a claim, a rate limit by claim:sub, key rotation at the IdP,
// a reload that keeps the key set, and the IdP going down.
func TestJWT(t *testing.T) {
	up := newUpstream(t)
	idp := newIdP(t)
	k1 := rsaIdPKey(t, "k1")
	idp.publish(t, k1)
	cfg := func(extra string) string {
		return fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: api, match: {path: {prefix: /api/}}, upstream: echo, policies: [auth, per-user]}
  - {name: admin, match: {path: {prefix: /admin/}}, upstream: echo, policies: [auth, admins]}
%s
policies:
  auth:
    type: jwt
    jwks_url: %s/.well-known/jwks.json
    issuer: https://idp.test/
    audiences: [api]
    forward_claims: {sub: X-User-ID, roles: X-User-Roles}
  per-user: {type: rate_limit, key: claim:sub, rate: 3/h, burst: 3}
  admins: {type: require_role, any_of: [admin], claim: roles}
`, up.addr, extra, idp.srv.URL)
	}
	g := startGateway(t, cfg(""))
	c := newClient(t)
	bearer := func(tok string) string { return "Authorization: Bearer " + tok }

	t.Run("valid token, claims forwarded, spoofed copy stripped", func(t *testing.T) {
		resp, b := send(t, c, "GET", g.URL+"/api/x", bearer(k1.token(t, gojwt.MapClaims{"roles": []string{"dev"}})), "X-User-ID: mallory", "X-User-Roles: admin")
		s := decodeSeen(t, resp, b)
		if got := s.Header.Values("X-User-Id"); len(got) != 1 || got[0] != "alice" {
			t.Errorf("X-User-ID %q, want [alice]", got)
		}
		if got := s.Header.Values("X-User-Roles"); len(got) != 1 || got[0] != "dev" {
			t.Errorf("X-User-Roles %q, want [dev]", got)
		}
		if s.Header.Get("Authorization") != "" {
			t.Error("token forwarded upstream")
		}
	})
	t.Run("refusals never reach the upstream", func(t *testing.T) {
		before := up.calls.Load()
		for _, tc := range []struct{ name, header, desc string }{
			{"missing", "", ""},
			{"garbage", bearer("garbage"), "malformed token"},
			{"expired", bearer(k1.token(t, gojwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()})), "token expired"},
			{"wrong audience", bearer(k1.token(t, gojwt.MapClaims{"aud": "other"})), "token audience not accepted"},
		} {
			var hdrs []string
			if tc.header != "" {
				hdrs = append(hdrs, tc.header)
			}
			resp, b := send(t, c, "GET", g.URL+"/api/x", hdrs...)
			checkError(t, resp, b, 401, "unauthenticated")
			want := `Bearer realm="rampart"`
			if tc.desc != "" {
				want += `, error="invalid_token", error_description="` + tc.desc + `"`
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("%s: WWW-Authenticate %q, want %q", tc.name, got, want)
			}
		}
		if up.calls.Load() != before {
			t.Fatal("a refused request reached the upstream")
		}
	})
	t.Run("role from a claim", func(t *testing.T) {
		resp, b := send(t, c, "GET", g.URL+"/admin/x", bearer(k1.token(t, gojwt.MapClaims{"sub": "root", "roles": "ops admin"})))
		decodeSeen(t, resp, b)
		resp, b = send(t, c, "GET", g.URL+"/admin/x", bearer(k1.token(t, gojwt.MapClaims{"sub": "root", "roles": []string{"dev"}})))
		checkError(t, resp, b, 403, "forbidden")
	})
	t.Run("rate limit by claim:sub", func(t *testing.T) {
		// bob's bucket is his own whatever token he presents; carol's is
		// untouched by bob's.
		for i := range 3 {
			resp, b := send(t, c, "GET", g.URL+"/api/x", bearer(k1.token(t, gojwt.MapClaims{"sub": "bob", "jti": i})))
			decodeSeen(t, resp, b)
		}
		resp, b := send(t, c, "GET", g.URL+"/api/x", bearer(k1.token(t, gojwt.MapClaims{"sub": "bob", "jti": "new"})))
		checkError(t, resp, b, 429, "rate_limited")
		resp, b = send(t, c, "GET", g.URL+"/api/x", bearer(k1.token(t, gojwt.MapClaims{"sub": "carol"})))
		decodeSeen(t, resp, b)
	})
	k2 := ecIdPKey(t, "k2")
	t.Run("rotation picked up at the first unknown kid", func(t *testing.T) {
		idp.publish(t, k2)
		hits := idp.hits.Load()
		resp, b := send(t, c, "GET", g.URL+"/api/x", bearer(k2.token(t, gojwt.MapClaims{"sub": "dave"})))
		decodeSeen(t, resp, b)
		if idp.hits.Load() != hits+1 {
			t.Fatalf("JWKS fetched %d times for the rotation, want 1", idp.hits.Load()-hits)
		}
	})
	t.Run("reload keeps the key set; IdP down keeps serving", func(t *testing.T) {
		hits := idp.hits.Load()
		g.reload(t, cfg("  - {name: other, match: {path: {prefix: /other/}}, upstream: echo, policies: [auth]}"))
		idp.srv.Close() // the IdP goes down
		resp, b := send(t, c, "GET", g.URL+"/other/x", bearer(k2.token(t, gojwt.MapClaims{"sub": "erin"})))
		decodeSeen(t, resp, b)
		resp, b = send(t, c, "GET", g.URL+"/other/x")
		checkError(t, resp, b, 401, "unauthenticated")
		if idp.hits.Load() != hits {
			t.Fatalf("the reload fetched the key set again (%d)", idp.hits.Load()-hits)
		}
	})
}
