package grpc

import (
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestGRPCDeadline checks grpc-timeout handling: the upstream sees the
// client's deadline capped by the route's timeout, and a call that outlives
// the cap ends DEADLINE_EXCEEDED at about the cap.
func TestGRPCDeadline(t *testing.T) { eachH2Server(t, testGRPCDeadline) }

func testGRPCDeadline(t *testing.T) {
	b := startBackend(t)
	g := startGateway(t, h2cUpstream("echo", b.Addr), `routes:
  - {name: capped, match: {path: {prefix: /capped.Echo/}}, upstream: echo, timeout: 300ms, rewrite: {prefix: /test.Echo/}}
  - {name: echo, match: {path: {prefix: /test.Echo/}}, upstream: echo}
`)
	cc := dial(t, g.Addr, nil, "")
	for _, tc := range []struct {
		name, method string
		client       time.Duration
		max          int64 // the most milliseconds the upstream may see
	}{
		{"client deadline propagated", mUnary, 2 * time.Second, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := unary(ctxTimeout(t, tc.client), cc, "deadline")
			if err != nil {
				t.Fatal(err)
			}
			ms, err := strconv.ParseInt(out, 10, 64)
			if err != nil || ms > tc.max || ms < tc.max/2 {
				t.Fatalf("upstream saw a deadline of %q ms, want at most %d (and more than half)", out, tc.max)
			}
		})
	}
	t.Run("expiry", func(t *testing.T) {
		start := time.Now()
		var out string
		err := cc.Invoke(ctxTimeout(t, 5*time.Second), "/capped.Echo/Unary", wrapperspb.String("sleep:3s"), new(wrapperspb.StringValue))
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("status %v (%q), want DeadlineExceeded", err, out)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("took %v, want about the route's 300ms", d)
		}
	})
}

// TestGRPCRouteTimeoutCapsUpstreamDeadline: with a route timeout of 200ms
// and a client deadline of 5s, a slow server's call ends DEADLINE_EXCEEDED
// at about 200ms, and the grpc-timeout the server received was the route's
// budget (at most 200ms), not the client's 5s. On a retry the budget left
// is sent, smaller again.
func TestGRPCRouteTimeoutCapsUpstreamDeadline(t *testing.T) {
	b := startBackend(t)
	g := startGateway(t, h2cUpstream("echo", b.Addr), `routes:
  - {name: echo, match: {path: {prefix: /test.Echo/}}, upstream: echo, timeout: 200ms}
`)
	cc := dial(t, g.Addr, nil, "")
	for _, tc := range []struct {
		name   string
		client time.Duration
		max    int64 // the most milliseconds the upstream may see
	}{
		{"client deadline longer than the route timeout", 5 * time.Second, 200},
		{"client deadline shorter than the route timeout", 120 * time.Millisecond, 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.Echo.lastDeadline.Store(0)
			start := time.Now()
			_, err := unary(ctxTimeout(t, tc.client), cc, "sleep:3s")
			took := time.Since(start)
			if status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("status %v, want DeadlineExceeded", err)
			}
			if took < time.Duration(tc.max)*time.Millisecond*9/10 || took > time.Duration(tc.max)*time.Millisecond+400*time.Millisecond {
				t.Fatalf("took %v, want about %dms", took, tc.max)
			}
			ms := b.Echo.lastDeadline.Load()
			if ms <= 0 || ms > tc.max || ms < tc.max/2 {
				t.Fatalf("the server saw a deadline of %dms, want at most %dms (and more than half)", ms, tc.max)
			}
			t.Logf("took %v; the server saw grpc-timeout of %dms", took.Round(time.Millisecond), ms)
		})
	}
}
