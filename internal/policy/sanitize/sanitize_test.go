package sanitize

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rampart-gw/rampart/internal/policy/policytest"
)

func compile(t testing.TB, body string) *Sanitizer {
	t.Helper()
	p, err := New(policytest.Spec(t, "policies:\n  s:\n    type: sanitize\n"+body, "s"))
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Sanitizer)
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"defaults", "", ""},
		{"full", "    mode: detect\n    checks: [sqli]\n    inspect: [query, body]\n    headers: [User-Agent]\n    exclude: [comment]\n    max_value_bytes: 100\n    max_body_bytes: 1000\n    max_json_depth: 8\n", ""},
		{"bad mode", "    mode: log\n", `test.yaml:4:11: policies.s.mode: invalid mode "log" (want block or detect)`},
		{"bad check", "    checks: [sqli, rce]\n", `policies.s.checks[1]: invalid checks "rce" (want sqli, xss)`},
		{"bad inspect", "    inspect: [body, headers]\n", `policies.s.inspect[1]: invalid inspect "headers"`},
		{"bad header", "    headers: [\"bad header\"]\n", `policies.s.headers[0]: invalid header name "bad header"`},
		{"negative size", "    max_value_bytes: -1\n", `policies.s.max_value_bytes: must not be negative`},
		{"depth", "    max_json_depth: 5000\n", `policies.s.max_json_depth: must be between 1 and 1000`},
		{"unknown key", "    paranoia: 2\n", `unknown key "paranoia"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(policytest.Spec(t, "policies:\n  s:\n    type: sanitize\n"+tc.body, "s"))
			policytest.WantError(t, err, tc.want)
		})
	}
}

type req struct {
	method, target, ctype, body string
	header                      http.Header
}

func (q req) build() *http.Request {
	method := q.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r := httptest.NewRequest(method, "http://api.test"+q.target, body)
	if q.ctype != "" {
		r.Header.Set("Content-Type", q.ctype)
	}
	for k, vv := range q.header {
		r.Header[k] = vv
	}
	return r
}

// attacks are blocked wherever they are, and never reach the upstream.
var attacks = []struct {
	name  string
	req   req
	check string
}{
	{"sqli in query", req{target: "/items?id=" + url.QueryEscape("1' OR '1'='1")}, "sqli"},
	{"sqli union in query", req{target: "/items?q=" + url.QueryEscape("1 UNION SELECT password FROM users")}, "sqli"},
	{"sqli in query name", req{target: "/items?" + url.QueryEscape("1' or 1=1--") + "=x"}, "sqli"},
	{"xss in query", req{target: "/search?q=" + url.QueryEscape("<script>alert(1)</script>")}, "xss"},
	{"xss handler in query", req{target: "/search?q=" + url.QueryEscape(`"><img src=x onerror=alert(1)>`)}, "xss"},
	{"sqli in path", req{target: "/items/1'%20OR%20'1'='1"}, "sqli"},
	{"xss in path", req{target: "/p/%3Cscript%3Ealert(1)%3C%2Fscript%3E"}, "xss"},
	{"sqli in form", req{method: "POST", target: "/login", ctype: "application/x-www-form-urlencoded", body: "user=admin&pass=" + url.QueryEscape("' OR 1=1 --")}, "sqli"},
	{"xss in form", req{method: "POST", target: "/c", ctype: "application/x-www-form-urlencoded", body: "c=" + url.QueryEscape("<svg/onload=alert(1)>")}, "xss"},
	{"sqli in JSON value", req{method: "POST", target: "/api", ctype: "application/json", body: `{"user":{"name":"x","filter":"1' OR '1'='1"}}`}, "sqli"},
	{"sqli in escaped JSON", req{method: "POST", target: "/api", ctype: "application/json", body: `{"q":"1\u0027 OR \u00271\u0027=\u00271"}`}, "sqli"},
	{"xss in JSON array", req{method: "POST", target: "/api", ctype: "application/vnd.api+json", body: `{"tags":["ok","<script>alert(1)</script>"]}`}, "xss"},
	{"xss in JSON key", req{method: "POST", target: "/api", ctype: "application/json", body: `{"<script>alert(1)</script>":1}`}, "xss"},
	{"sqli in cookie", req{target: "/", header: http.Header{"Cookie": {"session=abc; pref=1' OR '1'='1"}}}, "sqli"},
	{"NUL in query", req{target: "/x?a=b%00c"}, "nul"},
	{"invalid UTF-8 in query", req{target: "/x?a=%ff%fe"}, "utf8"},
	{"overlong value", req{target: "/x?a=" + strings.Repeat("a", 5000)}, "too_long"},
	{"malformed JSON", req{method: "POST", target: "/api", ctype: "application/json", body: `{"a":1,}`}, "json"},
	{"JSON too deep", req{method: "POST", target: "/api", ctype: "application/json", body: strings.Repeat("[", 40) + strings.Repeat("]", 40)}, "json_depth"},
	{"NUL in JSON", req{method: "POST", target: "/api", ctype: "application/json", body: `{"a":"x\u0000y"}`}, "nul"},
	{"JSON body too large", req{method: "POST", target: "/api", ctype: "application/json", body: `{"a":"` + strings.Repeat("b", 2<<20) + `"}`}, "body_too_large"},
}

// benign requests pass untouched.
var benign = []req{
	{target: "/users/42"},
	{target: "/search?q=" + url.QueryEscape("O'Brien")},
	{target: "/search?q=" + url.QueryEscape("rock & roll") + "&page=2&sort=-created_at"},
	{target: "/search?q=" + url.QueryEscape("select a product, then order it")},
	{target: "/docs?email=" + url.QueryEscape("jane.doe+news@example.com") + "&next=" + url.QueryEscape("https://example.com/a/b?c=d")},
	{target: "/calc?expr=" + url.QueryEscape("1-2") + "&range=" + url.QueryEscape("10-20")},
	{target: "/wiki/Caf%C3%A9_au_lait"},
	{target: "/", header: http.Header{"Cookie": {"session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc; theme=dark"}}},
	{method: "POST", target: "/api/users", ctype: "application/json", body: `{"name":"Seán O'Brien","age":42,"tags":["a","b"],"bio":"I like SQL & Go (1-2 hours a day).","nested":{"ok":true,"n":null,"x":-1.5e3}}`},
	{method: "POST", target: "/login", ctype: "application/x-www-form-urlencoded", body: "user=jane&pass=" + url.QueryEscape("p@ss w0rd!#%")},
	{method: "POST", target: "/upload", ctype: "application/octet-stream", body: "\x00\xff' OR 1=1 <script>"},
	{method: "POST", target: "/api", ctype: "application/json", body: `{"emoji":"\ud83d\ude00","quote":"she said \"hi\""}`},
}

func TestSanitize(t *testing.T) {
	z := compile(t, "    headers: [User-Agent]\n")
	for _, tc := range attacks {
		t.Run("attack/"+tc.name, func(t *testing.T) {
			up := &policytest.Upstream{}
			rec, _ := policytest.Serve(z.Wrap(up), tc.req.build())
			if rec.Code != http.StatusForbidden || policytest.Code(rec) != "waf_blocked" {
				t.Fatalf("got %d %s, want 403 waf_blocked", rec.Code, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.check+" in ") {
				t.Errorf("body %s does not name the check %s", rec.Body, tc.check)
			}
			if up.Calls != 0 {
				t.Errorf("the upstream was reached")
			}
		})
	}
	for _, tc := range benign {
		t.Run("benign"+tc.target, func(t *testing.T) {
			up := &policytest.Upstream{}
			rec, _ := policytest.Serve(z.Wrap(up), tc.build())
			if rec.Code != http.StatusOK || up.Calls != 1 {
				t.Fatalf("got %d %s, want it forwarded", rec.Code, rec.Body)
			}
			if tc.body != "" {
				b, _ := io.ReadAll(up.Last.Body)
				if string(b) != tc.body {
					t.Errorf("upstream body %q, want %q", b, tc.body)
				}
			}
		})
	}
}

// TestSanitizeNeverEchoes: the refusal names where, never the value.
func TestSanitizeNeverEchoes(t *testing.T) {
	z := compile(t, "")
	rec, _ := policytest.Serve(z.Wrap(&policytest.Upstream{}), req{target: "/x?q=" + url.QueryEscape("<script>steal()</script>")}.build())
	if strings.Contains(rec.Body.String(), "steal") || !strings.Contains(rec.Body.String(), `query parameter \"q\"`) {
		t.Errorf("body %s", rec.Body)
	}
}

func TestSanitizeDetectAndExclude(t *testing.T) {
	detect := compile(t, "    mode: detect\n")
	up := &policytest.Upstream{}
	rec, _ := policytest.Serve(detect.Wrap(up), req{target: "/x?q=" + url.QueryEscape("1' OR '1'='1")}.build())
	if rec.Code != 200 || up.Calls != 1 {
		t.Errorf("detect mode: %d, calls %d; want forwarded", rec.Code, up.Calls)
	}
	excl := compile(t, "    exclude: [html]\n")
	rec, _ = policytest.Serve(excl.Wrap(&policytest.Upstream{}), req{method: "POST", target: "/x", ctype: "application/json", body: `{"html":"<b onclick=alert(1)>x</b>"}`}.build())
	if rec.Code != 200 {
		t.Errorf("excluded JSON key: %d %s", rec.Code, rec.Body)
	}
	rec, _ = policytest.Serve(excl.Wrap(&policytest.Upstream{}), req{method: "POST", target: "/x", ctype: "application/json", body: `{"html":"a\u0000b"}`}.build())
	if rec.Code != 403 {
		t.Errorf("structure is checked even in excluded values: %d", rec.Code)
	}
	onlyQuery := compile(t, "    inspect: [query]\n")
	rec, _ = policytest.Serve(onlyQuery.Wrap(&policytest.Upstream{}), req{method: "POST", target: "/x", ctype: "application/json", body: `{"q":"1' OR '1'='1"}`}.build())
	if rec.Code != 200 {
		t.Errorf("body not inspected with inspect: [query]: %d", rec.Code)
	}
}

// TestSanitizeChunkedBodyGetsLength: a chunked JSON body that was read is
// forwarded whole with its length.
func TestSanitizeChunkedBodyGetsLength(t *testing.T) {
	z := compile(t, "")
	body := `{"a":"b"}`
	r := httptest.NewRequest(http.MethodPost, "http://api.test/x", io.MultiReader(strings.NewReader(body)))
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	r.Header.Set("Content-Type", "application/json")
	up := &policytest.Upstream{}
	policytest.Serve(z.Wrap(up), r)
	if up.Calls != 1 || up.Last.ContentLength != int64(len(body)) || up.Last.TransferEncoding != nil {
		t.Fatalf("calls %d, ContentLength %d, TE %v", up.Calls, up.Last.ContentLength, up.Last.TransferEncoding)
	}
	b, _ := io.ReadAll(up.Last.Body)
	gb, _ := up.Last.GetBody()
	b2, _ := io.ReadAll(gb)
	if string(b) != body || string(b2) != body {
		t.Errorf("body %q, GetBody %q", b, b2)
	}
}

// TestJSONWalker compares the walker with encoding/json: the same verdict
// on validity and the same strings.
func TestJSONWalker(t *testing.T) {
	for _, doc := range []string{
		`{}`, `[]`, `""`, `0`, `-0.5e+10`, `true`, ` null `, `{"a":[1,2,{"b":"c"}],"d":"\u00e9\n"}`,
		`{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `{"a" 1}`, `"\x"`, "\"\x01\"", `{"a":tru}`, `[1] [2]`, `"\ud83d\ude00"`, `"\ud83d"`,
	} {
		checkWalker(t, []byte(doc))
	}
}

func checkWalker(t *testing.T, doc []byte) {
	t.Helper()
	var got []string
	w := &jsonWalker{b: doc, max: 1000, visit: func(s []byte, isKey bool, key []byte) error {
		// encoding/json turns each invalid UTF-8 byte into U+FFFD; the
		// walker passes the bytes on (and value() refuses them).
		var b strings.Builder
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				b.WriteRune(utf8.RuneError)
			} else {
				b.Write(s[i : i+n])
			}
			i += n
		}
		got = append(got, b.String())
		return nil
	}}
	err := w.walk()
	if valid := json.Valid(doc); valid != (err == nil) {
		t.Fatalf("%q: walker error %v, encoding/json valid %v", doc, err, valid)
	}
	if err != nil {
		return
	}
	var v any
	json.Unmarshal(doc, &v)
	var want []string
	var collect func(any)
	collect = func(v any) {
		switch v := v.(type) {
		case string:
			want = append(want, v)
		case []any:
			for _, e := range v {
				collect(e)
			}
		case map[string]any:
			for k, e := range v {
				want = append(want, k)
				collect(e)
			}
		}
	}
	collect(v)
	count := func(ss []string) map[string]int {
		m := map[string]int{}
		for _, s := range ss {
			m[s]++
		}
		return m
	}
	g, wn := count(got), count(want)
	for s, n := range wn {
		if g[s] < n {
			t.Fatalf("%q: string %q seen %d times by the walker, encoding/json has it %d times", doc, s, g[s], n)
		}
	}
}

func FuzzJSONWalker(f *testing.F) {
	for _, s := range []string{`{"a":[1,"b",{"c":null}]}`, `"\u0041\ud83d\ude00"`, `[1e5,-0.1,true]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if bytes.Count(doc, []byte("[")) > 500 || bytes.Count(doc, []byte("{")) > 500 {
			return
		}
		checkWalker(t, doc)
	})
}

// FuzzSanitize: any request gets a verdict without a panic, and a
// forwarded body is the one sent.
func FuzzSanitize(f *testing.F) {
	f.Add("/x?q=1", "application/json", `{"a":"b"}`)
	f.Add("/x?q=%27+or+1%3D1", "application/x-www-form-urlencoded", "a=b&c=%3Cscript%3E")
	z := compile(f, "")
	f.Fuzz(func(t *testing.T, target, ctype, body string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(target, "/") {
			return
		}
		r := httptest.NewRequest(http.MethodPost, "http://api.test/", strings.NewReader(body))
		r.URL = u
		r.Header.Set("Content-Type", ctype)
		up := &policytest.Upstream{}
		rec, _ := policytest.Serve(z.Wrap(up), r)
		if rec.Code == 200 {
			b, _ := io.ReadAll(up.Last.Body)
			if string(b) != body {
				t.Fatalf("forwarded body %q, sent %q", b, body)
			}
		} else if rec.Code != 403 {
			t.Fatalf("status %d", rec.Code)
		}
	})
}

// BenchmarkSanitize: the cost of the policy for typical requests.
func BenchmarkSanitize(b *testing.B) {
	z := compile(b, "")
	json1k := `{"user":{"id":12345,"name":"Jane O'Brien","email":"jane@example.com","tags":["admin","ops","dev"]},"items":[` +
		strings.Repeat(`{"sku":"A-1234","qty":2,"note":"leave at the door, please"},`, 12) + `{"sku":"Z","qty":1,"note":""}]}`
	cases := []struct {
		name string
		req  req
	}{
		{"GET", req{target: "/api/v1/users/42/orders?page=2&per_page=50&sort=-created_at&q=" + url.QueryEscape("blue shoes"),
			header: http.Header{"Cookie": {"session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc; theme=dark"}}}},
		{"JSON-1KiB", req{method: "POST", target: "/api/v1/orders", ctype: "application/json", body: json1k}},
		{"form-16KiB", req{method: "POST", target: "/form", ctype: "application/x-www-form-urlencoded", body: strings.Repeat("field_name=some+ordinary+value+here&", 16384/36)}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// The request is built once; only its body is renewed, so that
			// the figure is the policy's own cost.
			r := c.req.build()
			body := []byte(c.req.body)
			b.ReportAllocs()
			for b.Loop() {
				if c.req.body != "" {
					r.Body = io.NopCloser(bytes.NewReader(body))
					r.ContentLength = int64(len(body))
				}
				if f, err := z.Inspect(r); f != nil || err != nil {
					b.Fatalf("finding %v, err %v", f, err)
				}
			}
		})
	}
}
