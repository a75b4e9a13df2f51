package grpc

import (
	"encoding/binary"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// brokenUpstream is an h2c server that answers every call with one of the
// broken gRPC answers below, chosen by the request's x-broken header.
func brokenUpstream(t *testing.T) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		switch r.Header.Get("X-Broken") {
		case "truncated": // a frame promising 100 bytes, 3 sent, no trailers
			w.WriteHeader(200)
			var hdr [5]byte
			binary.BigEndian.PutUint32(hdr[1:], 100)
			w.Write(hdr[:])
			w.Write([]byte{1, 2, 3})
		case "truncated-with-ok": // the same, but then grpc-status 0
			w.Header().Set("Trailer", "Grpc-Status")
			w.WriteHeader(200)
			var hdr [5]byte
			binary.BigEndian.PutUint32(hdr[1:], 100)
			w.Write(hdr[:])
			w.Write([]byte{1, 2, 3})
			w.Header().Set("Grpc-Status", "0")
		case "no-status": // a complete message and no grpc-status at all
			w.WriteHeader(200)
			w.Write([]byte{0, 0, 0, 0, 0})
		case "http-500":
			w.WriteHeader(500)
		case "not-grpc":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(200)
			w.Write([]byte("<html>oops</html>"))
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h2c.NewHandler(h, &http2.Server{})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestGRPCBrokenUpstream: an upstream's broken gRPC answers reach the
// client as a gRPC error status, in bounded time, never as an OK or a hang.
// The gateway passes the frames through, so the status is the client
// library's verdict on what arrived; what matters is that the gateway
// neither hides the breakage nor stalls on it.
func TestGRPCBrokenUpstream(t *testing.T) { eachH2Server(t, testGRPCBrokenUpstream) }

func testGRPCBrokenUpstream(t *testing.T) {
	g := startGateway(t, h2cUpstream("echo", brokenUpstream(t)), "")
	cc := dial(t, g.Addr, nil, "")
	for _, tc := range []struct {
		broken string
		codes  []codes.Code // any of these
	}{
		{"truncated", []codes.Code{codes.Internal, codes.Unavailable, codes.Unknown}},
		{"truncated-with-ok", []codes.Code{codes.Internal, codes.Unavailable, codes.Unknown}},
		{"no-status", []codes.Code{codes.Internal, codes.Unknown}},
		{"http-500", []codes.Code{codes.Unknown, codes.Internal, codes.Unavailable}},
		{"not-grpc", []codes.Code{codes.Unknown, codes.Internal}},
	} {
		t.Run(tc.broken, func(t *testing.T) {
			ctx := ctxTimeout(t, 5*time.Second)
			start := time.Now()
			_, err := unary(metadata.AppendToOutgoingContext(ctx, "x-broken", tc.broken), cc, "x")
			if time.Since(start) > 4*time.Second {
				t.Fatalf("took %v: the call hung until its deadline", time.Since(start))
			}
			st, _ := status.FromError(err)
			ok := false
			for _, c := range tc.codes {
				ok = ok || st.Code() == c
			}
			if !ok {
				t.Fatalf("status %v (%v), want one of %v", st.Code(), err, tc.codes)
			}
			t.Logf("%s: %v", tc.broken, err)
		})
	}
}
