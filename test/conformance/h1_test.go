package conformance

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// h1case is one exact-bytes exchange.
type h1case struct {
	name   string
	raw    string
	status []int // the statuses of the responses, in order
	closed bool  // the gateway closes the connection after them
	// up is how many requests reached the upstream complete. When partial
	// is set, one more may have started (a chunked body that failed while
	// streaming) but must never complete.
	up      int
	partial bool
	check   func(t *testing.T, s seen)
}

const host = "Host: gw.test\r\n"

func get(target string, fields ...string) string {
	return "GET " + target + " HTTP/1.1\r\n" + host + strings.Join(fields, "") + "\r\n"
}

func post(fields string, body string) string {
	return "POST /p HTTP/1.1\r\n" + host + fields + "\r\n" + body
}

func te(v string) string { return "Transfer-Encoding: " + v + "\r\n" }
func cl(v string) string { return "Content-Length: " + v + "\r\n" }

func path(want string) func(*testing.T, seen) {
	return func(t *testing.T, s seen) {
		t.Helper()
		if s.path != want {
			t.Errorf("upstream path %q, want %q", s.path, want)
		}
	}
}

func h1cases() []h1case {
	bad := func(name, raw string) h1case {
		return h1case{name: name, raw: raw, status: []int{400}, closed: true}
	}
	badBody := func(name, body string) h1case {
		return h1case{name: name, raw: post(te("chunked"), body), status: []int{400}, closed: true, partial: true}
	}
	with := func(c h1case, status int) h1case { c.status = []int{status}; return c }
	many := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		return b.String()
	}
	smuggled := get("/smuggled")
	return []h1case{
		// Baselines: valid requests go through, keep-alive stays open.
		{name: "valid GET", raw: get("/"), status: []int{200}, up: 1, check: path("/")},
		{name: "valid POST content-length", raw: post(cl("5"), "hello"), status: []int{200}, up: 1,
			check: func(t *testing.T, s seen) {
				if s.body != "hello" {
					t.Errorf("body %q", s.body)
				}
			}},
		{name: "valid chunked with extension and trailer", raw: post(te("chunked"), "5;ext=1;q=\"a b\"\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"), status: []int{200}, up: 1,
			check: func(t *testing.T, s seen) {
				if s.body != "hello" {
					t.Errorf("body %q", s.body)
				}
			}},
		{name: "valid chunked then pipelined", raw: post(te("chunked"), "3\r\nabc\r\n0\r\n\r\n") + get("/second"), status: []int{200, 200}, up: 2, check: path("/second")},
		{name: "pipelined GETs", raw: get("/a") + get("/b") + get("/c"), status: []int{200, 200, 200}, up: 3, check: path("/c")},
		{name: "leading empty line", raw: "\r\n" + get("/"), status: []int{200}, up: 1},
		{name: "HTTP/1.0 without Host", raw: "GET /old HTTP/1.0\r\n\r\n", status: []int{200}, closed: true, up: 1},
		{name: "OPTIONS asterisk answered locally", raw: "OPTIONS * HTTP/1.1\r\n" + host + "\r\n", status: []int{200}, up: 0},
		{name: "expect 100-continue", raw: post(cl("2")+"Expect: 100-continue\r\n", "hi"), status: []int{200}, up: 1},
		{name: "absolute-form same authority", raw: "GET http://gw.test/abs HTTP/1.1\r\n" + host + "\r\n", status: []int{200}, up: 1, check: path("/abs")},
		{name: "absolute-form authority wins over Host", raw: "GET http://other.test/abs HTTP/1.1\r\n" + host + "\r\n", status: []int{200}, up: 1,
			check: func(t *testing.T, s seen) {
				if got := s.header.Get("X-Forwarded-Host"); got != "other.test" && s.host != "other.test" {
					t.Errorf("upstream host %q, X-Forwarded-Host %q; want other.test", s.host, got)
				}
			}},
		{name: "upgrade h2c stripped", raw: get("/", "Connection: Upgrade, HTTP2-Settings\r\n", "Upgrade: h2c\r\n", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"), status: []int{200}, up: 1,
			check: func(t *testing.T, s seen) {
				if s.header.Get("Upgrade") != "" || s.header.Get("Http2-Settings") != "" {
					t.Errorf("h2c upgrade forwarded: %v", s.header)
				}
			}},
		{name: "underscore header dropped", raw: get("/", "X_Forwarded_For: 6.6.6.6\r\n", "X-Keep: 1\r\n"), status: []int{200}, up: 1,
			check: func(t *testing.T, s seen) {
				for k := range s.header {
					if strings.Contains(k, "_") {
						t.Errorf("underscore header forwarded: %s", k)
					}
				}
				if s.header.Get("X-Keep") != "1" {
					t.Errorf("other header lost")
				}
			}},
		{name: "upgrade not accepted then next request", raw: get("/up", "Connection: Upgrade\r\n", "Upgrade: websocket\r\n") + get("/next"), status: []int{200, 200}, up: 2, check: path("/next")},
		{name: "upgrade not accepted then smuggling", raw: get("/up", "Connection: Upgrade\r\n", "Upgrade: websocket\r\n") + post(cl("4")+te("chunked"), "0\r\n\r\n"), status: []int{200, 400}, closed: true, up: 1},
		{name: "obs-text in value allowed", raw: get("/", "X-A: caf\xc3\xa9\r\n"), status: []int{200}, up: 1},

		// Content-Length and Transfer-Encoding together, in either order.
		bad("CL.TE", post(cl("4")+te("chunked"), "0\r\n\r\n"+smuggled)),
		bad("TE.CL", post(te("chunked")+cl("3"), "0\r\n\r\n"+smuggled)),
		bad("CL.TE identical zero", post(cl("0")+te("chunked"), "0\r\n\r\n")),
		// Content-Length values.
		bad("duplicate CL same", post(cl("5")+cl("5"), "hello")),
		bad("duplicate CL differing", post(cl("5")+cl("6"), "hello!")),
		bad("CL list", post(cl("5, 5"), "hello")),
		bad("CL plus sign", post(cl("+5"), "hello")),
		bad("CL negative", post(cl("-1"), "")),
		bad("CL hex", post(cl("0x5"), "hello")),
		bad("CL empty", post(cl(""), "")),
		bad("CL trailing junk", post(cl("5abc"), "hello")),
		bad("CL inner space", post(cl("5 5"), "hello")),
		bad("CL 2^64", post(cl("18446744073709551616"), "")),
		bad("CL 2^63", post(cl("9223372036854775808"), "")),
		// Transfer-Encoding variants.
		with(bad("TE unknown coding", post(te("gzip"), "")), 501),
		with(bad("TE identity", post(te("identity"), "")), 501),
		with(bad("TE gzip then chunked", post(te("gzip, chunked"), "0\r\n\r\n")), 501),
		with(bad("TE xchunked", post(te("xchunked"), "0\r\n\r\n")), 501),
		bad("TE chunked twice", post(te("chunked, chunked"), "0\r\n\r\n")),
		bad("TE chunked on two lines", post(te("chunked")+te("chunked"), "0\r\n\r\n")),
		bad("TE chunked not last", post(te("chunked, gzip"), "0\r\n\r\n")),
		bad("TE leading comma", post(te(", chunked"), "0\r\n\r\n")),
		bad("TE trailing comma", post(te("chunked,"), "0\r\n\r\n")),
		bad("TE empty", post(te(""), "")),
		bad("TE with parameter", post(te("chunked;q=1"), "0\r\n\r\n")),
		bad("TE space before colon", post("Transfer-Encoding : chunked\r\n", "0\r\n\r\n")),
		bad("TE vertical tab", post("Transfer-Encoding: \x0bchunked\r\n", "0\r\n\r\n")),
		bad("TE form feed", post("Transfer-Encoding: chunked\x0c\r\n", "0\r\n\r\n")),
		bad("TE non-breaking space", post("Transfer-Encoding: \xa0chunked\r\n", "0\r\n\r\n")),
		bad("TE quoted", post(te(`"chunked"`), "0\r\n\r\n")),
		bad("TE in HTTP/1.0", "POST /p HTTP/1.0\r\n"+host+te("chunked")+"\r\n0\r\n\r\n"),
		bad("TE obs-fold", post("Transfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n")),
		// Chunked bodies: refused while streaming; the upstream never gets
		// a complete request.
		badBody("chunk size not hex", "zz\r\nhello\r\n0\r\n\r\n"),
		badBody("chunk size negative", "-5\r\nhello\r\n0\r\n\r\n"),
		badBody("chunk size 0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"),
		badBody("chunk size empty", "\r\nhello\r\n0\r\n\r\n"),
		badBody("chunk size overflow", "10000000000000000\r\nhello\r\n0\r\n\r\n"),
		badBody("chunk size leading space", " 5\r\nhello\r\n0\r\n\r\n"),
		badBody("chunk size bare LF", "5\nhello\r\n0\r\n\r\n"),
		badBody("chunk data too long", "3\r\nhello\r\n0\r\n\r\n"),
		badBody("chunk data missing CRLF", "5\r\nhelloXX0\r\n\r\n"),
		badBody("chunk data bare LF", "5\r\nhello\n0\r\n\r\n"),
		badBody("chunk extension control byte", "5;a\x01\r\nhello\r\n0\r\n\r\n"),
		badBody("chunk extension bare CR", "5;a=b\rc\r\nhello\r\n0\r\n\r\n"),
		badBody("chunk extension unterminated quote", "5;a=\"b\r\nhello\r\n0\r\n\r\n"),
		badBody("last chunk bare LF", "5\r\nhello\r\n0\n\r\n"),
		badBody("trailer Content-Length", "5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"),
		badBody("trailer Transfer-Encoding", "5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
		badBody("trailer Host", "5\r\nhello\r\n0\r\nHost: evil.test\r\n\r\n"),
		badBody("trailer Authorization", "5\r\nhello\r\n0\r\nAuthorization: Bearer x\r\n\r\n"),
		badBody("trailer obs-fold", "5\r\nhello\r\n0\r\nX-A: b\r\n c\r\n\r\n"),
		badBody("trailer space before colon", "5\r\nhello\r\n0\r\nX-A : b\r\n\r\n"),
		// Header syntax.
		bad("space before colon", get("/", "X-A : b\r\n")),
		bad("tab before colon", get("/", "X-A\t: b\r\n")),
		bad("obs-fold", get("/", "X-A: b\r\n c\r\n")),
		bad("CR in value", get("/", "X-A: b\rc\r\n")),
		bad("bare LF line end", get("/", "X-A: b\nX-B: c\r\n")),
		bad("bare LF everywhere", "GET / HTTP/1.1\nHost: gw.test\n\n"),
		bad("NUL in value", get("/", "X-A: b\x00c\r\n")),
		bad("DEL in value", get("/", "X-A: b\x7fc\r\n")),
		bad("empty name", get("/", ": b\r\n")),
		bad("no colon", get("/", "X-A b\r\n")),
		bad("bad byte in name", get("/", "X(A): b\r\n")),
		bad("non-ASCII name", get("/", "X-\xc3\xa9: b\r\n")),
		// Request line.
		bad("no Host", "GET / HTTP/1.1\r\n\r\n"),
		bad("two Hosts", "GET / HTTP/1.1\r\n"+host+host+"\r\n"),
		bad("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
		bad("Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
		bad("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"),
		bad("Host empty", "GET / HTTP/1.1\r\nHost:\r\n\r\n"),
		bad("Host bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"),
		with(bad("version 1.2", "GET / HTTP/1.2\r\n"+host+"\r\n"), 505),
		with(bad("version 2.0", "GET / HTTP/2.0\r\n"+host+"\r\n"), 505),
		with(bad("version 0.9 form", "GET / HTTP/0.9\r\n"+host+"\r\n"), 505),
		bad("version lower case", "GET / http/1.1\r\n"+host+"\r\n"),
		bad("version trailing junk", "GET / HTTP/1.1x\r\n"+host+"\r\n"),
		bad("version missing", "GET /\r\n"+host+"\r\n"),
		bad("double space", "GET  / HTTP/1.1\r\n"+host+"\r\n"),
		bad("tab separator", "GET\t/ HTTP/1.1\r\n"+host+"\r\n"),
		bad("bad method byte", "G(T / HTTP/1.1\r\n"+host+"\r\n"),
		with(bad("CONNECT", "CONNECT gw.test:443 HTTP/1.1\r\n"+host+"\r\n"), 405),
		with(bad("TRACE", "TRACE / HTTP/1.1\r\n"+host+"\r\n"), 405),
		bad("asterisk with GET", "GET * HTTP/1.1\r\n"+host+"\r\n"),
		bad("fragment", get("/a#frag")),
		bad("fragment in query", get("/a?b#frag")),
		bad("space in target", "GET /a b HTTP/1.1\r\n"+host+"\r\n"),
		bad("control byte in target", get("/a\x01b")),
		bad("DEL in target", get("/a\x7fb")),
		bad("non-ASCII in target", get("/caf\xc3\xa9")),
		bad("quote in path", get("/a\"b")),
		bad("backslash in path", get("/a\\b")),
		bad("invalid percent-encoding", get("/a%zzb")),
		bad("invalid percent in query", get("/a?b=%g1")),
		bad("absolute-form userinfo", "GET http://u@gw.test/ HTTP/1.1\r\n"+host+"\r\n"),
		bad("absolute-form other scheme", "GET ftp://gw.test/ HTTP/1.1\r\n"+host+"\r\n"),
		bad("absolute-form no authority", "GET http:///x HTTP/1.1\r\n"+host+"\r\n"),
		bad("relative target", get("a/b")),
		{name: "PRI mid-connection", raw: get("/") + "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: []int{200, 400}, closed: true, up: 1},
		bad("reserved guard method", "RAMPART-REJECT /413 HTTP/1.1\r\n"+host+"\r\n"),
		with(bad("expect unknown", get("/", "Expect: teapot\r\n")), 417),
		// Limits.
		with(bad("16 KiB URI", get("/"+strings.Repeat("a", 16<<10))), 414),
		with(bad("70 KiB header", get("/", "X-Big: "+strings.Repeat("a", 70<<10)+"\r\n")), 431),
		with(bad("150 headers", get("/", many(150))), 431),
		with(bad("2 GiB declared body", post(cl(strconv.Itoa(2<<30)), "")), 413),
		{name: "100 headers allowed", raw: get("/", many(99)), status: []int{200}, up: 1},
		// Path normalisation before routing.
		{name: "dot segments", raw: get("/public/../admin"), status: []int{200}, up: 1, check: path("/admin")},
		{name: "encoded dot segments", raw: get("/public/%2e%2e/admin"), status: []int{200}, up: 1, check: path("/admin")},
		{name: "encoded dots upper case", raw: get("/public/%2E%2E/admin?x=1"), status: []int{200}, up: 1, check: path("/admin?x=1")},
		{name: "single dot", raw: get("/a/./b"), status: []int{200}, up: 1, check: path("/a/b")},
		{name: "double slashes", raw: get("//admin//x"), status: []int{200}, up: 1, check: path("/admin/x")},
		{name: "above root", raw: get("/../../etc/passwd"), status: []int{200}, up: 1, check: path("/etc/passwd")},
		{name: "encoded slash kept", raw: get("/a%2Fb"), status: []int{200}, up: 1, check: path("/a%2Fb")},
		{name: "encoded slash hiding dots", raw: get("/public%2F..%2Fadmin"), status: []int{400}, up: 0},
		{name: "encoded NUL", raw: get("/a%00b"), status: []int{400}, up: 0},
		{name: "encoded backslash", raw: get("/a%5cb"), status: []int{400}, up: 0},
		// Pipelining behind a refused request.
		{name: "good then smuggling then good", raw: get("/one") + post(cl("4")+te("chunked"), "0\r\n\r\n") + get("/three"), status: []int{200, 400}, closed: true, up: 1, check: path("/one")},
		{name: "good then bad chunk then good", raw: post(te("chunked"), "zz\r\n") + get("/two"), status: []int{400}, closed: true, partial: true},
	}
}

func TestHTTP1(t *testing.T) {
	rec := newRecorder(t)
	addr := gateway(t, rec.addr, "")
	passed := 0
	cases := h1cases()
	for _, c := range cases {
		ok := t.Run(c.name, func(t *testing.T) {
			settle(rec)
			started0, complete0 := rec.started.Load(), rec.complete.Load()
			begin := time.Now()
			ex := send(t, addr, c.raw, len(c.status))
			settle(rec)
			if len(ex.responses) != len(c.status) {
				t.Fatalf("got %d responses (err %v), want statuses %v", len(ex.responses), ex.err, c.status)
			}
			for i, resp := range ex.responses {
				if resp.StatusCode != c.status[i] {
					t.Errorf("response %d: status %d, want %d; body %s", i, resp.StatusCode, c.status[i], ex.bodies[i])
				}
				if resp.StatusCode >= 400 && !isJSONError(ex.bodies[i], strconv.Itoa(resp.StatusCode)) {
					t.Errorf("response %d: not a JSON error: %q", i, ex.bodies[i])
				}
			}
			if ex.closed != c.closed {
				t.Errorf("connection closed = %v, want %v", ex.closed, c.closed)
			}
			started, complete := rec.started.Load()-started0, rec.complete.Load()-complete0
			if complete != int64(c.up) {
				t.Errorf("upstream got %d complete requests, want %d", complete, c.up)
			}
			if max := int64(c.up); started != max && !(c.partial && started == max+1) {
				t.Errorf("upstream saw %d requests start, want %d", started, max)
			}
			if c.check != nil && complete > 0 {
				c.check(t, rec.seen())
			}
			if d := time.Since(begin); d > 3*time.Second {
				t.Errorf("took %s", d)
			}
		})
		if ok {
			passed++
		}
	}
	t.Logf("HTTP/1.1 conformance: %d/%d cases passed", passed, len(cases))
}

// TestRequestsPerConnection checks max_requests_per_connection.
func TestRequestsPerConnection(t *testing.T) {
	rec := newRecorder(t)
	addr := gateway(t, rec.addr, "{max_requests_per_connection: 3}")
	ex := send(t, addr, get("/1")+get("/2")+get("/3")+get("/4"), 4)
	if len(ex.responses) != 3 || !ex.closed {
		t.Fatalf("got %d responses, closed %v; want 3 then close", len(ex.responses), ex.closed)
	}
	if !ex.responses[2].Close || ex.responses[1].Close {
		t.Errorf("third response lacks Connection: close")
	}
}

// TestDeclaredBodyRefusedAtOnce checks that a 2 GiB Content-Length is
// refused from the head alone, while the client is still sending.
func TestDeclaredBodyRefusedAtOnce(t *testing.T) {
	rec := newRecorder(t)
	addr := gateway(t, rec.addr, "")
	begin := time.Now()
	ex := send(t, addr, post(cl(strconv.Itoa(2<<30)), "partial body"), 1)
	if len(ex.responses) != 1 || ex.responses[0].StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %+v", ex)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("413 took %s", d)
	}
}
