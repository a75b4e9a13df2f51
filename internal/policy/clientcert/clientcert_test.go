package clientcert

import (
	"testing"

	"github.com/rampart-gw/rampart/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"valid", `allow_sans: ["DNS:*.svc", "URI:spiffe://prod/*", "email:*@x", "IP:10.0.0.1"]`, ""},
		{"no type", `allow_sans: ["*.svc"]`, `test.yaml:4:18: policies.c.allow_sans[0]: SAN pattern "*.svc": want TYPE:VALUE`},
		{"unknown type", `allow_sans: ["CN:x"]`, `SAN pattern "CN:x"`},
		{"empty value", `allow_sans: ["DNS:"]`, `SAN pattern "DNS:"`},
		{"typo", `allow_san: [x]`, `unknown key "allow_san"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(policytest.Spec(t, "policies:\n  c:\n    type: client_cert\n    "+tc.body+"\n", "c"))
			policytest.WantError(t, err, tc.want)
		})
	}
}
