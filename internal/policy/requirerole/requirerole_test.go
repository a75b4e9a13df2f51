package requirerole

import (
	"net/http/httptest"
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
