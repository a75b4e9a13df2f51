package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
)

func TestJoinPath(t *testing.T) {
	tests := []struct{ prefix, rest, want string }{
		{"", "/42", "/42"},
		{"", "42", "/42"},
		{"", "", "/"},
		{"/v1/users/", "42", "/v1/users/42"},
		{"/v1/users/", "/42", "/v1/users/42"},
		{"/v1/users", "/42", "/v1/users/42"},
		{"/v1", "", "/v1"},
	}
	for _, tc := range tests {
		t.Run(tc.prefix+"+"+tc.rest, func(t *testing.T) {
			if got := joinPath(tc.prefix, tc.rest); got != tc.want {
				t.Fatalf("joinPath(%q, %q) = %q, want %q", tc.prefix, tc.rest, got, tc.want)
			}
		})
	}
}

func TestOutURL(t *testing.T) {
	tests := []struct {
		name              string
		cfg               Config
		in                string
		wantPath, wantRaw string
	}{
		{"pass through", Config{Prefix: "/users/"}, "/users/42?x=1", "/users/42", ""},
		{"strip", Config{Prefix: "/users/", StripPrefix: true}, "/users/42?x=1", "/42", ""},
		{"strip to root", Config{Prefix: "/users/", StripPrefix: true}, "/users/", "/", ""},
		{"rewrite", Config{Prefix: "/users/", HasRewrite: true, Rewrite: "/v1/users/"}, "/users/42", "/v1/users/42", ""},
		{"rewrite keeps encoding", Config{Prefix: "/files/", HasRewrite: true, Rewrite: "/store/"}, "/files/a%2Fb", "/store/a/b", "/store/a%2Fb"},
		{"strip keeps encoding", Config{Prefix: "/files/", StripPrefix: true}, "/files/a%2Fb", "/a/b", "/a%2Fb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Proxy{cfg: tc.cfg}
			in, err := url.ParseRequestURI(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			u := *in
			u.Host = "10.0.0.1:80" // as Do sets it
			if p.cfg.StripPrefix || p.cfg.HasRewrite {
				p.rewrite(&u)
			}
			if u.Path != tc.wantPath || u.RawPath != tc.wantRaw || u.RawQuery != in.RawQuery || u.Host != "10.0.0.1:80" {
				t.Fatalf("got path %q raw %q query %q host %q", u.Path, u.RawPath, u.RawQuery, u.Host)
			}
		})
	}
}

func TestRemoveHopByHop(t *testing.T) {
	h := http.Header{
		"Connection":          {"X-Secret, keep-alive", "Upgrade"},
		"X-Secret":            {"1"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Connection":    {"keep-alive"},
		"Proxy-Authorization": {"Basic x"},
		"Te":                  {"trailers"},
		"Trailer":             {"X-T"},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"websocket"},
		"X-Keep":              {"yes"},
	}
	removeHopByHop(h)
	if len(h) != 1 || h.Get("X-Keep") != "yes" {
		t.Fatalf("left %v", h)
	}
}

func TestIsHop(t *testing.T) {
	for _, k := range hopHeaders {
		if !isHop(k) {
			t.Errorf("isHop(%q) = false", k)
		}
	}
	for _, k := range []string{"", "TE", "te", "Tf", "Upgrades", "Connectio", "Keep-Alivf", "Content-Length", "X-Forwarded-For", "Proxy-Authorizatio"} {
		if isHop(k) {
			t.Errorf("isHop(%q) = true", k)
		}
	}
}

func TestUpgradeType(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want string
	}{
		{"websocket", http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}, "websocket"},
		{"no connection token", http.Header{"Upgrade": {"websocket"}}, ""},
		{"none", http.Header{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := upgradeType(tc.h); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSetForwarded(t *testing.T) {
	newReq := func(ctx context.Context) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://api.example/x", nil)
		r.RemoteAddr = "192.0.2.7:5555"
		r.Header.Set("X-Forwarded-For", "198.51.100.1")
		return r.WithContext(ctx)
	}
	check := func(t *testing.T, r *http.Request, wantFor string) {
		t.Helper()
		if got := r.Header["X-Forwarded-For"]; len(got) != 1 || got[0] != wantFor {
			t.Fatalf("X-Forwarded-For %q, want %q", got, wantFor)
		}
		if got := r.Header["X-Forwarded-Proto"]; len(got) != 1 || got[0] != "http" {
			t.Fatalf("X-Forwarded-Proto %q", got)
		}
		if got := r.Header["X-Forwarded-Host"]; len(got) != 1 || got[0] != "api.example" {
			t.Fatalf("X-Forwarded-Host %q", got)
		}
	}
	p := &Proxy{}
	t.Run("plain context: not a trusted peer", func(t *testing.T) {
		r := newReq(context.Background())
		p.setForwarded(r)
		check(t, r, "192.0.2.7")
	})
	t.Run("exchange context, untrusted peer: replaced", func(t *testing.T) {
		c := &exchange.Context{Context: context.Background()}
		r := newReq(c)
		p.setForwarded(r)
		check(t, r, "192.0.2.7")
	})
	t.Run("exchange context, trusted peer: appended", func(t *testing.T) {
		c := &exchange.Context{Context: context.Background()}
		c.Exchange.PeerTrusted = true
		r := newReq(c)
		p.setForwarded(r)
		check(t, r, "198.51.100.1, 192.0.2.7")
		if c.Forwarded[0] != "198.51.100.1, 192.0.2.7" {
			t.Fatalf("room not used: %q", c.Forwarded)
		}
		// A second use of the same context must not overwrite the values
		// the first request's header map holds.
		r2 := newReq(c)
		r2.RemoteAddr = "203.0.113.9:1"
		p.setForwarded(r2)
		check(t, r, "198.51.100.1, 192.0.2.7")
		check(t, r2, "198.51.100.1, 203.0.113.9")
	})
}

// TestTimeoutNotCarriedOver checks that an attempt's call, reused from the
// pool, does not keep the timeout of the attempt that used it before: a
// connection reset after a timed-out attempt is a 502, not a 504.
func TestTimeoutNotCarriedOver(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reset" {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer srv.Close()
	up, err := cluster.Build("u", &config.Upstream{Balancer: "round_robin",
		Targets: []config.Target{{Address: srv.Listener.Addr().String(), Weight: 1}}}, cluster.BuildOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Route: "r", Upstream: up, Policy: cluster.Policy{Timeout: 20 * time.Millisecond}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		for _, tc := range []struct {
			path string
			want int
		}{{"/slow", http.StatusGatewayTimeout}, {"/reset", http.StatusBadGateway}} {
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.want {
				t.Fatalf("%s: status %d, want %d (%s)", tc.path, rec.Code, tc.want, rec.Body)
			}
		}
	}
}

// TestGRPCDeadlineSpent checks that the grpc-timeout sent upstream is what
// is left of the client's: the time since the request arrived (policies)
// is taken off, and the route's timeout caps it.
func TestGRPCDeadlineSpent(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Grpc-Timeout")
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "0")
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	up, err := cluster.Build("u", &config.Upstream{Balancer: "round_robin", Protocol: "h2c",
		Targets: []config.Target{{Address: srv.Listener.Addr().String(), Weight: 1}}}, cluster.BuildOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		route       time.Duration
		client      string
		spent       time.Duration
		least, most time.Duration
	}{
		{"spent time taken off", 0, "1S", 300 * time.Millisecond, 600 * time.Millisecond, 700 * time.Millisecond},
		{"route timeout caps", 200 * time.Millisecond, "5S", 0, 150 * time.Millisecond, 200 * time.Millisecond},
		{"spent, then capped by the rest", 500 * time.Millisecond, "600m", 300 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(Config{Route: "r", Upstream: up, Policy: cluster.Policy{Timeout: tc.route}}, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodPost, "/pkg.Svc/M", nil)
			r.Header.Set("Content-Type", "application/grpc")
			r.Header.Set("Grpc-Timeout", tc.client)
			r = r.WithContext(exchange.With(r.Context(), &exchange.Exchange{Start: time.Now().Add(-tc.spent)}))
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r)
			v := <-got
			d, ok := exchange.ParseGRPCTimeout(v)
			if !ok || d < tc.least || d > tc.most {
				t.Fatalf("upstream got grpc-timeout %q (%v), want %v-%v", v, d, tc.least, tc.most)
			}
		})
	}
}
