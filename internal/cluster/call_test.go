package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster/retry"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
)

// countingServer answers status and counts its requests.
func countingServer(t *testing.T, status int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func buildUp(t *testing.T, cfg *config.Upstream) *Upstream {
	t.Helper()
	u, err := Build("u", cfg, BuildOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.st.close)
	return u
}

func retryOn(t *testing.T, attempts int, on ...string) *Retry {
	t.Helper()
	c, err := retry.ParseConditions(on)
	if err != nil {
		t.Fatal(err)
	}
	return &Retry{Attempts: attempts, On: c}
}

func get(t *testing.T, u *Upstream, p *Policy, path string) (*http.Response, error) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	return u.Do(req, p)
}

// TestRetryKeepsRoundRobinSequence is issue 15 bug 6: with two targets, one
// answering 503, and retry {attempts: 3, on: [503]}, the retry's pick must
// not advance the shared round-robin position. Before the fix every
// request's first attempt went to the failing target.
func TestRetryKeepsRoundRobinSequence(t *testing.T) {
	bad, badHits := countingServer(t, http.StatusServiceUnavailable)
	good, goodHits := countingServer(t, http.StatusOK)
	cfg := &config.Upstream{Balancer: "round_robin", Targets: []config.Target{
		{Address: bad.Listener.Addr().String(), Weight: 1},
		{Address: good.Listener.Addr().String(), Weight: 1},
	}}
	u := buildUp(t, cfg)
	p := &Policy{Retry: retryOn(t, 3, "503")}
	const n = 20
	for range n {
		resp, err := get(t, u, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		status := resp.StatusCode // resp is not used after Close
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if status != http.StatusOK {
			t.Fatalf("status %d, want 200 after a retry", status)
		}
	}
	// First attempts alternate: half go to the failing target (and are
	// retried on the good one), half go straight to the good one.
	if got := badHits.Load(); got != n/2 {
		t.Fatalf("failing target got %d first attempts of %d, want %d (good target: %d requests)", got, n, n/2, goodHits.Load())
	}
	if got := goodHits.Load(); got != n {
		t.Fatalf("good target got %d requests, want %d", got, n)
	}
}

// TestDoURL checks that each attempt goes to the target with the
// upstream's scheme and the caller's path and query, rewritten by
// Policy.Path, without touching the caller's request.
func TestDoURL(t *testing.T) {
	var seen atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.URL.RequestURI())
	}))
	defer srv.Close()
	u := buildUp(t, &config.Upstream{Targets: []config.Target{{Address: srv.Listener.Addr().String(), Weight: 1}}})
	p := &Policy{Path: func(u *url.URL) { u.Path = "/v1" + u.Path }}
	req := httptest.NewRequest(http.MethodGet, "http://client.example/a?b=1", nil)
	resp, err := u.Do(req, p)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := seen.Load(); got != "/v1/a?b=1" {
		t.Fatalf("upstream saw %v, want /v1/a?b=1", got)
	}
	if req.URL.Path != "/a" || req.URL.Host != "client.example" {
		t.Fatalf("caller's URL changed: %v", req.URL)
	}
}

// TestDoAccounting checks that the call holds the target's in-flight count
// and the breaker's request slot until the body is closed.
func TestDoAccounting(t *testing.T) {
	srv, _ := countingServer(t, http.StatusOK)
	u := buildUp(t, &config.Upstream{Targets: []config.Target{{Address: srv.Listener.Addr().String(), Weight: 1}}})
	resp, err := get(t, u, &Policy{}, "/")
	if err != nil {
		t.Fatal(err)
	}
	if n := u.Targets[0].InFlight.Load(); n != 1 {
		t.Fatalf("in flight %d before close, want 1", n)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := u.Targets[0].InFlight.Load(); n != 0 {
		t.Fatalf("in flight %d after close, want 0", n)
	}
}

// TestDoErrors checks the typed errors of failed calls.
func TestDoErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedAddr := closed.Listener.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name string
		addr string
		p    *Policy
		ctx  func() context.Context
		kind ErrorKind
		code string
	}{
		{"timeout", slow.Listener.Addr().String(), &Policy{Timeout: 20 * time.Millisecond}, nil, Timeout, "upstream_timeout"},
		{"per-try timeout", slow.Listener.Addr().String(), &Policy{Retry: &Retry{Attempts: 1, PerTryTimeout: 20 * time.Millisecond}}, nil, Timeout, "upstream_timeout"},
		{"refused", closedAddr, &Policy{}, nil, Unreachable, "upstream_unreachable"},
		{"client gone", slow.Listener.Addr().String(), &Policy{}, func() context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			_ = cancel
			return ctx
		}, Canceled, "client_closed_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := buildUp(t, &config.Upstream{Targets: []config.Target{{Address: tc.addr, Weight: 1}}})
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.ctx != nil {
				req = req.WithContext(tc.ctx())
			}
			resp, err := u.Do(req, tc.p)
			if err == nil {
				resp.Body.Close()
				t.Fatal("no error")
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != tc.kind || e.Code != tc.code {
				t.Fatalf("got %v (%#v), want kind %d code %s", err, e, tc.kind, tc.code)
			}
			if n := u.Targets[0].InFlight.Load(); n != 0 {
				t.Fatalf("in flight %d after a failed call", n)
			}
		})
	}
	t.Run("no healthy target", func(t *testing.T) {
		u := buildUp(t, &config.Upstream{})
		_, err := get(t, u, &Policy{}, "/")
		var e *Error
		if !errors.As(err, &e) || e.Kind != NoHealthy || e.Status != http.StatusServiceUnavailable || e.RetryAfter != "1" {
			t.Fatalf("got %v", err)
		}
	})
}

// TestTLSVerificationLoggedOnce checks that a target failing TLS
// verification is answered as unreachable, naming the verification error,
// and logged once until it changes (issue 15 bug 5).
func TestTLSVerificationLoggedOnce(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler()) // its CA is not trusted
	defer srv.Close()
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	u := buildUp(t, &config.Upstream{TLS: &config.UpstreamTLS{ServerName: "example.com"},
		Targets: []config.Target{{Address: srv.Listener.Addr().String(), Weight: 1}}})
	p := &Policy{Log: log}
	for range 3 {
		_, err := get(t, u, p, "/")
		var e *Error
		if !errors.As(err, &e) || e.Kind != Unreachable || e.Code != "upstream_unreachable" ||
			!strings.Contains(e.Msg, "TLS verification") || !strings.Contains(e.Msg, "unknown authority") {
			t.Fatalf("got %v", err)
		}
	}
	if n := strings.Count(logs.String(), "upstream TLS verification failed"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
}

// failingBody yields some bytes and then fails as a malformed body does.
type failingBody struct{ sent bool }

func (b *failingBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "partial"), nil
	}
	return 0, fmt.Errorf("%w: test", exchange.ErrMalformedBody)
}

// A request body that turns out malformed while it is sent is the
// client's fault: 400 bad_request, not retried even with retries on
// reset, and never counted against the target (its breaker stays closed).
func TestDoMalformedBody(t *testing.T) {
	srv, _ := countingServer(t, 200)
	u := buildUp(t, &config.Upstream{
		Targets:        []config.Target{{Address: srv.Listener.Addr().String(), Weight: 1}},
		CircuitBreaker: &config.CircuitBreaker{Trip: &config.CircuitTrip{ConsecutiveFailures: 1, OpenFor: config.Duration(10 * time.Second), MaxOpenFor: config.Duration(10 * time.Second), HalfOpenRequests: 1}},
	})
	p := &Policy{Retry: retryOn(t, 3, "reset", "connect_failure", "5xx")}
	for i := 0; i < 3; i++ {
		c := &exchange.Context{Context: context.Background()}
		req := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(&failingBody{})).WithContext(c)
		req.ContentLength = -1
		resp, err := u.Do(req, p)
		if err == nil {
			resp.Body.Close()
			t.Fatal("no error")
		}
		var e *Error
		if !errors.As(err, &e) || e.Kind != BadRequest || e.Status != http.StatusBadRequest || e.Code != "bad_request" {
			t.Fatalf("got %v (%#v), want BadRequest 400 bad_request", err, e)
		}
		if c.Exchange.Attempts != 1 {
			t.Fatalf("%d attempts, want 1 (no retry)", c.Exchange.Attempts)
		}
	}
	resp, err := get(t, u, &Policy{}, "/")
	if err != nil {
		t.Fatalf("after malformed bodies the upstream refuses: %v", err)
	}
	resp.Body.Close()
}
