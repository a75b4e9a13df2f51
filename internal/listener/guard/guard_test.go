package guard

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/http1"
)

// pipeConn is a net.Conn that reads from a fixed input, in pieces of at most
// step bytes.
type pipeConn struct {
	net.Conn
	in   []byte
	step int
}

func (p *pipeConn) Read(b []byte) (int, error) {
	if len(p.in) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), len(p.in), p.step)
	copy(b, p.in[:n])
	p.in = p.in[n:]
	return n, nil
}
func (p *pipeConn) Close() error                       { return nil }
func (p *pipeConn) SetReadDeadline(time.Time) error    { return nil }
func (p *pipeConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (p *pipeConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (p *pipeConn) Write(b []byte) (int, error)        { return len(b), nil }
func (p *pipeConn) SetDeadline(time.Time) error        { return nil }
func (p *pipeConn) SetWriteDeadline(t time.Time) error { return nil }

// through returns what the guard hands over for input, read in steps.
func through(in string, step int) string {
	g := New(&pipeConn{in: []byte(in), step: step}, &Config{MaxBodyBytes: 1 << 20, H2: true})
	var out bytes.Buffer
	buf := make([]byte, 7)
	for range 100000 {
		n, err := g.Read(buf)
		out.Write(buf[:n])
		if err != nil || g.st == stDrain && len(g.synth) == 0 && g.ready == 0 {
			break
		}
	}
	return out.String()
}

func TestConnStream(t *testing.T) {
	good := "GET / HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"\r\n" + // a stray empty line between requests is dropped
		"POST /y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n" +
		"GET /z HTTP/1.1\r\nHost: a\r\n\r\n"
	want := strings.Replace(good, "hello\r\nPOST", "helloPOST", 1)
	for _, step := range []int{1, 2, 3, 5, 64, 4096} {
		if got := through(good, step); got != want {
			t.Fatalf("step %d: got %q", step, got)
		}
	}
	bad := "GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	got := through(bad, 3)
	if !strings.HasPrefix(got, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"+rejectMethod+" /") || strings.Contains(got, "smuggled") {
		t.Fatalf("got %q", got)
	}
}

func TestConnH2Preface(t *testing.T) {
	in := "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
	if got := through(in, 5); got != in {
		t.Fatalf("got %q", got)
	}
}

func TestRapidResetBudget(t *testing.T) {
	var h h2count
	frame := func(typ byte, stream byte) []byte {
		return []byte{0, 0, 0, typ, 0, 0, 0, 0, stream}
	}
	for i := range 1000 {
		if !h.feed(frame(0x1, byte(i))) {
			t.Fatalf("HEADERS refused")
		}
		rst := append(frame(0x3, byte(i)), 0, 0, 0, 8)
		rst[2] = 4
		if !h.feed(rst) {
			if i < resetFloor {
				t.Fatalf("cut off after %d resets", i)
			}
			return
		}
	}
	t.Fatal("1000 rapid resets allowed")
}

// TestPingBudget: a flood of PINGs alone is cut off past controlPerSecond
// in a second, but PINGs that come with progress (a grpc-go client's BDP
// pings, about one per answer, with its WINDOW_UPDATEs and new streams)
// are not.
func TestPingBudget(t *testing.T) {
	frame := func(typ byte) []byte {
		f := []byte{0, 0, 0, typ, 0, 0, 0, 0, 0}
		if typ == 0x6 {
			f[2] = 8
			f = append(f, make([]byte, 8)...)
		}
		if typ == 0x8 {
			f[2] = 4
			f = append(f, 0, 0, 0x10, 0)
		}
		return f
	}
	t.Run("flood", func(t *testing.T) {
		var h h2count
		for i := range 1000 {
			if !h.feed(frame(0x6)) {
				if i < controlPerSecond {
					t.Fatalf("cut off after %d PINGs", i)
				}
				return
			}
		}
		t.Fatal("1000 PINGs in a row allowed")
	})
	t.Run("with progress", func(t *testing.T) {
		var h h2count
		for i := range 2000 {
			for _, typ := range []byte{0x1, 0x0, 0x6, 0x8, 0x6} {
				if !h.feed(frame(typ)) {
					t.Fatalf("call %d: frame %#x refused", i, typ)
				}
			}
		}
	})
}

// FuzzHead checks that whatever the guard accepts, net/http parses, with the
// same body framing.
func FuzzHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x?y=1 HTTP/1.1\r\nHost: a:80\r\nContent-Length: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET http://b/c HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
	} {
		f.Add(s)
	}
	lim := &Limits{MaxURI: 8192, MaxHeaders: 100}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		var from int
		n := http1.HeadEnd(b, &from)
		if n < 0 {
			return
		}
		h, why := parseHead(b[:n], true, lim)
		if why != rNone || h.H2 {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:n])))
		if err != nil {
			t.Fatalf("guard accepted what net/http refuses (%v): %q", err, b[:n])
		}
		if h.Chunked != (len(req.TransferEncoding) > 0) {
			t.Fatalf("chunked %v, net/http %v: %q", h.Chunked, req.TransferEncoding, b[:n])
		}
		if !h.Chunked && req.ContentLength != h.Length {
			t.Fatalf("length %d, net/http %d: %q", h.Length, req.ContentLength, b[:n])
		}
	})
}

// TestChunker pins the chunked decoder's verdicts where RFC 9112 and Go's
// chunked reader (which reads these bodies after the guard) meet.
func TestChunker(t *testing.T) {
	for _, tc := range []struct {
		in   string
		done bool
		ok   bool
	}{
		{"5\r\nhello\r\n0\r\n\r\n", true, true},
		{"5;a=b\r\nhello\r\n0\r\n\r\n", true, true},
		{"5;a=b \r\nhello\r\n0\r\n\r\n", true, true},
		{"5 \r\nhello\r\n0\t\r\n\r\n", true, true}, // trailing OWS: Go trims it
		{"0 ;0\r\n\r\n", false, false},             // BWS before ";": Go refuses
		{"5\t;a\r\nhello\r\n0\r\n\r\n", false, false},
		{"5 5\r\n", false, false},
		{"zz\r\n", false, false},
		{"5\r\nhelloXX", false, false},
		{"5\nhello\r\n", false, false}, // bare LF
		{"11111111111111111\r\n", false, false},
		{"0\r\nX-T: 1\r\n\r\n", true, true},
		{"1;" + strings.Repeat("a", http1.MaxChunkLine-2) + "\r\nx\r\n0\r\n\r\n", true, true}, // the longest line
		{"1;" + strings.Repeat("a", http1.MaxChunkLine-1) + "\r\nx\r\n0\r\n\r\n", false, false},
		{"0\r\nContent-Length: 1\r\n\r\n", false, false},
	} {
		k := chunker{maxTrailer: 1 << 16}
		n, done, why := k.feed([]byte(tc.in))
		if done != tc.done || (why == rNone) != tc.ok {
			t.Errorf("%q: done %v why %v, want done %v ok %v", tc.in, done, why, tc.done, tc.ok)
		}
		if done {
			if n != len(tc.in) {
				t.Errorf("%q: body %d bytes, want %d", tc.in, n, len(tc.in))
			}
			if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(strings.NewReader(tc.in))); err != nil {
				t.Errorf("%q accepted, Go's reader: %v", tc.in, err)
			}
		}
	}
}

// FuzzChunked checks that the chunked decoder gives the same verdict however
// the body is split, and that what it accepts Go's chunked reader reads.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=b;c=\"d e\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"zz\r\n",
		"5\r\nhelloXX0\r\n\r\n",
		"0\r\nContent-Length: 1\r\n\r\n",
	} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, s string, step uint8) {
		whole := chunker{maxTrailer: 1 << 16}
		n1, done1, why1 := whole.feed([]byte(s))
		st := max(int(step), 1)
		split := chunker{maxTrailer: 1 << 16}
		n2, done2, why2 := 0, false, rNone
		for off := 0; off < len(s) && !done2 && why2 == rNone; off += st {
			end := min(off+st, len(s))
			n, d, w := split.feed([]byte(s[off:end]))
			n2 += n
			done2, why2 = d, w
		}
		if done1 != done2 || (why1 == rNone) != (why2 == rNone) || (done1 && n1 != n2) {
			t.Fatalf("split %d changes the verdict: %v/%v/%d vs %v/%v/%d", st, done1, why1, n1, done2, why2, n2)
		}
		if done1 {
			r := httputil.NewChunkedReader(strings.NewReader(s[:n1]))
			if _, err := io.Copy(io.Discard, r); err != nil {
				t.Fatalf("accepted %q, Go's reader: %v", s[:n1], err)
			}
		}
	})
}

func BenchmarkConn(b *testing.B) {
	req := []byte("GET /api/v1/users/42?x=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nX-Request-ID: 0123456789abcdef\r\n\r\n" +
		"POST /api/v1/orders HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":1,\"b\":2}")
	cfg := &Config{}
	pc := &pipeConn{step: 4096}
	g := New(pc, cfg)
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		pc.in = req
		for len(pc.in) > 0 || g.ready > 0 || g.r < g.w {
			if _, err := g.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestHeadContentLength pins the guard to net/http's Content-Length rule
// (http1.ParseLength): what net/http reads as a length, the guard reads as
// the same length; what it refuses, the guard refuses.
func TestHeadContentLength(t *testing.T) {
	lim := &Limits{MaxURI: 8192, MaxHeaders: 100}
	for _, v := range []string{"0", "5", "0005", "00000000000000000000005", "1234567890123456789",
		"9223372036854775807", "9223372036854775808", "18446744073709551621", "", "+5", "-5", "5,5", "0x5"} {
		b := []byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + v + "\r\n\r\n")
		h, why := parseHead(b, true, lim)
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if (why == rNone) != (err == nil) {
			t.Errorf("Content-Length %q: guard %v, net/http %v", v, why, err)
			continue
		}
		if err == nil && h.Length != req.ContentLength {
			t.Errorf("Content-Length %q: guard %d, net/http %d", v, h.Length, req.ContentLength)
		}
	}
}
