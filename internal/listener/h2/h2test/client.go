// Package h2test is the raw-framer HTTP/2 client of the HTTP/2 benchmarks
// (h2.BenchmarkH2, app.BenchmarkGatewayH2). It is imported only by tests.
package h2test

import (
	"bufio"
	"bytes"
	"net"
	"syscall"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Bench keeps streams GET requests in flight on one h2c connection to addr
// until b.N have been answered, after a warm-up round. The client
// allocates nothing per request, so allocs/op are the server's; it
// reports cpu-ns/op, the process's CPU time per request (steadier than
// ns/op on a shared machine).
func Bench(b *testing.B, addr string, streams int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	bw := bufio.NewWriterSize(c, 64<<10)
	br := bufio.NewReaderSize(c, 64<<10)
	bw.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(bw, br)
	fr.SetReuseFrames()
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	fr.WriteWindowUpdate(0, 1<<30)
	// Encoded afresh for every request with the dynamic table, as
	// clients (h2load, browsers, grpc-go) do.
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	fields := []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "bench"}, {Name: ":path", Value: "/bench"}, {Name: "user-agent", Value: "bench"}}
	next := uint32(1)
	send := func() {
		blk.Reset()
		for _, f := range fields {
			enc.WriteField(f)
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: next, BlockFragment: blk.Bytes(), EndStream: true, EndHeaders: true})
		next += 2
	}
	var consumed uint32
	// run answers n requests with streams in flight.
	run := func(n int) {
		sent, done := 0, 0
		for ; sent < min(streams, n); sent++ {
			send()
		}
		bw.Flush()
		for done < n {
			f, err := fr.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			ended := false
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.HeadersFrame:
				ended = f.StreamEnded()
			case *http2.DataFrame:
				ended = f.StreamEnded()
				if consumed += f.Length; consumed > 1<<29 {
					fr.WriteWindowUpdate(0, consumed)
					consumed = 0
				}
			case *http2.RSTStreamFrame:
				b.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
			case *http2.GoAwayFrame:
				b.Fatalf("GOAWAY %v", f.ErrCode)
			}
			if ended {
				done++
				if sent < n {
					send()
					sent++
				}
			}
			if br.Buffered() == 0 {
				bw.Flush()
			}
		}
		bw.Flush()
	}
	run(streams) // warm both sides
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	run(b.N)
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
