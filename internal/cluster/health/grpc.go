package health

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// grpcCheckPath is the standard health service's Check method.
const grpcCheckPath = "/grpc.health.v1.Health/Check"

// maxGRPCAnswer bounds what a gRPC probe reads of the answer.
const maxGRPCAnswer = 4 << 10

// ErrNotServing is wrapped by the gRPC probe when the target answers, but
// not SERVING (NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN) or with an error
// status (NOT_FOUND for a service it does not know).
var ErrNotServing = errors.New("not serving")

// grpcProbe asks addr's grpc.health.v1 service about Config.GRPCService,
// over the transport (which must speak HTTP/2: the upstream's h2c or h2
// settings): one unary call in gRPC's wire format, bounded by ctx, whose
// deadline goes with it as grpc-timeout.
func (c *Checker) grpcProbe(ctx context.Context, addr string) error {
	cfg := c.cfg.Load()
	msg, err := proto.Marshal(&healthpb.HealthCheckRequest{Service: cfg.GRPCService})
	if err != nil {
		return fmt.Errorf("probe %s: %w", addr, err)
	}
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	frame = append(frame, msg...)
	u := &url.URL{Scheme: cfg.Scheme, Host: addr, Path: grpcCheckPath}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(frame))
	if err != nil {
		return fmt.Errorf("build probe of %s: %w", addr, err)
	}
	req.ContentLength = int64(len(frame))
	req.Header["Content-Type"] = []string{"application/grpc"}
	req.Header["Te"] = []string{"trailers"}
	req.Header["User-Agent"] = []string{"rampart-health-check"}
	if cfg.Host != "" {
		req.Host = cfg.Host
	}
	if dl, ok := ctx.Deadline(); ok {
		req.Header["Grpc-Timeout"] = []string{strconv.FormatInt(max(1, time.Until(dl).Milliseconds()), 10) + "m"}
	}
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", addr, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxGRPCAnswer))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("probe %s: read: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %w %d (not a gRPC answer)", addr, ErrStatus, resp.StatusCode)
	}
	st := resp.Trailer.Get("Grpc-Status")
	m := resp.Trailer.Get("Grpc-Message")
	if st == "" { // a trailers-only answer
		st, m = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	if err := grpcVerdict(body, st, m); err != nil {
		return fmt.Errorf("probe %s: %w", addr, err)
	}
	return nil
}

// grpcVerdict judges a Check answer: its body (gRPC messages), grpc-status
// and grpc-message. nil means SERVING.
func grpcVerdict(body []byte, st, m string) error {
	if st != "0" {
		if m, err := url.PathUnescape(m); err == nil && m != "" {
			return fmt.Errorf("%w: grpc-status %s: %s", ErrNotServing, clip([]byte(st), 8), clip([]byte(m), 200))
		}
		return fmt.Errorf("%w: grpc-status %q", ErrNotServing, clip([]byte(st), 8))
	}
	if len(body) < 5 || body[0] != 0 || int64(binary.BigEndian.Uint32(body[1:5])) != int64(len(body)-5) {
		return fmt.Errorf("malformed gRPC answer (%d bytes)", len(body))
	}
	var out healthpb.HealthCheckResponse
	if err := proto.Unmarshal(body[5:], &out); err != nil {
		return fmt.Errorf("gRPC answer: %w", err)
	}
	if s := out.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("%w: %s", ErrNotServing, s)
	}
	return nil
}
