package health

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// TestGRPCProbeAnswers drives the gRPC probe against an h2c server that
// answers in every way a target may: only a SERVING answer is healthy,
// and no answer makes it panic or hang.
func TestGRPCProbeAnswers(t *testing.T) {
	frame := func(st healthpb.HealthCheckResponse_ServingStatus) []byte {
		b, _ := proto.Marshal(&healthpb.HealthCheckResponse{Status: st})
		f := make([]byte, 5, 5+len(b))
		binary.BigEndian.PutUint32(f[1:], uint32(len(b)))
		return append(f, b...)
	}
	var gotService, gotTimeout string
	answers := map[string]func(w http.ResponseWriter){
		"serving": func(w http.ResponseWriter) {
			w.Header().Set("Trailer", "Grpc-Status")
			w.Write(frame(healthpb.HealthCheckResponse_SERVING))
			w.Header().Set("Grpc-Status", "0")
		},
		"not-serving": func(w http.ResponseWriter) {
			w.Write(frame(healthpb.HealthCheckResponse_NOT_SERVING))
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		},
		"unknown": func(w http.ResponseWriter) {
			w.Write(frame(healthpb.HealthCheckResponse_UNKNOWN))
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		},
		"not-found": func(w http.ResponseWriter) { // trailers-only
			w.Header().Set("Grpc-Status", "5")
			w.Header().Set("Grpc-Message", "unknown%20service")
		},
		"http-error": func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) },
		"no-status": func(w http.ResponseWriter) {
			w.Write(frame(healthpb.HealthCheckResponse_SERVING))
		},
		"truncated": func(w http.ResponseWriter) {
			w.Write(frame(healthpb.HealthCheckResponse_SERVING)[:4])
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		},
		"garbage": func(w http.ResponseWriter) {
			w.Write([]byte{0, 0, 0, 0, 3, 0xff, 0xff, 0xff})
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		},
		"compressed": func(w http.ResponseWriter) {
			f := frame(healthpb.HealthCheckResponse_SERVING)
			f[0] = 1
			w.Write(f)
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var in healthpb.HealthCheckRequest
		if r.URL.Path != grpcCheckPath || r.Header.Get("Content-Type") != "application/grpc" || len(body) < 5 || proto.Unmarshal(body[5:], &in) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		gotService, gotTimeout = in.GetService(), r.Header.Get("Grpc-Timeout")
		w.Header().Set("Content-Type", "application/grpc")
		answers[in.GetService()](w)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	for _, tc := range []struct {
		service string
		healthy bool
		msg     string
	}{
		{"serving", true, ""},
		{"not-serving", false, "not serving: NOT_SERVING"},
		{"unknown", false, "not serving: UNKNOWN"},
		{"not-found", false, "grpc-status 5: unknown service"},
		{"http-error", false, "unhealthy status 503"},
		{"no-status", false, `grpc-status ""`},
		{"truncated", false, "malformed gRPC answer"},
		{"garbage", false, "gRPC answer"},
		{"compressed", false, "malformed gRPC answer"},
	} {
		t.Run(tc.service, func(t *testing.T) {
			c := New(Config{GRPC: true, GRPCService: tc.service, Timeout: 2 * time.Second}, Deps{Transport: tr})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := c.probe(ctx, srv.Listener.Addr().String())
			if (err == nil) != tc.healthy || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
				t.Fatalf("probe: %v, want healthy %v (%q)", err, tc.healthy, tc.msg)
			}
			if err != nil && strings.HasPrefix(tc.msg, "not serving") && !errors.Is(err, ErrNotServing) {
				t.Errorf("%v is not ErrNotServing", err)
			}
			if gotService != tc.service || !strings.HasSuffix(gotTimeout, "m") {
				t.Errorf("server got service %q, grpc-timeout %q", gotService, gotTimeout)
			}
		})
	}
}

// FuzzGRPCVerdict: whatever a target answers, the verdict is an error or
// SERVING, never a panic, and only a well-formed SERVING answer is healthy.
func FuzzGRPCVerdict(f *testing.F) {
	serving, _ := proto.Marshal(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
	frame := append([]byte{0, 0, 0, 0, byte(len(serving))}, serving...)
	f.Add(frame, "0", "")
	f.Add(frame[:4], "0", "")
	f.Add([]byte{}, "5", "unknown%20service")
	f.Add([]byte{0, 0, 0, 0, 2, 8, 2}, "0", "")
	f.Add([]byte{1, 0, 0, 0, 2, 8, 1}, "0", "")
	f.Fuzz(func(t *testing.T, body []byte, st, m string) {
		err := grpcVerdict(body, st, m)
		if err != nil {
			return
		}
		var out healthpb.HealthCheckResponse
		if st != "0" || len(body) < 5 || proto.Unmarshal(body[5:], &out) != nil || out.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("healthy verdict for %q, %q", body, st)
		}
	})
}
