package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	gojwt "github.com/golang-jwt/jwt/v5"
)

// signer is a private key generated for the tests, with its kid.
type signer struct {
	kid    string
	alg    string
	priv   crypto.Signer
	method gojwt.SigningMethod
}

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	ecKeys   map[string]*ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

// testKeys generates the keys once per test binary (RSA generation is slow).
func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		ecKeys = map[string]*ecdsa.PrivateKey{}
		for alg, c := range map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()} {
			if ecKeys[alg], err = ecdsa.GenerateKey(c, rand.Reader); err != nil {
				panic(err)
			}
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// newSigner returns a signer for alg with the given kid, using the
// package's generated keys (RS*/PS* share rsaKey).
func newSigner(t testing.TB, alg, kid string) *signer {
	testKeys(t)
	s := &signer{kid: kid, alg: alg, method: gojwt.GetSigningMethod(alg)}
	switch alg[:2] {
	case "RS", "PS":
		s.priv = rsaKey
	case "ES":
		s.priv = ecKeys[alg]
	case "Ed":
		s.priv = edKey
	default:
		t.Fatalf("no key for %s", alg)
	}
	return s
}

// jwk returns the public JWK of s as JSON, with kid and (if withAlg) alg.
func (s *signer) jwk(t testing.TB, withAlg bool) json.RawMessage {
	t.Helper()
	md := jwkset.JWKMetadataOptions{KID: s.kid, USE: jwkset.UseSig}
	if withAlg {
		md.ALG = jwkset.ALG(s.alg)
	}
	j, err := jwkset.NewJWKFromKey(s.priv.Public(), jwkset.JWKOptions{Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwks builds a key set document from signers.
func jwks(t testing.TB, ss ...*signer) []byte {
	keys := make([]json.RawMessage, len(ss))
	for i, s := range ss {
		keys[i] = s.jwk(t, false)
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// sign makes a token with the claims, header kid s.kid.
func (s *signer) sign(t testing.TB, claims gojwt.MapClaims) string {
	t.Helper()
	tok := gojwt.NewWithClaims(s.method, claims)
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	str, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return str
}

// pemPublic returns the PKIX PEM of a public key.
func pemPublic(t testing.TB, pub any) string {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: b}))
}

// claimsFor are valid claims for issuer iss and audience aud, expiring in
// an hour.
func claimsFor(iss, aud string, extra gojwt.MapClaims) gojwt.MapClaims {
	now := time.Now()
	c := gojwt.MapClaims{"iss": iss, "aud": aud, "sub": "user-1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// writeFile writes b to path with a modification time that differs from
// the previous write's, so that a change is seen even within the file
// system's time granularity.
func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	writes++
	mt := time.Now().Add(time.Duration(writes) * time.Minute)
	os.Chtimes(path, mt, mt)
}

var writes int
