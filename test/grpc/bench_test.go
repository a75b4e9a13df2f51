package grpc

import (
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// cpuNow is the process's user+system CPU time (client, gateway and server
// all run in it).
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGRPCUnary compares a unary call made directly to the grpc-go
// server with one through the gateway (h2c to the gateway, h2c or h2 to
// the server), 8 calls in flight. cpu-µs/op is the whole process's CPU per
// call; the gateway's share is the difference to direct. Bound it:
// go test -run '^$' -bench BenchmarkGRPCUnary -benchtime 5000x ./test/grpc/
func BenchmarkGRPCUnary(b *testing.B) {
	run := func(b *testing.B, cc *grpc.ClientConn) {
		if _, err := unary(b.Context(), cc, "warm"); err != nil {
			b.Fatal(err)
		}
		b.SetParallelism(4) // × GOMAXPROCS callers
		b.ReportAllocs()
		start := cpuNow()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := unary(b.Context(), cc, "hello"); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64((cpuNow()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("direct", func(b *testing.B) {
		be := startBackend(b)
		run(b, dial(b, be.Addr, nil, ""))
	})
	b.Run("gateway-h2c", func(b *testing.B) {
		be := startBackend(b)
		g := startGateway(b, h2cUpstream("echo", be.Addr), "")
		run(b, dial(b, g.Addr, nil, ""))
	})
	b.Run("gateway-h2-tls", func(b *testing.B) {
		c := newCerts(b, "backend.internal")
		be := startTLSBackend(b, c)
		g := startGateway(b, h2Upstream("echo", c, "", be.Addr), "")
		run(b, dial(b, g.Addr, nil, ""))
	})
}
