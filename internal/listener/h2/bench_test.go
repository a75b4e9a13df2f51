package h2

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkH2 measures the HTTP/2 server alone: h2c requests answered with
// 100 bytes by a handler that does nothing else, on this server and on
// net/http's (http.Server with unencrypted HTTP/2), at 1 and 10 streams in
// flight on one connection. The client is a raw framer that allocates
// nothing per request. The gateway's whole path is
// internal/app.BenchmarkGatewayH2.
func BenchmarkH2(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(body)
	})
	for _, server := range []string{"rampart", "nethttp"} {
		for _, streams := range []int{1, 10} {
			b.Run(server+"/streams="+strconv.Itoa(streams), func(b *testing.B) {
				var addr string
				if server == "rampart" {
					addr = serve(b, &Server{Handler: h})
				} else {
					addr = serveNetHTTP(b, h)
				}
				benchClient(b, addr, streams)
			})
		}
	}
}

func serveNetHTTP(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protos, HTTP2: &http.HTTP2Config{
		MaxConcurrentStreams: 100, MaxReceiveBufferPerConnection: 1 << 20, MaxReceiveBufferPerStream: 64 << 10, MaxReadFrameSize: 1 << 14,
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// benchClient keeps streams requests in flight on one h2c connection until
// b.N have been answered.
func benchClient(b *testing.B, addr string, streams int) {
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
	run(streams)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	run(b.N)
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
