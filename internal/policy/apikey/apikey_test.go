package apikey

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/policy/policytest"
)

func hashed(k string) string {
	h := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(h[:])
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, body, consumers, want string }{
		{"valid", "header: X-Key", "  - {name: a, api_keys: [k1]}", ""},
		{"bad header", "header: \"X Key\"", "  - {name: a, api_keys: [k1]}", `invalid header name "X Key"`},
		{"bad hash", "query: key", "  - {name: a, api_keys: [\"sha256:abc\"]}", "test.yaml:6:26: consumers[0].api_keys[0]: sha256 key must be 64 hex digits"},
		{"not hex", "query: key", "  - {name: a, api_keys: [\"sha256:" + strings.Repeat("z", 64) + "\"]}", "not hex"},
		{"same key twice", "query: key", "  - {name: a, api_keys: [k1]}\n  - {name: b, api_keys: [\"" + hashed("k1") + "\"]}", `already used by consumer "a"`},
		{"no consumers", "query: key", "  - {name: a}", "no consumer has api_keys"},
		{"bad forward", "forward_consumer_header: \"a:b\"", "  - {name: a, api_keys: [k1]}", "invalid header name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "policies:\n  k:\n    type: api_key\n    " + tc.body + "\nconsumers:\n" + tc.consumers + "\n"
			_, err := New(policytest.Spec(t, doc, "k"))
			policytest.WantError(t, err, tc.want)
		})
	}
}

func TestAuthenticate(t *testing.T) {
	doc := `policies:
  k:
    type: api_key
    query: api_key
  nofwd:
    type: api_key
    forward_consumer_header: "off"
consumers:
  - name: acme
    api_keys: ["` + hashed("secret-1") + `"]
    roles: [premium, admin]
  - name: dev
    api_keys: [plain-2]
`
	tests := []struct {
		name, policy, target string
		header               []string
		spoof                string
		wantStatus           int
		wantConsumer         string
		wantQuery            string
		wantForward          string
	}{
		{"hashed key in header", "k", "/x", []string{"secret-1"}, "", 200, "acme", "", "acme"},
		{"plain key", "k", "/x", []string{"plain-2"}, "", 200, "dev", "", "dev"},
		{"key in query removed", "k", "/x?a=1&api_key=plain-2&b=%20", nil, "", 200, "dev", "a=1&b=%20", "dev"},
		{"spoofed consumer header replaced", "k", "/x", []string{"plain-2"}, "acme", 200, "dev", "", "dev"},
		{"missing", "k", "/x", nil, "", 401, "", "", ""},
		{"wrong", "k", "/x", []string{"nope"}, "", 401, "", "", ""},
		{"empty", "k", "/x", []string{" "}, "", 401, "", "", ""},
		{"two header values", "k", "/x", []string{"plain-2", "secret-1"}, "", 401, "", "", ""},
		{"query not accepted", "nofwd", "/x?api_key=plain-2", nil, "", 401, "", "", ""},
		{"no forward header", "nofwd", "/x", []string{"plain-2"}, "", 200, "dev", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(policytest.Spec(t, doc, tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			up := &policytest.Upstream{}
			r := httptest.NewRequest("GET", tc.target, nil)
			for _, v := range tc.header {
				r.Header.Add("X-API-Key", v)
			}
			if tc.spoof != "" {
				r.Header.Set("X-Consumer-Name", tc.spoof)
			}
			rec, ex := policytest.Serve(p.Wrap(up), r)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantStatus == 401 {
				if got := rec.Header().Get("WWW-Authenticate"); got != `ApiKey realm="rampart"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
				if policytest.Code(rec) != "unauthenticated" {
					t.Errorf("body %s", rec.Body)
				}
				return
			}
			if ex.Consumer != tc.wantConsumer {
				t.Errorf("consumer %q, want %q", ex.Consumer, tc.wantConsumer)
			}
			if up.Last.Header.Get("X-API-Key") != "" {
				t.Errorf("key header forwarded")
			}
			if up.Last.URL.RawQuery != tc.wantQuery {
				t.Errorf("query %q, want %q", up.Last.URL.RawQuery, tc.wantQuery)
			}
			if got := up.Last.Header.Get("X-Consumer-Name"); got != tc.wantForward {
				t.Errorf("X-Consumer-Name %q, want %q", got, tc.wantForward)
			}
		})
	}
}

func TestRoles(t *testing.T) {
	doc := "policies:\n  k:\n    type: api_key\nconsumers:\n  - {name: a, api_keys: [k1], roles: [free, admin]}\n"
	p, err := New(policytest.Spec(t, doc, "k"))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Api-Key", "k1")
	_, ex := policytest.Serve(p.Wrap(&policytest.Upstream{}), r)
	if strings.Join(ex.Roles, ",") != "free,admin" {
		t.Fatalf("roles %q", ex.Roles)
	}
}

func TestParamHelpers(t *testing.T) {
	tests := []struct {
		raw, name, value string
		n                int
		removed          string
	}{
		{"a=1&key=v&b=2", "key", "v", 1, "a=1&b=2"},
		{"key=a%2Bb", "key", "a+b", 1, ""},
		{"k%65y=x", "key", "x", 1, ""},
		{"key=1&key=2", "key", "2", 2, ""},
		{"keys=1", "key", "", 0, "keys=1"},
		{"key", "key", "", 1, ""},
		{"key=%zz&x=1", "key", "", 1, "x=1"},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			v, n := QueryValue(tc.raw, tc.name)
			if v != tc.value || n != tc.n {
				t.Errorf("QueryValue = %q, %d; want %q, %d", v, n, tc.value, tc.n)
			}
			if got := RemoveParam(tc.raw, tc.name); got != tc.removed {
				t.Errorf("RemoveParam = %q, want %q", got, tc.removed)
			}
		})
	}
}

// FuzzExtract checks that key extraction and parameter removal never panic
// and that a removed parameter can no longer be found.
func FuzzExtract(f *testing.F) {
	for _, s := range []string{"a=1&api_key=x", "api_key=%zz", "api%5Fkey=1&&", "=&=&", "api_key"} {
		f.Add(s, "hdr")
	}
	doc := "policies:\n  k:\n    type: api_key\n    query: api_key\nconsumers:\n  - {name: a, api_keys: [k1]}\n"
	p, err := New(policytest.Spec(f, doc, "k"))
	if err != nil {
		f.Fatal(err)
	}
	ak := p.(*APIKey)
	f.Fuzz(func(t *testing.T, raw, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = raw
		if header != "" {
			r.Header["X-Api-Key"] = []string{header}
		}
		ak.Extract(r)
		out := RemoveParam(raw, "api_key")
		if _, n := QueryValue(out, "api_key"); n != 0 {
			t.Fatalf("RemoveParam(%q) = %q still holds the key", raw, out)
		}
		ParseKey(header)
	})
}
