package headers

import (
	"net/http/httptest"
	"testing"

	"github.com/rampart-gw/rampart/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // substring of the error; "" for valid
	}{
		{"valid", "request: {set: {X-Env: prod}, add: {X-A: b}, remove: [X-Debug]}\n    response: {set: {X-B: c}}", ""},
		{"bad name", "request: {set: {\"X Bad\": v}}", `test.yaml:4:30: policies.h.request.set.X Bad: invalid header name "X Bad"`},
		{"managed", "response: {remove: [content-length]}", "managed by the gateway"},
		{"control char", "request: {add: {X-A: \"a\\nb\"}}", "control characters"},
		{"unknown key", "request: {replace: {X-A: b}}", `unknown key "replace"`},
		{"host response", "response: {set: {Host: x}}", "not a response header"},
		{"host remove", "request: {remove: [host]}", "cannot be removed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "policies:\n  h:\n    type: headers\n    " + tc.body + "\n"
			_, err := New(policytest.Spec(t, doc, "h"))
			policytest.WantError(t, err, tc.want)
		})
	}
}

func TestApply(t *testing.T) {
	doc := `policies:
  h:
    type: headers
    request:
      set: {X-Env: prod, Host: internal.example}
      add: {X-Tag: gw}
      remove: [X-Debug]
    response:
      set: {Strict-Transport-Security: max-age=1}
      add: {X-Tag: gw}
      remove: [Server]
`
	p, err := New(policytest.Spec(t, doc, "h"))
	if err != nil {
		t.Fatal(err)
	}
	up := &policytest.Upstream{}
	h := p.Wrap(up)
	tests := []struct {
		name   string
		header map[string]string
	}{
		{"plain", nil},
		{"client values replaced", map[string]string{"X-Env": "dev", "X-Debug": "1", "X-Tag": "client"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			rec, _ := policytest.Serve(h, r)
			got := up.Last
			if v := got.Header.Values("X-Env"); len(v) != 1 || v[0] != "prod" {
				t.Errorf("X-Env upstream %q, want [prod]", v)
			}
			if got.Header.Get("X-Debug") != "" {
				t.Errorf("X-Debug reached the upstream")
			}
			if v := got.Header.Values("X-Tag"); v[len(v)-1] != "gw" {
				t.Errorf("X-Tag %q, want gw last", v)
			}
			if got.Host != "internal.example" {
				t.Errorf("Host %q", got.Host)
			}
			if rec.Header().Get("Strict-Transport-Security") != "max-age=1" || rec.Header().Get("X-Tag") != "gw" {
				t.Errorf("response header %v", rec.Header())
			}
		})
	}
}
