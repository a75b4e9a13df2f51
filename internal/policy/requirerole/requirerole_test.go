package requirerole

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"valid", "any_of: [admin]", ""},
		{"empty", "any_of: []", "needs at least one role"},
		{"missing", "{}", "needs at least one role"},
		{"empty role", "any_of: [\"\"]", `test.yaml:4:14: policies.r.any_of[0]: role must not be empty`},
		{"typo", "anyof: [a]", `unknown key "anyof"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			doc := "policies:\n  r:\n    type: require_role\n    " + body + "\n"
			if body == "{}" {
				doc = "policies:\n  r:\n    type: require_role\n"
			}
			_, err := New(policytest.Spec(t, doc, "r"))
			policytest.WantError(t, err, tc.want)
		})
	}
}

func TestRequire(t *testing.T) {
	p, err := New(policytest.Spec(t, "policies:\n  r:\n    type: require_role\n    any_of: [admin, ops]\n", "r"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		roles []string
		ok    bool
	}{
		{"admin", []string{"free", "admin"}, true},
		{"ops", []string{"ops"}, true},
		{"other", []string{"premium"}, false},
		{"unauthenticated", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := &policytest.Upstream{}
			rec := policytest.ServeAs(p.Wrap(up), httptest.NewRequest("GET", "/", nil), &exchange.Exchange{Roles: tc.roles})
			if (up.Calls == 1) != tc.ok {
				t.Fatalf("passed %v, want %v", up.Calls == 1, tc.ok)
			}
			if !tc.ok && (rec.Code != 403 || policytest.Code(rec) != "forbidden") {
				t.Fatalf("refusal %d %s", rec.Code, rec.Body)
			}
		})
	}
}

// TestRequireClaim: with claim, roles come from that verified token claim
// (an array, or space-separated), not from the recorded roles.
func TestRequireClaim(t *testing.T) {
	p, err := New(policytest.Spec(t, "policies:\n  r:\n    type: require_role\n    any_of: [admin]\n    claim: groups\n", "r"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ex   exchange.Exchange
		ok   bool
	}{
		{"array claim", exchange.Exchange{Claims: map[string]any{"groups": []any{"dev", "admin"}}}, true},
		{"string claim", exchange.Exchange{Claims: map[string]any{"groups": "read admin"}}, true},
		{"single string", exchange.Exchange{Claims: map[string]any{"groups": "admin"}}, true},
		{"other roles", exchange.Exchange{Claims: map[string]any{"groups": []any{"dev"}}}, false},
		{"substring is not a role", exchange.Exchange{Claims: map[string]any{"groups": "administrator"}}, false},
		{"not strings", exchange.Exchange{Claims: map[string]any{"groups": []any{1, true}}}, false},
		{"recorded roles ignored", exchange.Exchange{Roles: []string{"admin"}, Claims: map[string]any{"groups": "dev"}}, false},
		{"no token", exchange.Exchange{Roles: []string{"admin"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := &policytest.Upstream{}
			ex := tc.ex
			rec := policytest.ServeAs(p.Wrap(up), httptest.NewRequest("GET", "/", nil), &ex)
			if (up.Calls == 1) != tc.ok {
				t.Fatalf("passed %v, want %v (%d)", up.Calls == 1, tc.ok, rec.Code)
			}
		})
	}
	if _, err := New(policytest.Spec(t, "policies:\n  r:\n    type: require_role\n    any_of: [a]\n    claim: \"\"\n", "r")); err == nil || !strings.Contains(err.Error(), "test.yaml:5:12: policies.r.claim: claim must name a claim") {
		t.Fatalf("empty claim: %v", err)
	}
}
