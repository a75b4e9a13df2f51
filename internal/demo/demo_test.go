package demo_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/app"
	"github.com/rampart-gw/rampart/internal/demo"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// curlLine is one command of the demo's instructions, parsed.
type curlLine struct {
	text    string // the printed line
	repeat  int    // 1, or N for "for i in $(seq N); do ...; done"
	method  string
	header  http.Header
	host    string
	url     string
	grep    *regexp.Regexp // "| grep [-o] RE", applied to the body
	promise string         // the "# comment", "" if none
}

// shellWords splits s like a POSIX shell for the subset the demo prints:
// blanks separate words, single quotes group, and " #" starts a comment.
func shellWords(s string) (words []string, comment string) {
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			if c == '\'' {
				quoted = false
			} else {
				cur.WriteByte(c)
			}
		case c == '\'':
			quoted, inWord = true, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			return words, strings.TrimSpace(s[i+1:])
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, ""
}

var seqLoop = regexp.MustCompile(`^for i in \$\(seq ([0-9]+)\); do (.*); done(.*)$`)

// parseCurl parses one printed command line.
func parseCurl(t *testing.T, line string) curlLine {
	t.Helper()
	cl := curlLine{text: line, repeat: 1, method: http.MethodGet, header: http.Header{}}
	cmd := line
	if m := seqLoop.FindStringSubmatch(line); m != nil {
		cl.repeat, _ = strconv.Atoi(m[1])
		cmd = m[2] + m[3]
	}
	words, comment := shellWords(cmd)
	cl.promise = comment
	// Split the pipeline: the curl command, then filters.
	var stages [][]string
	cur := []string{}
	for _, w := range words {
		if w == "|" {
			stages = append(stages, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, w)
	}
	stages = append(stages, cur)
	c := stages[0]
	if len(c) == 0 || c[0] != "curl" {
		t.Fatalf("not a curl command: %q", line)
	}
	for i := 1; i < len(c); i++ {
		w := c[i]
		switch {
		case w == "-X":
			i++
			cl.method = c[i]
		case w == "-H":
			i++
			k, v, ok := strings.Cut(c[i], ":")
			if !ok {
				t.Fatalf("%q: bad header %q", line, c[i])
			}
			v = strings.TrimSpace(v)
			if strings.EqualFold(k, "Host") {
				cl.host = v
			} else {
				cl.header.Add(k, v)
			}
		case strings.HasPrefix(w, "-"):
			for _, f := range w[1:] {
				if !strings.ContainsRune("siN", f) {
					t.Fatalf("%q: curl flag -%c not understood by the test", line, f)
				}
			}
		case cl.url == "":
			cl.url = w
		default:
			t.Fatalf("%q: unexpected word %q", line, w)
		}
	}
	if _, err := url.Parse(cl.url); err != nil || !strings.HasPrefix(cl.url, "http://") {
		t.Fatalf("%q: bad URL %q", line, cl.url)
	}
	for _, s := range stages[1:] {
		switch {
		case len(s) >= 2 && s[0] == "grep":
			cl.grep = regexp.MustCompile(s[len(s)-1])
		case len(s) == 1 && s[0] == "sort", len(s) == 2 && s[0] == "uniq" && s[1] == "-c":
		default:
			t.Fatalf("%q: pipeline stage %q not understood by the test", line, s)
		}
	}
	return cl
}

type answer struct {
	resp    *http.Response
	body    []byte
	elapsed time.Duration
	// firstChunk is how long the first body bytes took (for streams).
	firstChunk time.Duration
}

func (cl curlLine) do(t *testing.T, c *http.Client) answer {
	t.Helper()
	req, err := http.NewRequest(cl.method, cl.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = cl.header.Clone()
	if cl.host != "" {
		req.Host = cl.host
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", cl.text, err)
	}
	defer resp.Body.Close()
	a := answer{resp: resp}
	br := bufio.NewReader(resp.Body)
	if _, err := br.Peek(1); err == nil {
		a.firstChunk = time.Since(start)
	}
	a.body, err = io.ReadAll(br)
	if err != nil {
		t.Fatalf("%s: read body: %v", cl.text, err)
	}
	a.elapsed = time.Since(start)
	return a
}

func jsonBody(t *testing.T, a answer) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("status %d, body is not JSON (%v): %s", a.resp.StatusCode, err, a.body)
	}
	return v
}

func wantStatus(t *testing.T, a answer, code int) {
	t.Helper()
	if a.resp.StatusCode != code {
		t.Fatalf("status %d, want %d: %s", a.resp.StatusCode, code, a.body)
	}
}

func wantError(t *testing.T, a answer, code int, errCode string) {
	t.Helper()
	wantStatus(t, a, code)
	if ct := a.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	v := jsonBody(t, a)
	e, _ := v["error"].(map[string]any)
	if got := fmt.Sprint(v["error"]); e != nil {
		got = fmt.Sprint(e["code"])
		if got != errCode {
			t.Errorf("error code %q, want %q: %s", got, errCode, a.body)
		}
	} else if got != errCode {
		t.Errorf("error %q, want %q: %s", got, errCode, a.body)
	}
}

func wantUsers(t *testing.T, a answer, path string, versions ...string) string {
	t.Helper()
	wantStatus(t, a, http.StatusOK)
	v := jsonBody(t, a)
	inst := map[string]string{"a": "v1", "b": "v1", "c": "v2"}
	ver, _ := v["version"].(string)
	if v["service"] != "users" || v["path"] != path || inst[fmt.Sprint(v["instance"])] != ver {
		t.Errorf("answer %s, want service users, path %s, a consistent instance", a.body, path)
	}
	for _, w := range versions {
		if ver == w {
			return ver
		}
	}
	t.Errorf("version %q, want one of %v: %s", ver, versions, a.body)
	return ver
}

// TestInstructions starts the demo exactly as `rampart demo` does (on free
// ports), parses every command its instructions print and checks that each
// does what its comment promises.
func TestInstructions(t *testing.T) {
	d, err := demo.Start(demo.Config{Listen: "127.0.0.1:0", Admin: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	d.GatewayConfig.Observability.AccessLog.Path = "off"
	g := gwtest.Run(t, app.Options{Config: d.GatewayConfig})
	text := d.Instructions(g.Addr, strings.TrimPrefix(g.Admin, "http://"))
	c := gwtest.Client(t, 10*time.Second)

	// Each promise the instructions make, keyed by the comment (or, for
	// lines without one, by the URL's path).
	checks := map[string]func(t *testing.T, cl curlLine){
		"90/10 split: users v1 (instances a:b weighted 3:1) or v2": func(t *testing.T, cl curlLine) {
			n := map[string]int{}
			for range 40 {
				n[wantUsers(t, cl.do(t, c), "/42", "v1", "v2")]++
			}
			if n["v1"] == 0 {
				t.Errorf("40 calls, none answered by v1: %v", n)
			}
		},
		"/users/1": func(t *testing.T, cl curlLine) { // the counting loop
			if cl.repeat != 20 || cl.grep == nil {
				t.Fatalf("loop parsed as repeat %d grep %v", cl.repeat, cl.grep)
			}
			for range cl.repeat {
				a := cl.do(t, c)
				wantUsers(t, a, "/1", "v1", "v2")
				if !cl.grep.Match(a.body) {
					t.Errorf("grep %q finds nothing in %s", cl.grep, a.body)
				}
			}
		},
		"header match: always v2": func(t *testing.T, cl curlLine) {
			for i := range 20 {
				if v := wantUsers(t, cl.do(t, c), "/42", "v2"); v != "v2" {
					t.Fatalf("call %d of 20 answered by %s", i+1, v)
				}
			}
		},
		"rewrite /echo/ -> /v1/echo/, shows forwarded headers": func(t *testing.T, cl curlLine) {
			a := cl.do(t, c)
			wantStatus(t, a, http.StatusOK)
			v := jsonBody(t, a)
			h, _ := v["headers"].(map[string]any)
			if v["path"] != "/v1/echo/hello" || v["query"] != "x=1" || h["X-Forwarded-For"] != "127.0.0.1" ||
				h["X-Forwarded-Proto"] != "http" || h["X-Forwarded-Host"] != g.Addr {
				t.Errorf("echo answered %s", a.body)
			}
		},
		"host-based route": func(t *testing.T, cl curlLine) {
			a := cl.do(t, c)
			wantStatus(t, a, http.StatusOK)
			v := jsonBody(t, a)
			if v["host"] != "admin.localhost" || v["path"] != "/anything" {
				t.Errorf("echo answered %s", a.body)
			}
		},
		"server-sent events, streamed as they happen": func(t *testing.T, cl curlLine) {
			a := cl.do(t, c)
			wantStatus(t, a, http.StatusOK)
			if ct := a.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("Content-Type %q", ct)
			}
			if n := strings.Count(string(a.body), "data: {\"tick\":"); n != 5 {
				t.Errorf("%d events, want 5: %s", n, a.body)
			}
			// The upstream sends an event every 500ms: the first must
			// arrive long before the stream ends.
			if a.firstChunk > 1500*time.Millisecond || a.elapsed-a.firstChunk < time.Second {
				t.Errorf("first event after %s, stream ended after %s: not streamed", a.firstChunk, a.elapsed)
			}
		},
		"404 route_not_found (JSON)": func(t *testing.T, cl curlLine) {
			wantError(t, cl.do(t, c), http.StatusNotFound, "route_not_found")
		},
		"404: the users route only allows GET": func(t *testing.T, cl curlLine) {
			if cl.method != http.MethodPost {
				t.Fatalf("method %s", cl.method)
			}
			wantError(t, cl.do(t, c), http.StatusNotFound, "route_not_found")
		},
		"504 upstream_timeout after 1s": func(t *testing.T, cl curlLine) {
			a := cl.do(t, c)
			wantError(t, a, http.StatusGatewayTimeout, "upstream_timeout")
			if a.elapsed < 900*time.Millisecond || a.elapsed > 2500*time.Millisecond {
				t.Errorf("answered after %s, want about 1s", a.elapsed)
			}
		},
		"502 upstream_unreachable": func(t *testing.T, cl curlLine) {
			wantError(t, cl.do(t, c), http.StatusBadGateway, "upstream_unreachable")
		},
		"admin API: routes, upstreams, config, metrics": func(t *testing.T, cl curlLine) {
			a := cl.do(t, c)
			wantStatus(t, a, http.StatusOK)
			var v struct {
				Routes []struct{ Name string } `json:"routes"`
			}
			if err := json.Unmarshal(a.body, &v); err != nil || len(v.Routes) == 0 {
				t.Fatalf("routes: %v %s", err, a.body)
			}
			for _, p := range []string{"/api/v1/upstreams", "/api/v1/config", "/metrics"} {
				u := strings.TrimSuffix(cl.url, "/api/v1/routes") + p
				other := cl
				other.url = u
				wantStatus(t, other.do(t, c), http.StatusOK)
			}
		},
		"/metrics": func(t *testing.T, cl curlLine) { // | grep rampart_http_requests_total
			a := cl.do(t, c)
			wantStatus(t, a, http.StatusOK)
			if cl.grep == nil {
				t.Fatal("no grep parsed")
			}
			if !regexp.MustCompile(`(?m)^` + cl.grep.String() + `\{.*\} [0-9]+`).Match(a.body) {
				t.Errorf("no %s series in /metrics", cl.grep)
			}
		},
	}

	var lines []curlLine
	for l := range strings.SplitSeq(text, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "curl ") || strings.HasPrefix(l, "for ") {
			lines = append(lines, parseCurl(t, l))
		}
	}
	if len(lines) < 10 {
		t.Fatalf("only %d commands found in the instructions:\n%s", len(lines), text)
	}
	seen := map[string]bool{}
	for _, cl := range lines {
		key := cl.promise
		if key == "" {
			u, _ := url.Parse(cl.url)
			key = u.Path
		}
		check := checks[key]
		if check == nil {
			t.Errorf("no check for the printed line %q (key %q)", cl.text, key)
			continue
		}
		seen[key] = true
		t.Run(key, func(t *testing.T) { check(t, cl) })
	}
	for k := range checks {
		if !seen[k] {
			t.Errorf("check %q matches no printed line", k)
		}
	}
}
