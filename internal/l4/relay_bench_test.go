package l4

import (
	"io"
	"net"
	"testing"
	"time"
)

// pair returns the two ends of a TCP connection on 127.0.0.1.
func pair(b *testing.B) (net.Conn, net.Conn) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	return c, <-ch
}

// opaque hides the *net.TCPConn beneath, so that io.Copy cannot splice.
type opaque struct{ net.Conn }

// BenchmarkRelay moves bytes client -> relay -> server over loopback TCP:
// with splice (two *net.TCPConn) and with a user-space copy, for
// comparison.
func BenchmarkRelay(b *testing.B) {
	for _, bc := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"splice", func(c net.Conn) net.Conn { return c }},
		{"copy", func(c net.Conn) net.Conn { return opaque{c} }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client, front := pair(b)
			back, server := pair(b)
			done := make(chan struct{})
			go func() {
				defer close(done)
				relay(bc.wrap(front), bc.wrap(back), time.Minute, counters{in: nopCounter{}, out: nopCounter{}})
			}()
			sunk := make(chan int64, 1)
			go func() {
				n, _ := io.Copy(io.Discard, server)
				sunk <- n
			}()
			chunk := make([]byte, 256<<10)
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := client.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			client.(*net.TCPConn).CloseWrite()
			if n := <-sunk; n != int64(b.N)*int64(len(chunk)) {
				b.Fatalf("server got %d bytes, want %d", n, int64(b.N)*int64(len(chunk)))
			}
			b.StopTimer()
			server.Close()
			client.Close()
			<-done
		})
	}
}

type nopCounter struct{}

func (nopCounter) Add(float64) {}
