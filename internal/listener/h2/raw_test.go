package h2

import (
	"bytes"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawConn is a frame-level client.
type rawConn struct {
	c  net.Conn
	fr *http2.Framer
}

func dialRaw(t *testing.T, addr string, settings ...http2.Setting) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, c)
	fr.AllowIllegalWrites = true
	fr.WriteSettings(settings...)
	return &rawConn{c: c, fr: fr}
}

func hblock(fields ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return buf.Bytes()
}

var getFields = []string{":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/"}

// next returns the next frame that is not SETTINGS (acknowledging them).
func (r *rawConn) next(t *testing.T) http2.Frame {
	t.Helper()
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok {
			if !sf.IsAck() {
				r.fr.WriteSettingsAck()
			}
			continue
		}
		if _, ok := f.(*http2.WindowUpdateFrame); ok {
			continue
		}
		return f
	}
}

// TestZeroWindow: with the client's window at 0 the body waits, and each
// WINDOW_UPDATE lets that many bytes go (a lost wake-up once hung here,
// h2spec generic 2 #2).
func TestZeroWindow(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("abc"))
	})})
	for range 20 {
		r := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hblock(getFields...), EndStream: true, EndHeaders: true})
		if f, ok := r.next(t).(*http2.HeadersFrame); !ok || f.StreamEnded() {
			t.Fatalf("want HEADERS without END_STREAM, got %v", f)
		}
		var got []byte
		for len(got) < 3 {
			r.fr.WriteWindowUpdate(1, 1)
			f, ok := r.next(t).(*http2.DataFrame)
			if !ok || len(f.Data()) != 1 {
				t.Fatalf("want 1 byte of DATA, got %v", f)
			}
			got = append(got, f.Data()...)
			if f.StreamEnded() != (len(got) == 3) {
				t.Fatalf("END_STREAM at %d bytes", len(got))
			}
		}
		if string(got) != "abc" {
			t.Fatalf("body %q", got)
		}
	}
}

func TestStreamErrors(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	for _, tc := range []struct {
		name   string
		fields []string
	}{
		{"connection header", append(append([]string{}, getFields...), "connection", "close")},
		{"te gzip", append(append([]string{}, getFields...), "te", "gzip")},
		{"no path", getFields[:6]},
		{"bad scheme", []string{":method", "GET", ":scheme", "ftp", ":authority", "x", ":path", "/"}},
		{"relative path", []string{":method", "GET", ":scheme", "http", ":authority", "x", ":path", "a"}},
		{"userinfo", []string{":method", "GET", ":scheme", "http", ":authority", "u@x", ":path", "/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hblock(tc.fields...), EndStream: true, EndHeaders: true})
			f, ok := r.next(t).(*http2.RSTStreamFrame)
			if !ok || f.ErrCode != http2.ErrCodeProtocol {
				t.Fatalf("want RST_STREAM PROTOCOL_ERROR, got %v", f)
			}
			// The connection serves the next stream.
			r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hblock(getFields...), EndStream: true, EndHeaders: true})
			if h, ok := r.next(t).(*http2.HeadersFrame); !ok || h.StreamID != 3 {
				t.Fatalf("stream 3: %v", h)
			}
		})
	}
}

func TestConnectionErrors(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	for _, tc := range []struct {
		name string
		send func(r *rawConn)
		code http2.ErrCode
	}{
		{"even stream", func(r *rawConn) {
			r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2, BlockFragment: hblock(getFields...), EndStream: true, EndHeaders: true})
		}, http2.ErrCodeProtocol},
		{"data on idle", func(r *rawConn) { r.fr.WriteData(5, true, []byte("x")) }, http2.ErrCodeProtocol},
		{"window overflow", func(r *rawConn) { r.fr.WriteWindowUpdate(0, 1<<31-1) }, http2.ErrCodeFlowControl},
		{"stream id going down", func(r *rawConn) {
			r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: hblock(getFields...), EndStream: true, EndHeaders: true})
			r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hblock(getFields...), EndStream: true, EndHeaders: true})
		}, http2.ErrCodeProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			tc.send(r)
			for {
				f := r.next(t)
				if ga, ok := f.(*http2.GoAwayFrame); ok {
					if ga.ErrCode != tc.code {
						t.Fatalf("GOAWAY %v, want %v", ga.ErrCode, tc.code)
					}
					return
				}
			}
		})
	}
}

// TestIdleTimeout: a connection with no open stream is closed with GOAWAY
// NO_ERROR after IdleTimeout; one with a stream in flight is not.
func TestIdleTimeout(t *testing.T) {
	addr := serve(t, &Server{IdleTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(400 * time.Millisecond)
	})})
	r := dialRaw(t, addr)
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hblock(getFields...), EndStream: true, EndHeaders: true})
	start := time.Now()
	if h, ok := r.next(t).(*http2.HeadersFrame); !ok || h.StreamID != 1 {
		t.Fatalf("stream 1: %v", h)
	}
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}
	for {
		f := r.next(t)
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
				t.Fatalf("GOAWAY %v last %d", ga.ErrCode, ga.LastStreamID)
			}
			break
		}
	}
	if d := time.Since(start); d < 550*time.Millisecond || d > 2*time.Second {
		t.Errorf("idle close after %v, want about 600ms", d)
	}
	if _, err := r.fr.ReadFrame(); err == nil {
		t.Error("connection still open after GOAWAY")
	}
}
