package certid

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/url"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tt := range []struct {
		pattern, san string
		want         bool
	}{
		{"DNS:*.svc.internal", "DNS:billing.svc.internal", true},
		{"DNS:*.svc.internal", "DNS:Billing.SVC.internal", true},
		{"dns:billing.svc.internal", "DNS:billing.svc.internal", true},
		{"DNS:*.svc.internal", "DNS:svc.internal", false},
		{"DNS:*.svc.internal", "URI:x.svc.internal", false},
		{"URI:spiffe://prod/*", "URI:spiffe://prod/billing", true},
		{"URI:spiffe://prod/*", "URI:spiffe://PROD/billing", false},
		{"URI:spiffe://prod/*/api", "URI:spiffe://prod/a/b/api", true},
		{"URI:spiffe://prod/*/api", "URI:spiffe://prod/a/b/apix", false},
		{"email:*@example.com", "email:ops@example.com", true},
		{"IP:10.0.0.1", "IP:10.0.0.1", true},
		{"IP:10.0.0.1", "IP:10.0.0.10", false},
		{"DNS:a*b*c", "DNS:abc", true},
		{"DNS:a*b*c", "DNS:acb", false},
		{"nonsense", "DNS:a", false},
	} {
		if got := Match(tt.pattern, tt.san); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.san, got, tt.want)
		}
	}
}

func TestSetAndStrip(t *testing.T) {
	u, _ := url.Parse("spiffe://prod/a,b")
	c := &x509.Certificate{Raw: []byte("der"), Subject: pkix.Name{CommonName: "x\r\ny"},
		DNSNames: []string{"a.example"}, URIs: []*url.URL{u}, EmailAddresses: []string{"o@e"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}}
	h := map[string][]string{HeaderSubject: {"spoofed", "twice"}}
	Set(h, c)
	if got := h[HeaderSubject]; len(got) != 1 || got[0] != "CN=x??y" {
		t.Errorf("subject %q: controls must be replaced, one value", got)
	}
	if got := h[HeaderSANs][0]; got != "DNS:a.example,URI:spiffe://prod/a%2Cb,email:o@e,IP:10.0.0.1" {
		t.Errorf("sans %q", got)
	}
	if got := h[HeaderSHA256][0]; got != "5050d80d22ecd471ea55df7034042c1e041341ff4066e7f6ff38e20b720df8ea" {
		t.Errorf("sha256 %q", got)
	}
	Strip(h)
	if len(h) != 0 {
		t.Errorf("left %v", h)
	}
}
