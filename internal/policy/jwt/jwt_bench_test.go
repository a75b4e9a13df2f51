package jwt

import (
	"context"
	"testing"
)

// BenchmarkVerify measures a token check: a signature verification
// (RS256 2048-bit, ES256) with the cache off, and a verified-token cache
// hit.
func BenchmarkVerify(b *testing.B) {
	for _, tc := range []struct {
		name, alg string
		cache     string
	}{
		{"RS256", "RS256", "0"},
		{"ES256", "ES256", "0"},
		{"EdDSA", "EdDSA", "0"},
		{"cache-hit", "RS256", "1000"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := newSigner(b, tc.alg, "k")
			p := build(b, "keys:\n  - kid: k\n    pem: |\n"+indent(pemPublic(b, s.priv.Public()), 6)+"\nissuer: "+testIss+"\naudiences: ["+testAud+"]\ncache_size: "+tc.cache)
			tok := s.sign(b, claimsFor(testIss, testAud, nil))
			ctx := context.Background()
			if _, f := p.verify(ctx, tok); f != nil {
				b.Fatal(f.msg)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, f := p.verify(ctx, tok); f != nil {
					b.Fatal(f.msg)
				}
			}
		})
	}
}
