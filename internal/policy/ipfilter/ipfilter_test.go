package ipfilter

import (
	"net/http/httptest"
	"testing"

	"github.com/rampart-gw/rampart/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"valid", "allow: [10.0.0.0/8, 127.0.0.1, \"::1\"]", ""},
		{"empty", "trust_forwarded: 1", "needs allow or deny"},
		{"bad prefix", "deny: [10.0.0.0/33]", `test.yaml:4:12: policies.f.deny[0]: invalid address or prefix "10.0.0.0/33"`},
		{"bad addr", "allow: [nope]", "invalid address"},
		{"negative trust", "allow: [10.0.0.0/8]\n    trust_forwarded: -1", "between 0 and 64"},
		{"unknown key", "allow: [10.0.0.0/8]\n    alow: []", `unknown key "alow"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(policytest.Spec(t, "policies:\n  f:\n    type: ip_filter\n    "+tc.body+"\n", "f"))
			policytest.WantError(t, err, tc.want)
		})
	}
}

func TestFilter(t *testing.T) {
	doc := `policies:
  f:
    type: ip_filter
    allow: [10.0.0.0/8, 192.0.2.1, "2001:db8::/32"]
    deny: [10.6.6.0/24]
  fwd:
    type: ip_filter
    allow: [203.0.113.0/24]
    trust_forwarded: 1
  denyonly:
    type: ip_filter
    deny: [198.51.100.7]
`
	tests := []struct {
		name, policy, remote, xff string
		allowed                   bool
	}{
		{"allowed v4", "f", "10.1.2.3:5000", "", true},
		{"single address", "f", "192.0.2.1:1", "", true},
		{"deny wins", "f", "10.6.6.9:5000", "", false},
		{"not listed", "f", "172.16.0.1:80", "", false},
		{"v6 allowed", "f", "[2001:db8::5]:443", "", true},
		{"v4-mapped", "f", "[::ffff:10.0.0.1]:443", "", true},
		{"xff ignored by default", "f", "172.16.0.1:80", "10.0.0.1", false},
		{"trusted hop", "fwd", "10.0.0.1:80", "1.2.3.4, 203.0.113.9", true},
		{"spoofed left entry", "fwd", "10.0.0.1:80", "203.0.113.9, 1.2.3.4", false},
		{"no xff falls back to peer", "fwd", "203.0.113.5:80", "", true},
		{"deny only passes others", "denyonly", "198.51.100.8:1", "", true},
		{"deny only refuses", "denyonly", "198.51.100.7:1", "", false},
		{"garbage remote", "f", "garbage", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(policytest.Spec(t, doc, tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			up := &policytest.Upstream{}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			rec, ex := policytest.Serve(p.Wrap(up), r)
			if got := up.Calls == 1; got != tc.allowed {
				t.Fatalf("allowed %v, want %v (status %d)", got, tc.allowed, rec.Code)
			}
			if !tc.allowed && (rec.Code != 403 || ex.Code != "ip_denied") {
				t.Fatalf("refusal %d %q, want 403 ip_denied", rec.Code, ex.Code)
			}
		})
	}
}
