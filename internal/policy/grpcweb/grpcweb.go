package grpcweb

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// GRPCWeb is a compiled `grpc_web` policy.
type GRPCWeb struct{}

var _ policy.Policy = GRPCWeb{}

// New compiles a `grpc_web` policy.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	return GRPCWeb{}, nil
}

const (
	webType  = "application/grpc-web"
	textType = "application/grpc-web-text"
)

// kind parses a gRPC-Web content type: ok, whether it is the text form,
// and its suffix ("", "+proto", "+json").
func kind(ct string) (ok, text bool, suffix string) {
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	rest, found := strings.CutPrefix(ct, textType)
	if found {
		text = true
	} else if rest, found = strings.CutPrefix(ct, webType); !found {
		return false, false, ""
	}
	if rest != "" && rest[0] != '+' {
		return false, false, ""
	}
	return true, text, rest
}

// Wrap translates gRPC-Web requests to gRPC and their responses back.
func (GRPCWeb) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, text, suffix := kind(r.Header.Get("Content-Type"))
		if !ok || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		r.Header["Content-Type"] = []string{"application/grpc" + suffix}
		r.Header["Te"] = []string{"trailers"}
		delete(r.Header, "X-Grpc-Web")
		if text {
			r.Body = struct {
				io.Reader
				io.Closer
			}{&b64Reader{src: bufio.NewReader(r.Body)}, r.Body}
			r.ContentLength = -1
			delete(r.Header, "Content-Length")
		}
		rw := &writer{w: w, h: http.Header{}, text: text, suffix: suffix}
		next.ServeHTTP(rw, r)
		rw.finish()
	})
}

// b64Reader decodes base64 read in 4-byte quanta, each decoded on its own,
// so that concatenated padded chunks ("AAAA==" + "BBBB") decode as a
// whole, as gRPC-Web text clients may send them. Whitespace is skipped.
type b64Reader struct {
	src  *bufio.Reader
	out  []byte
	quad [4]byte
	err  error
}

func (b *b64Reader) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		n := 0
		for n < 4 {
			c, err := b.src.ReadByte()
			if err != nil {
				if err == io.EOF && n != 0 {
					err = fmt.Errorf("%w: gRPC-Web text body ends inside a base64 quantum", exchange.ErrMalformedBody)
				}
				b.err = err
				break
			}
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				continue
			}
			b.quad[n] = c
			n++
		}
		if n == 4 {
			var dec [3]byte
			m, err := base64.StdEncoding.Decode(dec[:], b.quad[:])
			if err != nil {
				b.err = fmt.Errorf("%w: gRPC-Web text body is not base64: %v", exchange.ErrMalformedBody, err)
				return 0, b.err
			}
			b.out = append(b.out[:0], dec[:m]...)
		}
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

// writer turns the inner gRPC response into gRPC-Web: it keeps the
// headers the inner handler sets (its own map), sends them at WriteHeader
// with the gRPC-Web content type, passes the body (base64 in text mode)
// and, in finish, appends the trailers as the trailer frame.
type writer struct {
	w           http.ResponseWriter
	h           http.Header
	text        bool
	suffix      string
	status      int
	wrote       bool // WriteHeader sent
	body        bool // a body byte sent
	grpc        bool // the response is gRPC (translated); else passed as is
	declared    []string
	pending     []byte // text mode: bytes not yet a multiple of 3
	enc         []byte
	writeFailed bool
}

func (x *writer) Header() http.Header { return x.h }

func (x *writer) WriteHeader(code int) {
	if x.wrote {
		return
	}
	x.wrote, x.status = true, code
	ct := x.h.Get("Content-Type")
	x.grpc = strings.HasPrefix(strings.ToLower(ct), "application/grpc")
	out := x.w.Header()
	for k, vv := range x.h {
		if x.grpc && (k == "Trailer" || k == "Content-Length" || strings.HasPrefix(k, http.TrailerPrefix)) {
			continue
		}
		out[k] = vv
	}
	if x.grpc {
		for _, v := range x.h["Trailer"] {
			for _, n := range strings.Split(v, ",") {
				if n = strings.TrimSpace(n); n != "" {
					x.declared = append(x.declared, http.CanonicalHeaderKey(n))
				}
			}
		}
		suffix := strings.TrimPrefix(strings.ToLower(ct), "application/grpc")
		if suffix == "" {
			suffix = x.suffix
		}
		if x.text {
			out["Content-Type"] = []string{textType + suffix}
		} else {
			out["Content-Type"] = []string{webType + suffix}
		}
	}
	x.w.WriteHeader(code)
}

func (x *writer) Write(p []byte) (int, error) {
	if !x.wrote {
		x.WriteHeader(http.StatusOK)
	}
	if len(p) > 0 {
		x.body = true
	}
	if !x.grpc || !x.text {
		return x.w.Write(p)
	}
	if err := x.writeText(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeText base64-encodes p after what is pending, keeping a remainder
// of fewer than 3 bytes unless final.
func (x *writer) writeText(p []byte, final bool) error {
	x.pending = append(x.pending, p...)
	n := len(x.pending)
	if !final {
		n -= n % 3
	}
	if n == 0 {
		return nil
	}
	x.enc = slices.Grow(x.enc[:0], base64.StdEncoding.EncodedLen(n))[:base64.StdEncoding.EncodedLen(n)]
	base64.StdEncoding.Encode(x.enc, x.pending[:n])
	x.pending = append(x.pending[:0], x.pending[n:]...)
	_, err := x.w.Write(x.enc)
	return err
}

// Flush flushes what has been written (a remainder of text mode waits
// for the next three bytes or the end).
func (x *writer) Flush() {
	if !x.wrote {
		x.WriteHeader(http.StatusOK)
	}
	if f, ok := x.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (x *writer) Unwrap() http.ResponseWriter { return x.w }

// finish writes the trailer frame: the declared trailers, undeclared
// (Trailer:-prefixed) ones, or, for a trailers-only response, the status
// fields of the headers.
func (x *writer) finish() {
	if !x.wrote {
		x.WriteHeader(http.StatusOK)
	}
	if !x.grpc {
		return
	}
	var block []byte
	add := func(k string, vv []string) {
		for _, v := range vv {
			block = append(block, strings.ToLower(k)...)
			block = append(block, ':', ' ')
			block = append(block, v...)
			block = append(block, '\r', '\n')
		}
	}
	n := 0
	for _, k := range x.declared {
		if vv := x.h[k]; len(vv) > 0 {
			add(k, vv)
			n++
		}
	}
	for k, vv := range x.h {
		if t, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			add(t, vv)
			n++
		}
	}
	if n == 0 {
		// Trailers-only: the status came in the headers.
		for _, k := range []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"} {
			add(k, x.h[k])
		}
	}
	frame := make([]byte, 5, 5+len(block))
	frame[0] = 0x80
	binary.BigEndian.PutUint32(frame[1:], uint32(len(block)))
	frame = append(frame, block...)
	if x.text {
		x.writeText(frame, true)
	} else {
		x.w.Write(frame)
	}
}
