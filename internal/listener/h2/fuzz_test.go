package h2

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// FuzzServeConn feeds arbitrary bytes after the client preface to a
// connection: the server must neither panic nor hang, whatever the frames.
func FuzzServeConn(f *testing.F) {
	var seed bytes.Buffer
	fr := http2.NewFramer(&seed, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hblock(":method", "POST", ":scheme", "http", ":authority", "x", ":path", "/", "content-length", "3", "trailer", "x-t"), EndHeaders: true})
	fr.WriteData(1, false, []byte("ab"))
	fr.WriteWindowUpdate(1, 100)
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hblock("x-t", "1"), EndStream: true, EndHeaders: true})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hblock(getFields...), EndStream: false, EndHeaders: false})
	fr.WriteContinuation(3, true, hblock("x-a", "b"))
	fr.WriteRSTStream(3, http2.ErrCodeCancel)
	fr.WritePing(false, [8]byte{1})
	fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	f.Add(seed.Bytes())
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "X-Done")
		w.Write([]byte("ok"))
		w.Header().Set("X-Done", "1")
	}), PrefaceTimeout: time.Second, MaxConcurrentStreams: 4}
	f.Fuzz(func(t *testing.T, data []byte) {
		cli, srv := net.Pipe()
		done := make(chan struct{})
		go func() { s.ServeConn(srv); close(done) }()
		go io.Copy(io.Discard, cli)
		cli.SetWriteDeadline(time.Now().Add(2 * time.Second))
		cli.Write([]byte(http2.ClientPreface))
		cli.Write(data)
		cli.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("ServeConn did not return after the client closed")
		}
	})
}
