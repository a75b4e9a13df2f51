package jwt

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy/policytest"
	"github.com/rampart-gw/rampart/internal/registry"
)

const (
	testIss = "https://idp.test/"
	testAud = "api"
)

// build compiles the jwt policy named "a" from body (the keys under
// `type: jwt`) with a real registry: its key set is acquired as a serving
// config acquires it, and released at the end of the test.
func build(t testing.TB, body string) *JWT {
	t.Helper()
	doc := "policies:\n  a:\n    type: jwt\n    " + strings.ReplaceAll(strings.TrimSpace(body), "\n", "\n    ") + "\n"
	s := policytest.Spec(t, doc, "a")
	claims := &registry.Claims{}
	s.Claims = claims
	p, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New()
	claims.Acquire(reg)
	t.Cleanup(func() { claims.Release(); reg.Close() })
	return p.(*JWT)
}

// result is what a request through the policy came to.
type result struct {
	rec *httptest.ResponseRecorder
	ex  *exchange.Exchange
	up  *policytest.Upstream
}

func (res result) passed() bool { return res.up.Calls == 1 }

// call sends a request with token in the Authorization header ("" for
// none) through p.
func call(p *JWT, token string, mod ...func(*http.Request)) result {
	r := httptest.NewRequest("GET", "/x?a=1", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for _, m := range mod {
		m(r)
	}
	up := &policytest.Upstream{}
	rec, ex := policytest.Serve(p.Wrap(up), r)
	return result{rec, ex, up}
}

// body decodes the JSON error message.
func message(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var b struct {
		Error struct {
			Status  int    `json:"status"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if b.Error.Status != 401 || b.Error.Code != "unauthenticated" {
		t.Fatalf("error %+v", b.Error)
	}
	return b.Error.Message
}

// jwksServer is a real JWKS endpoint on 127.0.0.1 whose answer the test
// changes.
type jwksServer struct {
	*httptest.Server
	hits chan struct{} // one value per request received
	doc  chan func(w http.ResponseWriter)
	cur  func(w http.ResponseWriter)
}

func newJWKSServer(t testing.TB, doc []byte, header ...string) *jwksServer {
	s := &jwksServer{hits: make(chan struct{}, 1000), doc: make(chan func(http.ResponseWriter), 1)}
	s.set(serveDoc(doc, header...))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case f := <-s.doc:
			s.cur = f
		default:
		}
		s.hits <- struct{}{}
		s.cur(w)
	}))
	t.Cleanup(s.Close)
	return s
}

// set replaces the answer (taken by the next request).
func (s *jwksServer) set(f func(http.ResponseWriter)) {
	select {
	case <-s.doc:
	default:
	}
	s.doc <- f
}

func serveDoc(doc []byte, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(doc)
	}
}

func serveStatus(code int, ctype, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(code)
		w.Write([]byte(body))
	}
}

// count returns the requests answered so far.
func (s *jwksServer) count() int { return len(s.hits) }

// TestAlgorithms verifies a valid token of every supported algorithm, with
// keys from a real JWKS server (RS/PS/ES/EdDSA) or a secret (HS).
func TestAlgorithms(t *testing.T) {
	var signers []*signer
	for _, alg := range asymmetricAlgs {
		signers = append(signers, newSigner(t, alg, "kid-"+alg))
	}
	srv := newJWKSServer(t, jwks(t, signers...))
	p := build(t, "jwks_url: "+srv.URL+"\nissuer: "+testIss+"\naudiences: ["+testAud+"]")
	for _, s := range signers {
		t.Run(s.alg, func(t *testing.T) {
			res := call(p, s.sign(t, claimsFor(testIss, testAud, nil)))
			if !res.passed() {
				t.Fatalf("refused: %d %s", res.rec.Code, res.rec.Body)
			}
			if res.ex.Consumer != "user-1" || res.ex.Claims["iss"] != testIss {
				t.Fatalf("consumer %q claims %v", res.ex.Consumer, res.ex.Claims)
			}
			if res.up.Last.Header.Get("Authorization") != "" {
				t.Fatal("token forwarded upstream")
			}
		})
	}
	secret := []byte(strings.Repeat("0123456789abcdef", 4)) // 64 bytes: HS512 too
	ps := build(t, "secret: "+string(secret))
	for _, alg := range hmacAlgs {
		t.Run(alg, func(t *testing.T) {
			tok, err := gojwt.NewWithClaims(gojwt.GetSigningMethod(alg), claimsFor(testIss, testAud, nil)).SignedString(secret)
			if err != nil {
				t.Fatal(err)
			}
			if res := call(ps, tok); !res.passed() {
				t.Fatalf("refused: %d %s", res.rec.Code, res.rec.Body)
			}
		})
	}
}

// unsigned returns a token with alg header fields and claims, and the
// given signature segment.
func unsigned(header map[string]any, claims gojwt.MapClaims, sig string) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + sig
}

// TestRefusals checks every way a token is refused: 401 unauthenticated,
// the RFC 6750 challenge, a message saying what was wrong, and nothing
// forwarded.
func TestRefusals(t *testing.T) {
	rs := newSigner(t, "RS256", "rsa-1")
	es := newSigner(t, "ES256", "ec-1")
	srv := newJWKSServer(t, jwks(t, rs, es))
	p := build(t, "jwks_url: "+srv.URL+"\nissuer: "+testIss+"\naudiences: ["+testAud+", other]\nrequired_claims: [sub, tenant]")
	now := time.Now()
	good := func(extra gojwt.MapClaims) gojwt.MapClaims {
		m := gojwt.MapClaims{"tenant": "t1"}
		for k, v := range extra {
			m[k] = v
		}
		return claimsFor(testIss, testAud, m)
	}
	// The classic confusion: an HS256 token whose HMAC key is the RSA
	// public key, as an attacker who knows the public key would sign.
	pubDER, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	confused := func(k []byte) string {
		tok := gojwt.NewWithClaims(gojwt.SigningMethodHS256, good(nil))
		tok.Header["kid"] = "rsa-1"
		s, _ := tok.SignedString(k)
		return s
	}
	other := &signer{kid: "rsa-1", alg: "RS256", priv: rsaKey2, method: gojwt.SigningMethodRS256}
	stranger := &signer{kid: "nobody", alg: "RS256", priv: rsaKey2, method: gojwt.SigningMethodRS256}
	noKID := &signer{alg: "RS256", priv: rsaKey2, method: gojwt.SigningMethodRS256}

	tests := []struct {
		name    string
		token   string
		mod     func(*http.Request)
		msg     string
		errored bool // the challenge carries error="invalid_token"
	}{
		{"valid", rs.sign(t, good(nil)), nil, "", false},
		{"valid, audience in a list", rs.sign(t, good(gojwt.MapClaims{"aud": []string{"x", "other"}})), nil, "", false},
		{"valid within leeway after exp", rs.sign(t, good(gojwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()})), nil, "", false},
		{"valid within leeway before nbf", rs.sign(t, good(gojwt.MapClaims{"nbf": now.Add(10 * time.Second).Unix()})), nil, "", false},
		{"missing", "", nil, "missing bearer token", false},
		{"other scheme", "", func(r *http.Request) { r.Header.Set("Authorization", "Basic dTpw") }, "missing bearer token", false},
		{"empty bearer", "", func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, "missing bearer token", false},
		{"two headers", rs.sign(t, good(nil)), func(r *http.Request) { r.Header.Add("Authorization", "Bearer x.y.z") }, "more than one token in the request", true},
		{"garbage", "not-a-token", nil, "malformed token", true},
		{"garbage segments", "abc.def.ghi", nil, "malformed token", true},
		{"bad characters", "a.b.c d", nil, "malformed token", true},
		{"too large", strings.Repeat("a", MaxTokenBytes) + ".b.c", nil, "token too large (at most 16384 bytes)", true},
		{"expired", rs.sign(t, good(gojwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})), nil, "token expired", true},
		{"not yet valid", rs.sign(t, good(gojwt.MapClaims{"nbf": now.Add(time.Minute).Unix()})), nil, "token not valid yet", true},
		{"issued in the future", rs.sign(t, good(gojwt.MapClaims{"iat": now.Add(time.Hour).Unix()})), nil, "token issued in the future", true},
		{"no exp", rs.sign(t, good(gojwt.MapClaims{"exp": nil})), nil, `token lacks the required claim "exp"`, true},
		{"wrong issuer", rs.sign(t, good(gojwt.MapClaims{"iss": "https://evil/"})), nil, "token issuer not accepted", true},
		{"no issuer", rs.sign(t, good(gojwt.MapClaims{"iss": nil})), nil, "token issuer not accepted", true},
		{"no audience", rs.sign(t, good(gojwt.MapClaims{"aud": nil})), nil, "token audience not accepted", true},
		{"wrong audience", rs.sign(t, good(gojwt.MapClaims{"aud": "web"})), nil, "token audience not accepted", true},
		{"required claim missing", rs.sign(t, good(gojwt.MapClaims{"tenant": nil})), nil, `token lacks the required claim "tenant"`, true},
		{"alg none", unsigned(map[string]any{"alg": "none", "kid": "rsa-1"}, good(nil), ""), nil, "token signing algorithm not accepted", true},
		{"alg None", unsigned(map[string]any{"alg": "None"}, good(nil), ""), nil, "token signing algorithm not accepted", true},
		{"no alg", unsigned(map[string]any{"kid": "rsa-1"}, good(nil), "c2ln"), nil, "token signing algorithm not accepted", true},
		{"HS256 signed with the RSA public key (PEM)", confused(pubPEM), nil, "token signing algorithm not accepted", true},
		{"HS256 signed with the RSA public key (DER)", confused(pubDER), nil, "token signing algorithm not accepted", true},
		{"ES256 header on the RSA key", unsigned(map[string]any{"alg": "ES256", "kid": "rsa-1"}, good(nil), "c2ln"), nil, "no key for the token's signing algorithm", true},
		{"kid not a string", unsigned(map[string]any{"alg": "RS256", "kid": 7}, good(nil), "c2ln"), nil, "malformed token", true},
		{"signed by another key under a known kid", other.sign(t, good(nil)), nil, "invalid token signature", true},
		{"unknown signer", stranger.sign(t, good(nil)), nil, "token signed by an unknown key", true},
		{"unknown signer without kid", noKID.sign(t, good(nil)), nil, "invalid token signature", true},
		{"tampered claims", tamper(t, es.sign(t, good(nil))), nil, "invalid token signature", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*http.Request)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			res := call(p, tc.token, mods...)
			if tc.msg == "" {
				if !res.passed() {
					t.Fatalf("refused: %d %s", res.rec.Code, res.rec.Body)
				}
				return
			}
			if res.passed() || res.rec.Code != 401 {
				t.Fatalf("status %d, passed %v", res.rec.Code, res.passed())
			}
			if got := message(t, res.rec); got != tc.msg {
				t.Errorf("message %q, want %q", got, tc.msg)
			}
			ch := res.rec.Header().Get("WWW-Authenticate")
			want := `Bearer realm="rampart"`
			if tc.errored {
				want += `, error="invalid_token", error_description="` + description(tc.msg) + `"`
			}
			if ch != want {
				t.Errorf("WWW-Authenticate %q, want %q", ch, want)
			}
			if tc.token != "" && len(tc.token) > 20 && strings.Contains(res.rec.Body.String(), tc.token[:20]) {
				t.Error("the body echoes the token")
			}
		})
	}
}

// tamper changes the token's claims, keeping header and signature.
func tamper(t testing.TB, tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	json.Unmarshal(b, &c)
	c["sub"] = "admin"
	nb, _ := json.Marshal(c)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(nb) + "." + parts[2]
}

// TestForwardClaims: claims reach the upstream in the configured headers,
// client-sent copies are removed (even when the token lacks the claim),
// and the claims, consumer and roles are recorded for later policies.
func TestForwardClaims(t *testing.T) {
	s := newSigner(t, "ES256", "k")
	srv := newJWKSServer(t, jwks(t, s))
	p := build(t, "jwks_url: "+srv.URL+"\nforward_claims: {sub: X-User-ID, role: X-User-Role, n: X-N, groups: X-Groups, bad: X-Bad}\nroles_claim: groups")
	spoof := func(r *http.Request) {
		r.Header.Set("X-User-ID", "admin")
		r.Header.Add("x-user-role", "root")
		r.Header.Set("X-Groups", "admins")
	}
	tests := []struct {
		name   string
		extra  gojwt.MapClaims
		want   map[string]string
		roles  []string
		sender string
	}{
		{"all claims", gojwt.MapClaims{"role": "editor", "n": 12345678901234567, "groups": []string{"a", "b"}, "bad": "x\ny"},
			map[string]string{"X-User-Id": "user-1", "X-User-Role": "editor", "X-N": "12345678901234567", "X-Groups": "a,b", "X-Bad": ""}, []string{"a", "b"}, "user-1"},
		{"claims absent", gojwt.MapClaims{"sub": nil},
			map[string]string{"X-User-Id": "", "X-User-Role": "", "X-Groups": ""}, nil, ""},
		{"space-separated roles", gojwt.MapClaims{"groups": "ops  dev"},
			map[string]string{"X-Groups": "ops  dev"}, []string{"ops", "dev"}, "user-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := call(p, s.sign(t, claimsFor(testIss, testAud, tc.extra)), spoof)
			if !res.passed() {
				t.Fatalf("refused: %s", res.rec.Body)
			}
			for h, v := range tc.want {
				if got := res.up.Last.Header.Values(h); (v == "" && len(got) != 0) || (v != "" && (len(got) != 1 || got[0] != v)) {
					t.Errorf("%s = %q, want %q", h, got, v)
				}
			}
			if strings.Join(res.ex.Roles, ",") != strings.Join(tc.roles, ",") || res.ex.Consumer != tc.sender {
				t.Errorf("roles %q consumer %q", res.ex.Roles, res.ex.Consumer)
			}
		})
	}
	t.Run("refused request", func(t *testing.T) {
		res := call(p, "", spoof)
		if res.passed() || res.rec.Code != 401 {
			t.Fatal("passed without a token")
		}
	})
	t.Run("cached entry shares no writable header slice", func(t *testing.T) {
		tok := s.sign(t, claimsFor(testIss, testAud, nil))
		a := call(p, tok)
		a.up.Last.Header.Add("X-User-Id", "appended")
		b := call(p, tok)
		if got := b.up.Last.Header.Values("X-User-Id"); len(got) != 1 || got[0] != "user-1" {
			t.Fatalf("second request saw %q", got)
		}
	})
}

// TestTokenLocations: header (Bearer or bare), cookie and query, each
// removed from the upstream request unless forward_token is set.
func TestTokenLocations(t *testing.T) {
	s := newSigner(t, "RS256", "k")
	tok := s.sign(t, claimsFor(testIss, testAud, nil))
	srv := newJWKSServer(t, jwks(t, s))
	loc := build(t, "jwks_url: "+srv.URL+"\ncookie: session\nquery: access_token")
	bare := build(t, "jwks_url: "+srv.URL+"\nheader: X-Token")
	keep := build(t, "jwks_url: "+srv.URL+"\nforward_token: true")
	tests := []struct {
		name  string
		p     *JWT
		mod   func(*http.Request)
		ok    bool
		check func(r *http.Request) string
	}{
		{"bearer lower case", loc, func(r *http.Request) { r.Header.Set("Authorization", "bearer "+tok) }, true,
			func(r *http.Request) string { return r.Header.Get("Authorization") }},
		{"cookie", loc, func(r *http.Request) { r.Header.Set("Cookie", "a=1; session="+tok+"; b=2") }, true,
			func(r *http.Request) string {
				if r.Header.Get("Cookie") != "a=1; b=2" {
					return "cookie header " + r.Header.Get("Cookie")
				}
				return ""
			}},
		{"two cookies", loc, func(r *http.Request) { r.Header.Set("Cookie", "session="+tok+"; session=x") }, false, nil},
		{"query", loc, func(r *http.Request) { r.URL.RawQuery = "a=1&access_token=" + tok }, true,
			func(r *http.Request) string {
				if r.URL.RawQuery != "a=1" {
					return "query " + r.URL.RawQuery
				}
				return ""
			}},
		{"header wins over query", loc, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			r.URL.RawQuery = "access_token=garbage"
		}, true, func(r *http.Request) string {
			if r.URL.RawQuery != "access_token=garbage" {
				return "query changed"
			}
			return ""
		}},
		{"query not configured", bare, func(r *http.Request) { r.URL.RawQuery = "access_token=" + tok }, false, nil},
		{"bare header", bare, func(r *http.Request) { r.Header.Set("X-Token", tok) }, true,
			func(r *http.Request) string { return r.Header.Get("X-Token") }},
		{"bearer in other header", bare, func(r *http.Request) { r.Header.Set("X-Token", "Bearer "+tok) }, true, nil},
		{"authorization ignored", bare, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }, false, nil},
		{"forward_token", keep, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }, true,
			func(r *http.Request) string {
				if r.Header.Get("Authorization") != "Bearer "+tok {
					return "token removed"
				}
				return ""
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := call(tc.p, "", tc.mod)
			if res.passed() != tc.ok {
				t.Fatalf("passed %v, want %v: %s", res.passed(), tc.ok, res.rec.Body)
			}
			if tc.check != nil {
				if msg := tc.check(res.up.Last); msg != "" {
					t.Errorf("upstream request: %s", msg)
				}
			}
		})
	}
}

// TestTokenCache: a reused token is answered from the cache (no signature
// check), until its exp (plus leeway) or until the key set changes.
func TestTokenCache(t *testing.T) {
	s := newSigner(t, "ES256", "k")
	path := t.TempDir() + "/jwks.json"
	writeFile(t, path, jwks(t, s))
	p := build(t, "jwks_file: "+path+"\nleeway: 5s\ncache_size: 2")
	now := time.Now()
	p.now = func() time.Time { return now }
	exp := now.Add(time.Minute)
	tok := s.sign(t, claimsFor(testIss, testAud, gojwt.MapClaims{"exp": exp.Unix()}))
	h := sha256Sum(tok)
	first := call(p, tok)
	v := p.cache.get(h, now, p.keys.current())
	if !first.passed() || v == nil {
		t.Fatal("first use not cached")
	}
	// The second request gets the cached entry's claims map itself: no
	// parse, no signature check.
	hit := call(p, tok)
	if !hit.passed() || reflect.ValueOf(hit.ex.Claims).UnsafePointer() != reflect.ValueOf(v.claims).UnsafePointer() {
		t.Fatalf("second use not answered from the cache: %s", hit.rec.Body)
	}
	// Past exp but within leeway: still good; past exp+leeway: expired.
	p.now = func() time.Time { return exp.Add(4 * time.Second) }
	if res := call(p, tok); !res.passed() {
		t.Fatalf("within leeway refused: %s", res.rec.Body)
	}
	p.now = func() time.Time { return exp.Add(6 * time.Second) }
	if res := call(p, tok); res.passed() || message(t, res.rec) != "token expired" {
		t.Fatalf("expired token served from the cache: %d", res.rec.Code)
	}
	p.now = func() time.Time { return now }
	// Bounded: three tokens in a cache of two.
	for i := range 3 {
		call(p, s.sign(t, claimsFor(testIss, testAud, gojwt.MapClaims{"jti": i})))
	}
	if n := p.cache.len(); n != 2 {
		t.Fatalf("cache holds %d entries, want 2", n)
	}
	// A new key set (the key was removed) stops cached tokens.
	other := newSigner(t, "ES384", "other")
	writeFile(t, path, jwks(t, other))
	call(p, other.sign(t, claimsFor(testIss, testAud, nil))) // unknown kid: re-read
	if res := call(p, tok); res.passed() {
		t.Fatal("cached token of a removed key still passes")
	}
}
