package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// listenerYAML is the head of every in-process test config: one listener
// and the admin API on free ports. limits is a YAML flow map such as
// "{max_body_bytes: 1024}", or "" for the defaults.
func listenerYAML(limits string) string {
	s := "listeners:\n  - name: public\n    address: \"127.0.0.1:0\"\n"
	if limits != "" {
		s += "    limits: " + limits + "\n"
	}
	return s + "admin:\n  address: \"127.0.0.1:0\"\ndrain_timeout: 5s\n"
}

// startGateway runs the config document y in-process (see gwtest). The
// gateway is drained and stopped when the test ends.
func startGateway(t *testing.T, y string) *gwtest.Gateway {
	t.Helper()
	if !strings.Contains(y, "\nobservability:") {
		// The default access log is stdout, which would drown test output.
		y += "observability:\n  access_log: {path: \"off\"}\n"
	}
	return gwtest.Start(t, y)
}

// newClient returns an HTTP/1.1 client that never uses a proxy from the
// environment and does not follow redirects.
func newClient(t *testing.T) *http.Client { return gwtest.Client(t, 20*time.Second) }

// seen is what the echo upstream reports about the request it received.
type seen struct {
	Name       string      `json:"name"`
	Method     string      `json:"method"`
	Host       string      `json:"host"`
	RequestURI string      `json:"request_uri"`
	Path       string      `json:"path"`
	Query      string      `json:"query"`
	Proto      string      `json:"proto"`
	Header     http.Header `json:"header"`
	BodyLen    int         `json:"body_len"`
	BodySHA256 string      `json:"body_sha256"`
	Trailer    http.Header `json:"trailer"`
}

// echoHandler answers every request with a JSON description of it (seen).
func echoHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		s := seen{Name: name, Method: r.Method, Host: r.Host, RequestURI: r.RequestURI, Path: r.URL.Path,
			Query: r.URL.RawQuery, Proto: r.Proto, Header: r.Header, BodyLen: int(n),
			BodySHA256: hex.EncodeToString(h.Sum(nil)), Trailer: r.Trailer}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", name)
		json.NewEncoder(w).Encode(s)
	})
}

// echoUpstream starts an echo upstream and returns its address.
func echoUpstream(t *testing.T, name string) string {
	return gwtest.Upstream(t, echoHandler(name))
}

// do sends req and returns the response with its body read.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, b
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// get is do for a plain GET.
func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	return do(t, c, newRequest(t, http.MethodGet, url, nil))
}

// decodeSeen parses an echo upstream's answer.
func decodeSeen(t *testing.T, resp *http.Response, body []byte) seen {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", resp.StatusCode, body)
	}
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("decode upstream echo: %v; body %q", err, body)
	}
	return s
}

// errorBody is the gateway's JSON error document.
type errorBody struct {
	Error struct {
		Status    int    `json:"status"`
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// checkError asserts a gateway-made JSON error response.
func checkError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v; body %q", err, body)
	}
	if e.Error.Status != status || e.Error.Code != code {
		t.Errorf("error body status %d code %q, want %d %q; body %s", e.Error.Status, e.Error.Code, status, code, body)
	}
	if e.Error.Message == "" {
		t.Errorf("error body has no message: %s", body)
	}
	rid := resp.Header.Get("X-Request-ID")
	if rid == "" || e.Error.RequestID != rid {
		t.Errorf("error body request_id %q, X-Request-ID header %q: want equal and non-empty", e.Error.RequestID, rid)
	}
}

// rawExchange writes raw bytes to addr and returns everything the server
// sends until it closes the connection or the deadline passes.
func rawExchange(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	io.Copy(&buf, c)
	return buf.String()
}

// statusOf returns the status code of a raw HTTP/1.x response.
func statusOf(t *testing.T, raw string) int {
	t.Helper()
	line, _, _ := strings.Cut(raw, "\r\n")
	var proto string
	var code int
	if _, err := fmt.Sscanf(line, "%s %d", &proto, &code); err != nil {
		t.Fatalf("no status line in %q", raw)
	}
	return code
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// doSeen sends req to a route that ends at an echo upstream and returns
// what the upstream saw.
func doSeen(t *testing.T, c *http.Client, req *http.Request) seen {
	t.Helper()
	resp, body := do(t, c, req)
	return decodeSeen(t, resp, body)
}
