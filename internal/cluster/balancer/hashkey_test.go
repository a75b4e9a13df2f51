package balancer

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rampart-gw/rampart/internal/exchange"
)

func TestParseHashKey(t *testing.T) {
	tests := []struct {
		name, in, want string
		bad            bool
	}{
		{"empty", "", "", false},
		{"ip", "ip", "ip", false},
		{"path", "path", "path", false},
		{"header-canonicalised", "header:x-user-id", "header:X-User-Id", false},
		{"cookie", "cookie:session", "cookie:session", false},
		{"query", "query:user", "query:user", false},
		{"param", "param:id", "param:id", false},
		{"unknown-kind", "body:user", "", true},
		{"missing-name", "header:", "", true},
		{"no-colon", "header", "", true},
		{"bad-header-name", "header:x user", "", true},
		{"bad-cookie-name", "cookie:a;b", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseHashKey(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("ParseHashKey(%q) accepted", tc.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.String() != tc.want {
				t.Fatalf("String() = %q, want %q", k.String(), tc.want)
			}
		})
	}
	if _, err := ParseHashKey("body:x"); !errors.Is(err, ErrHashKey) {
		t.Fatalf("error %v does not wrap ErrHashKey", err)
	}
}

func TestHashKeyValue(t *testing.T) {
	req := func(target string, mod func(r *http.Request)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		if mod != nil {
			mod(r)
		}
		return r
	}
	tests := []struct {
		name   string
		key    string
		r      *http.Request
		want   string
		wantOK bool
	}{
		{"nil-request", "ip", nil, "", false},
		{"ip-v4", "ip", req("/", func(r *http.Request) { r.RemoteAddr = "10.1.2.3:5555" }), "10.1.2.3", true},
		{"ip-v6", "ip", req("/", func(r *http.Request) { r.RemoteAddr = "[2001:db8::1]:443" }), "2001:db8::1", true},
		{"ip-no-port", "ip", req("/", func(r *http.Request) { r.RemoteAddr = "10.1.2.3" }), "10.1.2.3", true},
		{"ip-bare-v6", "ip", req("/", func(r *http.Request) { r.RemoteAddr = "2001:db8::1" }), "2001:db8::1", true},
		{"ip-empty", "ip", req("/", func(r *http.Request) { r.RemoteAddr = "" }), "", false},
		// The TCP peer, even when it is a proxy naming the client
		// (docs/balancing.md).
		{"ip-is-the-peer", "ip", req("/", func(r *http.Request) {
			r.RemoteAddr = "10.1.2.3:5555"
			r.Header.Set("X-Forwarded-For", "203.0.113.7")
			r.Header.Set("Forwarded", "for=203.0.113.7")
		}), "10.1.2.3", true},
		{"path", "path", req("/users/42?x=1", nil), "/users/42", true},
		{"header", "header:X-User-ID", req("/", func(r *http.Request) { r.Header.Set("X-User-Id", "u42") }), "u42", true},
		{"header-lowercase-config", "header:x-user-id", req("/", func(r *http.Request) { r.Header.Set("X-User-ID", "u42") }), "u42", true},
		{"header-missing", "header:X-User-ID", req("/", nil), "", false},
		{"header-empty", "header:X-User-ID", req("/", func(r *http.Request) { r.Header.Set("X-User-ID", "") }), "", false},
		{"cookie", "cookie:sid", req("/", func(r *http.Request) { r.Header.Set("Cookie", "a=1; sid=abc; b=2") }), "abc", true},
		{"cookie-first", "cookie:sid", req("/", func(r *http.Request) { r.Header.Set("Cookie", "sid=abc") }), "abc", true},
		{"cookie-quoted", "cookie:sid", req("/", func(r *http.Request) { r.Header.Set("Cookie", `sid="abc"`) }), "abc", true},
		{"cookie-second-line", "cookie:sid", req("/", func(r *http.Request) {
			r.Header.Add("Cookie", "a=1")
			r.Header.Add("Cookie", "sid=xyz")
		}), "xyz", true},
		{"cookie-prefix-name", "cookie:sid", req("/", func(r *http.Request) { r.Header.Set("Cookie", "sidx=1; xsid=2") }), "", false},
		{"cookie-missing", "cookie:sid", req("/", nil), "", false},
		{"query", "query:user", req("/p?a=1&user=u7&b=2", nil), "u7", true},
		{"query-first-value", "query:user", req("/p?user=u7&user=u8", nil), "u7", true},
		{"query-encoded", "query:user", req("/p?user=a%20b", nil), "a b", true},
		{"query-encoded-name", "query:user", req("/p?us%65r=u9", nil), "u9", true},
		{"query-prefix-name", "query:user", req("/p?username=u7", nil), "", false},
		{"query-no-value", "query:user", req("/p?user", nil), "", false},
		{"query-missing", "query:user", req("/p", nil), "", false},
		{"param", "param:id", withParams(req("/u/a%20b", nil), exchange.Param{Name: "x", Value: "1"}, exchange.Param{Name: "id", Value: "a b"}), "a b", true},
		{"param-missing", "param:id", withParams(req("/u/1", nil), exchange.Param{Name: "x", Value: "1"}), "", false},
		{"param-no-exchange", "param:id", req("/u/1", nil), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseHashKey(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := k.Value(tc.r)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("Value = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestHashKeyValueDoesNotAllocate(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/users/42?a=1&user=u7", nil)
	r.RemoteAddr = "10.1.2.3:5555"
	r.Header.Set("X-User-ID", "u42")
	r.Header.Set("Cookie", "a=1; sid=abc")
	for _, key := range []string{"ip", "path", "header:X-User-ID", "cookie:sid", "query:user"} {
		t.Run(key, func(t *testing.T) {
			k, _ := ParseHashKey(key)
			if n := testing.AllocsPerRun(100, func() { k.Value(r) }); n != 0 {
				t.Fatalf("%v allocs per Value", n)
			}
		})
	}
}

// withParams gives r an Exchange holding path captures.
func withParams(r *http.Request, ps ...exchange.Param) *http.Request {
	return r.WithContext(exchange.With(r.Context(), &exchange.Exchange{Params: ps}))
}
