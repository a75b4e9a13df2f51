// Command grpcbackend is the gRPC upstream of the load benchmark's grpc phase:
// a grpc-go server (h2c) that answers every unary call, whatever its method,
// with a fixed-size message, doing as little work as possible so that the
// benchmark measures the proxy in front of it. Messages are raw bytes (no
// protobuf decoding), sent and received through a pass-through codec.
//
// It has three modes:
//
//	grpcbackend -size 100 -addr 127.0.0.1:0 -addr-file F -stats-addr-file S
//	    serve; S gets the address of an HTTP/1.1 listener whose GET / answers
//	    the number of calls answered so far (to check that a load generator's
//	    successes were really served by the backend)
//	grpcbackend -call HOST:PORT -size 100
//	    make one unary call /bench.Echo/Call through HOST:PORT (h2c) with a
//	    SIZE-byte message and check that a SIZE-byte message comes back
//	grpcbackend -write-request FILE -size 100
//	    write one length-prefixed gRPC message of SIZE bytes to FILE, the body
//	    h2load posts (-d FILE)
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Method is the path the benchmark calls; the server answers any method.
const Method = "/bench.Echo/Call"

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	addrFile := flag.String("addr-file", "", "if set, write the bound address to this file once listening")
	statsFile := flag.String("stats-addr-file", "", "if set, serve the call count over HTTP/1.1 on a free port and write its address here")
	size := flag.Int("size", 100, "message size in bytes (answer, and request with -call or -write-request)")
	call := flag.String("call", "", "make one call through this HOST:PORT and check the answer, then exit")
	reqFile := flag.String("write-request", "", "write one length-prefixed request message to this file, then exit")
	flag.Parse()

	var err error
	switch {
	case *size < 0:
		err = fmt.Errorf("check size: %d is negative", *size)
	case *reqFile != "":
		err = writeRequest(*reqFile, *size)
	case *call != "":
		err = callOnce(*call, *size)
	default:
		err = serve(*addr, *addrFile, *statsFile, *size)
	}
	if err != nil {
		slog.Error("grpcbackend failed", "err", err)
		os.Exit(1)
	}
}

// rawCodec passes messages through as bytes: the values are *[]byte.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("marshal: %T is not *[]byte", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("unmarshal: %T is not *[]byte", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

// Name is "proto" so that the wire carries the usual application/grpc+proto.
func (rawCodec) Name() string { return "proto" }

func writeRequest(path string, size int) error {
	msg := make([]byte, 5+size)
	// Byte 0 is the compressed flag (0); bytes 1-4 the big-endian length.
	binary.BigEndian.PutUint32(msg[1:5], uint32(size))
	for i := 5; i < len(msg); i++ {
		msg[i] = 'x'
	}
	if err := os.WriteFile(path, msg, 0o644); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	return nil
}

func callOnce(addr string, size int) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req := make([]byte, size)
	var resp []byte
	if err := conn.Invoke(ctx, Method, &req, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
		return fmt.Errorf("call %s via %s: %w", Method, addr, err)
	}
	if len(resp) != size {
		return fmt.Errorf("call %s via %s: answer has %d bytes, want %d", Method, addr, len(resp), size)
	}
	return nil
}

func writeAddr(path, addr string) error {
	// Write to a temporary name and rename, so a reader never sees half an address.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
		return fmt.Errorf("write addr file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write addr file: %w", err)
	}
	return nil
}

// newServer returns a gRPC server answering every call with size bytes, and
// the counter of calls it answered.
func newServer(size int) (*grpc.Server, *atomic.Int64) {
	answer := make([]byte, size)
	for i := range answer {
		answer[i] = 'x'
	}
	calls := new(atomic.Int64)
	handler := func(_ any, stream grpc.ServerStream) error {
		var req []byte
		if err := stream.RecvMsg(&req); err != nil {
			return err
		}
		if err := stream.SendMsg(&answer); err != nil {
			return err
		}
		calls.Add(1)
		return nil
	}
	return grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(handler)), calls
}

func serve(addr, addrFile, statsFile string, size int) error {
	srv, calls := newServer(size)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var stats *http.Server
	if statsFile != "" {
		sln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen for stats: %w", err)
		}
		stats = &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(strconv.FormatInt(calls.Load(), 10) + "\n"))
			}),
			ReadHeaderTimeout: 5 * time.Second,
		}
		go func() { _ = stats.Serve(sln) }()
		if err := writeAddr(statsFile, sln.Addr().String()); err != nil {
			return err
		}
	}
	if addrFile != "" {
		if err := writeAddr(addrFile, ln.Addr().String()); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		if stats != nil {
			_ = stats.Close()
		}
		// Stop, not GracefulStop: a load generator may hold streams open.
		srv.Stop()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
