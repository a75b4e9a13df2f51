package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// grpcHealthUpstream serves the standard gRPC health service (a real
// grpc-go server, HTTP/2 with prior knowledge) with "svc" SERVING.
func grpcHealthUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// grpcWebFrames splits a gRPC-Web body into its messages and the trailer
// frame's fields.
func grpcWebFrames(t *testing.T, b []byte) (msgs [][]byte, trailers map[string]string) {
	t.Helper()
	trailers = map[string]string{}
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("truncated frame header % x", b)
		}
		flag, n := b[0], int(binary.BigEndian.Uint32(b[1:5]))
		if len(b) < 5+n {
			t.Fatalf("frame of %d bytes, %d left", n, len(b)-5)
		}
		payload := b[5 : 5+n]
		b = b[5+n:]
		if flag&0x80 == 0 {
			msgs = append(msgs, payload)
			continue
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(payload), "\r\n"), "\r\n") {
			k, v, _ := strings.Cut(line, ":")
			trailers[k] = strings.TrimSpace(v)
		}
		if len(b) != 0 {
			t.Fatalf("%d bytes after the trailer frame", len(b))
		}
	}
	return msgs, trailers
}

// decodeChunks decodes base64 that may be several padded chunks.
func decodeChunks(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for len(s) >= 4 {
		d, err := base64.StdEncoding.DecodeString(s[:4])
		if err != nil {
			t.Fatalf("base64 %q: %v", s[:4], err)
		}
		out, s = append(out, d...), s[4:]
	}
	if s != "" {
		t.Fatalf("base64 left %q", s)
	}
	return out
}

// TestGRPCWeb: the grpc_web policy lets a gRPC-Web client (binary and
// text) call a real grpc-go server: the message comes back as a data
// frame and the status as the trailer frame, errors included; a request
// that is not gRPC-Web passes untouched.
func TestGRPCWeb(t *testing.T) {
	up := grpcHealthUpstream(t)
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`upstreams:
  grpc: {targets: [{address: %q}], protocol: h2c}
policies:
  gw: {type: grpc_web}
  cors:
    type: cors
    allow_origins: ["https://app.example.com"]
    allow_headers: [content-type, x-grpc-web, x-user-agent, grpc-timeout]
    expose_headers: [grpc-status, grpc-message]
routes:
  - {name: health, match: {path: {prefix: /grpc.health.v1.Health/}}, upstream: grpc, policies: [cors, gw]}
`, up))
	c := newClient(t)
	call := func(t *testing.T, service, ct string, text bool) (*http.Response, [][]byte, map[string]string) {
		t.Helper()
		msg, _ := proto.Marshal(&healthpb.HealthCheckRequest{Service: service})
		body := append([]byte{0, 0, 0, 0, 0}, msg...)
		binary.BigEndian.PutUint32(body[1:5], uint32(len(msg)))
		if text {
			// Two padded chunks, as text clients may send them.
			body = []byte(base64.StdEncoding.EncodeToString(body[:4]) + base64.StdEncoding.EncodeToString(body[4:]))
		}
		req := newRequest(t, http.MethodPost, g.URL+"/grpc.health.v1.Health/Check", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("X-Grpc-Web", "1")
		resp, rb := do(t, c, req)
		if text {
			rb = decodeChunks(t, string(rb))
		}
		msgs, tr := grpcWebFrames(t, rb)
		return resp, msgs, tr
	}
	for _, tc := range []struct {
		name, ct, wantCT string
		text             bool
	}{
		{"binary", "application/grpc-web+proto", "application/grpc-web+proto", false},
		{"binary without suffix", "application/grpc-web", "application/grpc-web", false},
		{"text", "application/grpc-web-text", "application/grpc-web-text", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, msgs, tr := call(t, "svc", tc.ct, tc.text)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.wantCT) {
				t.Fatalf("status %d content-type %q, want 200 %s", resp.StatusCode, resp.Header.Get("Content-Type"), tc.wantCT)
			}
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			var hr healthpb.HealthCheckResponse
			if err := proto.Unmarshal(msgs[0], &hr); err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("message %v, %v; want SERVING", &hr, err)
			}
			if tr["grpc-status"] != "0" {
				t.Fatalf("trailers %v, want grpc-status 0", tr)
			}
			if resp.Trailer.Get("Grpc-Status") != "" {
				t.Errorf("grpc-status also sent as an HTTP trailer")
			}
		})
	}
	t.Run("error status in the trailer frame", func(t *testing.T) {
		for _, text := range []bool{false, true} {
			ct := "application/grpc-web+proto"
			if text {
				ct = "application/grpc-web-text+proto"
			}
			resp, msgs, tr := call(t, "nope", ct, text)
			if resp.StatusCode != 200 || len(msgs) != 0 || tr["grpc-status"] != "5" || tr["grpc-message"] == "" {
				t.Fatalf("text=%v: status %d, %d messages, trailers %v; want 200, none, grpc-status 5 (NOT_FOUND) with a message", text, resp.StatusCode, len(msgs), tr)
			}
		}
	})
	t.Run("CORS preflight and exposed headers", func(t *testing.T) {
		req := newRequest(t, http.MethodOptions, g.URL+"/grpc.health.v1.Health/Check", nil)
		req.Header.Set("Origin", "https://app.example.com")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-grpc-web")
		resp, _ := do(t, c, req)
		if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "x-grpc-web") {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
		msg, _ := proto.Marshal(&healthpb.HealthCheckRequest{Service: "svc"})
		body := append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
		req = newRequest(t, http.MethodPost, g.URL+"/grpc.health.v1.Health/Check", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/grpc-web+proto")
		req.Header.Set("Origin", "https://app.example.com")
		resp, _ = do(t, c, req)
		if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers")), "grpc-status") {
			t.Fatalf("call: %d, expose %q", resp.StatusCode, resp.Header.Get("Access-Control-Expose-Headers"))
		}
	})
	// Bad input gets a gRPC status in the trailer frame (or a 4xx), never
	// a 500 or a hang: a frame whose length prefix promises more than the
	// body holds, a body shorter than a frame header, and text mode whose
	// body is not base64.
	// The upstream's own answer to a truncated frame is its status
	// (grpc-go: UNKNOWN); a text body the gateway cannot decode is the
	// client's fault: INTERNAL (gRPC's mapping of 400), never UNAVAILABLE,
	// which a client would retry.
	for _, tc := range []struct {
		name, ct string
		body     []byte
		status   string // the grpc-status wanted
	}{
		{"truncated message frame", "application/grpc-web+proto", []byte{0, 0, 0, 0, 100, 1, 2, 3}, "2"},
		{"truncated frame header", "application/grpc-web+proto", []byte{0, 0, 0}, "2"},
		{"text that is not base64", "application/grpc-web-text+proto", []byte("!!!not*base64"), "13"},
		{"text ending inside a base64 quantum", "application/grpc-web-text+proto", []byte("AAAAAAk"), "13"},
		{"text with a truncated frame", "application/grpc-web-text+proto", []byte(base64.StdEncoding.EncodeToString([]byte{0, 0, 0, 0, 9, 1})), "2"},
	} {
		t.Run("bad input: "+tc.name, func(t *testing.T) {
			req := newRequest(t, http.MethodPost, g.URL+"/grpc.health.v1.Health/Check", bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ct)
			resp, rb := do(t, c, req)
			if resp.StatusCode >= 500 {
				t.Fatalf("status %d: %s", resp.StatusCode, rb)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200 with the status in the trailer frame", resp.StatusCode)
			}
			if strings.HasPrefix(tc.ct, "application/grpc-web-text") {
				rb = decodeChunks(t, string(rb))
			}
			msgs, tr := grpcWebFrames(t, rb)
			if len(msgs) != 0 || tr["grpc-status"] != tc.status {
				t.Fatalf("%d messages, trailers %v; want grpc-status %s", len(msgs), tr, tc.status)
			}
			t.Logf("grpc-status %s: %s", tr["grpc-status"], tr["grpc-message"])
		})
	}
	t.Run("not gRPC-Web passes untouched", func(t *testing.T) {
		req := newRequest(t, http.MethodPost, g.URL+"/grpc.health.v1.Health/Check", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		resp, _ := do(t, c, req)
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc-web") {
			t.Fatalf("a JSON request got a gRPC-Web answer: %s", resp.Header.Get("Content-Type"))
		}
	})
}
