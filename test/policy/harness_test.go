package policy

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// gw is a gateway running in-process on free ports, from a config file so
// that tests can change it and reload.
type gw struct{ *gwtest.Gateway }

const head = gwtest.Head

// startGateway runs the gateway from a file holding head+body (see
// gwtest). It is drained and stopped when the test ends.
func startGateway(t *testing.T, body string) *gw {
	t.Helper()
	return &gw{gwtest.Start(t, head+body)}
}

// reload rewrites the config file with head+body and reloads it.
func (g *gw) reload(t *testing.T, body string) {
	t.Helper()
	g.Reload(t, head+body)
}

// upstream is an echo server on 127.0.0.1 that counts its requests and
// answers with the request headers it received as JSON.
type upstream struct {
	addr  string
	calls atomic.Int64
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.addr = gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Server", "echo/1.0")
		w.Header().Set("X-Upstream", "echo")
		json.NewEncoder(w).Encode(map[string]any{"header": r.Header, "query": r.URL.RawQuery, "host": r.Host})
	}))
	return u
}

// seen is the echo upstream's answer.
type seen struct {
	Header http.Header `json:"header"`
	Query  string      `json:"query"`
	Host   string      `json:"host"`
}

func newClient(t *testing.T) *http.Client { return gwtest.Client(t, 20*time.Second) }

// send makes a request with the given headers ("Name: value" pairs).
func send(t *testing.T, c *http.Client, method, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decodeSeen(t *testing.T, resp *http.Response, b []byte) seen {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200; body %s", resp.StatusCode, b)
	}
	var s seen
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("decode echo: %v; %s", err, b)
	}
	return s
}

// checkError asserts a gateway-made JSON error with status and code.
func checkError(t *testing.T, resp *http.Response, b []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, b)
	}
	var e struct {
		Error struct {
			Status    int    `json:"status"`
			Code      string `json:"code"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body not JSON: %v; %s", err, b)
	}
	if e.Error.Status != status || e.Error.Code != code || e.Error.RequestID == "" {
		t.Fatalf("error body %s, want status %d code %s with a request_id", b, status, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

// metric returns the value of the Prometheus sample line that starts with
// prefix (name and labels), or "" when absent.
func metric(t *testing.T, g *gw, prefix string) string {
	t.Helper()
	resp, b := send(t, newClient(t), "GET", g.Admin+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			return strings.TrimPrefix(line, prefix+" ")
		}
	}
	return ""
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
