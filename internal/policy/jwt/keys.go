package jwt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/MicahParks/jwkset"
	"go.yaml.in/yaml/v3"
)

// key is one verification key and the algorithms it may verify. The
// algorithms follow from the key's type (and the JWK's alg, when given):
// an RSA key never verifies an HS256 token, which is what defeats
// algorithm confusion (RFC 8725, section 2.1).
type key struct {
	kid  string
	algs []string
	pub  any // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte (a secret)
}

// keySet is an immutable set of keys, indexed by kid.
type keySet struct {
	byKID map[string][]*key
	noKID []*key // keys without a kid: candidates for any token
	all   []*key
	// digest is the SHA-256 of the document the set was read from (zero
	// for configured keys): a re-read that finds the same document keeps
	// the set in use, and with it the verified-token cache.
	digest [32]byte
}

func newSet(keys []*key) *keySet {
	s := &keySet{byKID: map[string][]*key{}, all: keys}
	for _, k := range keys {
		if k.kid == "" {
			s.noKID = append(s.noKID, k)
		} else {
			s.byKID[k.kid] = append(s.byKID[k.kid], k)
		}
	}
	return s
}

// known reports whether the set holds a key with this kid.
func (s *keySet) known(kid string) bool { return s != nil && len(s.byKID[kid]) > 0 }

// candidates returns the keys that may verify a token with this kid and
// alg: the keys of that kid (or, when the token names none or an unknown
// one, the keys without a kid; a token without a kid may be verified by
// any key), restricted to those whose type allows alg.
func (s *keySet) candidates(kid, alg string) []any {
	if s == nil {
		return nil
	}
	var pool []*key
	switch {
	case kid == "":
		pool = s.all
	case len(s.byKID[kid]) > 0:
		pool = s.byKID[kid]
	default:
		pool = s.noKID
	}
	var out []any
	for _, k := range pool {
		if slices.Contains(k.algs, alg) {
			out = append(out, k.pub)
		}
	}
	return out
}

// algsFor returns the algorithms a public key may verify, restricted to
// want when it is set (a JWK's alg).
func algsFor(pub any, want string) ([]string, error) {
	var algs []string
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is too short (at least %d)", k.N.BitLen(), MinRSABits)
		}
		algs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			algs = []string{"ES256"}
		case elliptic.P384():
			algs = []string{"ES384"}
		case elliptic.P521():
			algs = []string{"ES512"}
		default:
			return nil, errors.New("unsupported elliptic curve")
		}
	case ed25519.PublicKey:
		algs = []string{"EdDSA"}
	default:
		return nil, fmt.Errorf("unsupported key type %T (want RSA, EC P-256/384/521 or Ed25519)", pub)
	}
	if want == "" {
		return algs, nil
	}
	if !slices.Contains(algs, want) {
		return nil, fmt.Errorf("alg %q does not fit the key (it allows %s)", want, strings.Join(algs, ", "))
	}
	return []string{want}, nil
}

// secretKey is the key of an HMAC secret: HS256, and HS384 and HS512 when
// the secret is at least as long as their hash (RFC 7518, section 3.2).
func secretKey(secret []byte) *key {
	algs := []string{"HS256"}
	if len(secret) >= 48 {
		algs = append(algs, "HS384")
	}
	if len(secret) >= 64 {
		algs = append(algs, "HS512")
	}
	return &key{algs: algs, pub: secret}
}

// jwkKey converts one JWK. Symmetric keys are refused: HMAC secrets are
// configured with secret, never taken from a key set. So are keys whose
// use or key_ops say they are not for verifying signatures.
func jwkKey(raw []byte) (*key, error) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errors.New("not a JSON object of JWK members")
	}
	switch {
	case m.KTY == jwkset.KtyOct:
		return nil, errors.New(`symmetric key (kty "oct") refused: HMAC keys come only from secret or secret_file`)
	case m.USE != "" && m.USE != jwkset.UseSig:
		return nil, fmt.Errorf("key use %q is not sig", m.USE)
	case len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify):
		return nil, errors.New(`key_ops does not allow "verify"`)
	case m.ALG == "none":
		return nil, errors.New(`alg "none" is never accepted`)
	}
	j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil, trimJWKError(err)
	}
	algs, err := algsFor(j.Key(), string(m.ALG))
	if err != nil {
		return nil, err
	}
	return &key{kid: m.KID, algs: algs, pub: j.Key()}, nil
}

// trimJWKError shortens jwkset's nested messages to their last part.
func trimJWKError(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		msg = msg[i+2:]
	}
	return errors.New("invalid JWK: " + msg)
}

// pemKey parses a PEM public key: PUBLIC KEY (PKIX), RSA PUBLIC KEY
// (PKCS #1) or CERTIFICATE.
func pemKey(text string) (any, error) {
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("more than one PEM block: list each key on its own")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a public key or certificate (never configure a private key here)", block.Type)
}

// inlineKey converts one entry of keys: a PEM string, a mapping {kid, alg,
// pem}, or a JWK mapping.
func inlineKey(n *yaml.Node) (*key, error) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		pub, err := pemKey(n.Value)
		if err != nil {
			return nil, err
		}
		algs, err := algsFor(pub, "")
		if err != nil {
			return nil, err
		}
		return &key{algs: algs, pub: pub}, nil
	case yaml.MappingNode:
	default:
		return nil, errors.New("a key is a JWK mapping or a PEM string")
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return nil, fmt.Errorf("invalid key: %v", err)
	}
	if p, ok := m["pem"]; ok {
		text, _ := p.(string)
		kid, _ := m["kid"].(string)
		alg, _ := m["alg"].(string)
		for k := range m {
			if k != "pem" && k != "kid" && k != "alg" {
				return nil, fmt.Errorf("unknown key %q next to pem (want kid, alg)", k)
			}
		}
		pub, err := pemKey(text)
		if err != nil {
			return nil, err
		}
		algs, err := algsFor(pub, alg)
		if err != nil {
			return nil, err
		}
		return &key{kid: kid, algs: algs, pub: pub}, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("invalid JWK: %v", err)
	}
	return jwkKey(raw)
}

// parseJWKS reads a JSON Web Key Set (RFC 7517, section 5). Keys that
// cannot be used (symmetric, encryption, unknown types, short RSA) are
// skipped and described in skipped; a set without one usable key is an
// error, so that a broken answer never replaces a good set.
func parseJWKS(b []byte) (set *keySet, skipped []string, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, nil, errors.New("not a JSON Web Key Set (invalid JSON)")
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`not a JSON Web Key Set (no "keys" member)`)
	}
	var keys []*key
	for i, raw := range doc.Keys {
		if len(keys) == MaxKeys {
			skipped = append(skipped, fmt.Sprintf("keys after the first %d", MaxKeys))
			break
		}
		k, err := jwkKey(raw)
		if err != nil {
			skipped = append(skipped, "key "+strconv.Itoa(i)+kidSuffix(raw)+": "+err.Error())
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		msg := "no usable signing key in the key set"
		if len(skipped) > 0 {
			msg += " (" + strings.Join(skipped, "; ") + ")"
		}
		return nil, skipped, errors.New(msg)
	}
	set = newSet(keys)
	set.digest = sha256.Sum256(b)
	return set, skipped, nil
}

// kidSuffix names a raw JWK's kid for messages.
func kidSuffix(raw []byte) string {
	var m struct {
		KID string `json:"kid"`
	}
	if json.Unmarshal(raw, &m) != nil || m.KID == "" || len(m.KID) > 64 {
		return ""
	}
	return " (kid " + strconv.Quote(m.KID) + ")"
}
