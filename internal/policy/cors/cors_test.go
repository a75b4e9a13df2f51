package cors

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"valid", `allow_origins: ["https://a.example", "http://localhost:3000"]`, ""},
		{"missing origins", `allow_methods: [GET]`, "allow_origins is required"},
		{"path in origin", `allow_origins: ["https://a.example/"]`, "no path"},
		{"no scheme", `allow_origins: ["a.example"]`, "scheme://host"},
		{"star with credentials", "allow_origins: [\"*\"]\n    allow_credentials: true", "cannot be combined"},
		{"bad header", "allow_origins: [\"*\"]\n    allow_headers: [\"a b\"]", `invalid header name "a b"`},
		{"star expose with credentials", "allow_origins: [\"https://a.example\"]\n    allow_credentials: true\n    expose_headers: [\"*\"]", `"*" cannot be combined`},
		{"bad max_age", "allow_origins: [\"*\"]\n    max_age: soon", "invalid duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(policytest.Spec(t, "policies:\n  c:\n    type: cors\n    "+tc.body+"\n", "c"))
			policytest.WantError(t, err, tc.want)
		})
	}
}

func TestCORS(t *testing.T) {
	doc := `policies:
  c:
    type: cors
    allow_origins: ["https://app.example"]
    allow_methods: [GET, PUT]
    allow_headers: [Authorization]
    expose_headers: [x-request-id]
    allow_credentials: true
    max_age: 10m
  any:
    type: cors
    allow_origins: ["*"]
    allow_headers: ["*"]
`
	tests := []struct {
		name, policy, method, origin, reqMethod, reqHeaders string
		wantStatus                                          int
		wantUpstream                                        bool
		wantHeaders                                         map[string]string
	}{
		{"preflight ok", "c", "OPTIONS", "https://app.example", "PUT", "authorization, content-type", 204, false,
			map[string]string{"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Methods": "GET, PUT",
				"Access-Control-Allow-Headers": "Authorization", "Access-Control-Max-Age": "600", "Access-Control-Allow-Credentials": "true"}},
		{"preflight bad origin", "c", "OPTIONS", "https://evil.example", "GET", "", 403, false,
			map[string]string{"Access-Control-Allow-Origin": ""}},
		{"preflight bad method", "c", "OPTIONS", "https://app.example", "DELETE", "", 403, false, nil},
		{"preflight bad header", "c", "OPTIONS", "https://app.example", "GET", "X-Secret", 403, false, nil},
		{"plain options goes upstream", "c", "OPTIONS", "", "", "", 200, true, nil},
		{"simple request", "c", "GET", "https://App.Example", "", "", 200, true,
			map[string]string{"Access-Control-Allow-Origin": "https://App.Example", "Access-Control-Expose-Headers": "X-Request-Id", "Vary": "Origin"}},
		{"other origin", "c", "GET", "https://evil.example", "", "", 200, true,
			map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin"}},
		{"no origin", "c", "GET", "", "", "", 200, true, map[string]string{"Vary": "Origin"}},
		{"any origin", "any", "GET", "https://x.example", "", "", 200, true, map[string]string{"Access-Control-Allow-Origin": "*"}},
		{"any header echoed", "any", "OPTIONS", "https://x.example", "GET", "X-One, X-Two", 204, false,
			map[string]string{"Access-Control-Allow-Headers": "X-One, X-Two", "Access-Control-Allow-Methods": "GET, HEAD, POST"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(policytest.Spec(t, doc, tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			up := &policytest.Upstream{}
			r := httptest.NewRequest(tc.method, "/", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if tc.reqMethod != "" {
				r.Header.Set("Access-Control-Request-Method", tc.reqMethod)
			}
			if tc.reqHeaders != "" {
				r.Header.Set("Access-Control-Request-Headers", tc.reqHeaders)
			}
			rec, _ := policytest.Serve(p.Wrap(up), r)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if (up.Calls == 1) != tc.wantUpstream {
				t.Fatalf("upstream reached %v, want %v", up.Calls == 1, tc.wantUpstream)
			}
			for k, v := range tc.wantHeaders {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestUpstreamCORSHeadersReplaced(t *testing.T) {
	p, err := New(policytest.Spec(t, "policies:\n  c:\n    type: cors\n    allow_origins: [\"https://a.example\"]\n", "c"))
	if err != nil {
		t.Fatal(err)
	}
	up := p.Wrap(httpHandler(func(h map[string][]string) {
		h["Access-Control-Allow-Origin"] = []string{"*"}
		h["Vary"] = []string{"Accept-Encoding"}
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Origin", "https://a.example")
	rec, _ := policytest.Serve(up, r)
	if v := rec.Header().Values("Access-Control-Allow-Origin"); len(v) != 1 || v[0] != "https://a.example" {
		t.Fatalf("Access-Control-Allow-Origin %q", v)
	}
	if v := rec.Header().Values("Vary"); strings.Join(v, ",") != "Accept-Encoding,Origin" {
		t.Fatalf("Vary %q", v)
	}
}
