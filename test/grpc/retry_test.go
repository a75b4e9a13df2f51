package grpc

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/rampart-gw/rampart/internal/config"
)

// TestGRPCRetryByStatus checks retry.on by gRPC status name: a listed
// status in a trailers-only answer is retried (the client sees the second
// attempt's answer), an unlisted one is not, nor a listed one that comes
// in the trailers after an answer was already streamed to the client.
func TestGRPCRetryByStatus(t *testing.T) {
	b := startBackend(t)
	g := startGateway(t, h2cUpstream("echo", b.Addr), `routes:
  - name: echo
    match: {path: {prefix: /test.Echo/}}
    upstream: echo
    retry: {attempts: 3, on: [reset, grpc:unavailable, grpc:aborted], backoff: {base: 1ms, max: 5ms}}
`)
	cc := dial(t, g.Addr, nil, "")
	tests := []struct {
		name  string
		in    string
		want  codes.Code
		out   string
		calls int64 // calls the server saw
	}{
		{"unavailable once is retried", "once:14:a", codes.OK, "ok:a", 2},
		{"aborted once is retried", "once:10:b", codes.OK, "ok:b", 2},
		{"unlisted status is not retried", "once:8:c", codes.ResourceExhausted, "", 1},
		{"unlisted internal is not retried", "once:13:d", codes.Internal, "", 1},
		{"always unavailable stops after the attempts", "fail:14:down", codes.Unavailable, "", 3},
		{"status after the header is not retried", "hdrfail:14:late", codes.Unavailable, "", 1},
		{"ok", "hi", codes.OK, "echo:hi", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Echo.unary.Load()
			out, err := unary(ctxTimeout(t, 5*time.Second), cc, tc.in)
			if status.Code(err) != tc.want || out != tc.out {
				t.Fatalf("got %q, %v; want %q, %v", out, err, tc.out, tc.want)
			}
			if n := b.Echo.unary.Load() - before; n != tc.calls {
				t.Fatalf("the server saw %d calls, want %d", n, tc.calls)
			}
		})
	}
	t.Run("status in the trailers is not retried", func(t *testing.T) {
		before := b.Echo.streams.Load()
		st, err := cc.NewStream(ctxTimeout(t, 5*time.Second), &grpc.StreamDesc{ServerStreams: true}, mServer)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SendMsg(wrapperspb.String("fail:14")); err != nil {
			t.Fatal(err)
		}
		st.CloseSend()
		var got []string
		for {
			m := new(wrapperspb.StringValue)
			err = st.RecvMsg(m)
			if err != nil {
				break
			}
			got = append(got, m.GetValue())
		}
		if errors.Is(err, io.EOF) || status.Code(err) != codes.Unavailable || len(got) != 1 {
			t.Fatalf("got %v then %v; want one answer then Unavailable", got, err)
		}
		if n := b.Echo.streams.Load() - before; n != 1 {
			t.Fatalf("the server saw %d calls, want 1", n)
		}
	})
	t.Run("client stream replayed", func(t *testing.T) {
		// The server fails the call after the first message; the retry
		// sends the messages kept so far, then the rest as they come.
		before := b.Echo.streams.Load()
		st, err := cc.NewStream(ctxTimeout(t, 5*time.Second), &grpc.StreamDesc{ClientStreams: true}, mClient)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"once:14:cs", "b", "c"} {
			if err := st.SendMsg(wrapperspb.String(m)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // the failure comes before the rest
		}
		st.CloseSend()
		out := new(wrapperspb.StringValue)
		if err := st.RecvMsg(out); err != nil || out.GetValue() != "once:14:cs+b+c" {
			t.Fatalf("client stream: %q, %v", out.GetValue(), err)
		}
		if n := b.Echo.streams.Load() - before; n != 2 {
			t.Fatalf("the server saw %d calls, want 2", n)
		}
	})
	t.Run("retries counted", func(t *testing.T) {
		resp, err := http.Get(g.Admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// once:14, once:10, two for fail:14 and the client stream.
		if !strings.Contains(string(body), `rampart_retries_total{route="echo",upstream="echo"} 5`) {
			t.Errorf("rampart_retries_total not 5:\n%s", grep(string(body), "rampart_retries_total"))
		}
	})
}

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestGRPCRetryConfigErrors checks that a misspelled or unknown gRPC
// status in retry.on is a positioned error.
func TestGRPCRetryConfigErrors(t *testing.T) {
	for _, tc := range []struct{ on, want string }{
		{"grpc:unavailabel", `t.yaml:5:55: routes[0].retry.on[1]: invalid retry condition "grpc:unavailabel" (unknown gRPC status;`},
		{"unavailable", `t.yaml:5:55: routes[0].retry.on[1]: invalid retry condition "unavailable": gRPC statuses are written "grpc:unavailable"`},
		{"grpc:ok", `t.yaml:5:55: routes[0].retry.on[1]: invalid retry condition "grpc:ok": OK is not a failure`},
	} {
		doc := "listeners: [{address: \"127.0.0.1:0\"}]\n" +
			"upstreams:\n  echo: {protocol: h2c, targets: [{address: \"127.0.0.1:9001\"}]}\n" +
			"routes:\n  - {upstream: echo, retry: {attempts: 2, on: [reset, " + tc.on + "]}}\n"
		_, err := config.LoadBytes("t.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("retry.on %s: error %v, want %s", tc.on, err, tc.want)
		}
	}
}
