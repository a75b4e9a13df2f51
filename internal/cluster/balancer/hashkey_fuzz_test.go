package balancer

import (
	"net/http"
	"net/url"
	"testing"
)

// FuzzHashKeyValue feeds arbitrary hash_key specs, cookies, query strings
// and paths through the key extraction that ring_hash and maglev use on
// every request: it must never panic, and must be deterministic.
func FuzzHashKeyValue(f *testing.F) {
	f.Add("cookie:session", "session=abc; other=1", "user=7&x=1", "/a/b")
	f.Add("query:user", "a=b", "user=%41%2&user=2", "/")
	f.Add("header:X-User-ID", "", "", "/x")
	f.Add("cookie:s", "s=\"quoted\"; s=second", "", "")
	f.Add("path", ";;;", "&&&=", "/%zz")
	f.Fuzz(func(t *testing.T, spec, cookie, rawQuery, path string) {
		k, err := ParseHashKey(spec)
		if err != nil {
			return
		}
		r := &http.Request{Header: http.Header{}, URL: &url.URL{Path: path, RawQuery: rawQuery}, RemoteAddr: "192.0.2.1:1234"}
		if cookie != "" {
			r.Header["Cookie"] = []string{cookie}
		}
		r.Header["X-User-Id"] = []string{cookie}
		v1, ok1 := k.Value(r)
		v2, ok2 := k.Value(r)
		if v1 != v2 || ok1 != ok2 {
			t.Fatalf("not deterministic: %q/%v then %q/%v", v1, ok1, v2, ok2)
		}
	})
}
