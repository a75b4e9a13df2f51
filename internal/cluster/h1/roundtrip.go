package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rampart-gw/rampart/internal/http1"
)

// smallBody is the largest request body sent in the same write as the head.
const smallBody = 8 << 10

var (
	errUnsupportedScheme = errors.New("unsupported scheme")
	errShortBody         = errors.New("request body shorter than its Content-Length")
)

// RoundTrip sends req over a pooled (or new) connection and returns the
// response once its head has arrived. The response body reads from the
// connection; reading it to the end or closing it releases the connection.
// Cancelling req's context aborts the exchange, including the body: at
// once, or within watchTick (5 ms) while the exchange is younger than
// watchPromote ticks (see watch.go).
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.RoundTripDeadline(req, time.Time{})
}

// RoundTripDeadline is RoundTrip with a bound on the wait for the response
// head: when deadline (if not zero) passes before the head has arrived —
// while connecting, sending the request or waiting — the exchange fails
// with an error wrapping os.ErrDeadlineExceeded. The bound is a deadline
// on the connection, so it costs no timer, goroutine or context; the body
// is not bounded. A stale pooled connection is not retried after the
// deadline.
func (c *Client) RoundTripDeadline(req *http.Request, deadline time.Time) (*http.Response, error) {
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	if req.URL == nil || req.URL.Scheme != "http" {
		closeBody(body)
		scheme := ""
		if req.URL != nil {
			scheme = req.URL.Scheme
		}
		return nil, fmt.Errorf("send request: %w %q", errUnsupportedScheme, scheme)
	}
	if body == nil && req.ContentLength > 0 {
		return nil, fmt.Errorf("send request: Content-Length %d with no body", req.ContentLength)
	}
	ctx := req.Context()
	addr := targetAddr(req.URL.Host)
	for try := 0; ; try++ {
		if err := ctx.Err(); err != nil {
			closeBody(body)
			return nil, err
		}
		cn, err := c.get(ctx, addr, deadline)
		if err != nil {
			closeBody(body)
			return nil, err
		}
		resp, retry, err := c.exchange(ctx, cn, req, body, deadline)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !retry || try > 0 || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return nil, err
		}
		// A reused connection failed before the server said anything: the
		// classic race with a server closing an idle keep-alive connection.
		// Send again on a fresh connection if the body can be replayed.
		if body != nil {
			if req.GetBody == nil {
				return nil, err
			}
			if body, err = req.GetBody(); err != nil {
				return nil, err
			}
			if body == http.NoBody {
				body = nil
			}
		}
	}
}

func closeBody(b io.ReadCloser) {
	if b != nil {
		b.Close()
	}
}

// exchange writes req on cn and reads the response head. It consumes and
// closes body. retry reports a failure that may be a stale connection:
// cn was reused and nothing came back.
func (c *Client) exchange(ctx context.Context, cn *conn, req *http.Request, body io.ReadCloser, deadline time.Time) (resp *http.Response, retry bool, err error) {
	// Before the context binding: a cancellation's abort must come after,
	// never be undone by it. readResponse clears the deadline, or leaves
	// it for this to replace or clear.
	switch {
	case !deadline.IsZero():
		cn.nc.SetDeadline(deadline)
		cn.dl = true
	case cn.dl:
		cn.nc.SetDeadline(time.Time{})
		cn.dl = false
	}
	cn.watch(ctx)
	fail := func(err error) (*http.Response, bool, error) {
		cn.unwatch()
		cn.close()
		return nil, false, err
	}
	sent, werr := c.writeRequest(cn, req, body)
	if werr != nil {
		var be *bodyError
		if errors.As(werr, &be) || ctx.Err() != nil || sent == 0 {
			r, _, e := fail(werr)
			// Nothing reached the server: safe to resend whatever the method.
			return r, sent == 0 && cn.reused && be == nil, e
		}
		// The server may have answered early (say 413) and stopped
		// reading: prefer its response to the write error.
		early := time.Now().Add(time.Second)
		if !deadline.IsZero() && deadline.Before(early) {
			early = deadline
		}
		cn.nc.SetReadDeadline(early)
		cn.dl = true
		r, _, rerr := c.readResponse(ctx, cn, req, true, true)
		if rerr != nil {
			_, _, e := fail(werr)
			return nil, cn.reused && http1.Idempotent(req.Method, req.Header) && isConnLoss(werr), e
		}
		r.Close = true
		return r, false, nil
	}
	r, got, rerr := c.readResponse(ctx, cn, req, false, !deadline.IsZero())
	if rerr != nil {
		_, _, e := fail(rerr)
		return nil, cn.reused && !got && http1.Idempotent(req.Method, req.Header) && isConnLoss(rerr), e
	}
	return r, false, nil
}

// isConnLoss reports whether err means the connection was closed or reset.
func isConnLoss(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// bodyError is a failure to read the request body (not the connection).
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// writeRequest writes req's head and body to cn and closes body. It returns
// how many bytes reached the connection.
func (c *Client) writeRequest(cn *conn, req *http.Request, body io.ReadCloser) (int64, error) {
	bp := c.buffer()
	defer c.writers.Put(bp)
	b, chunked, err := appendHead((*bp)[:0], req, body)
	if err != nil {
		closeBody(body)
		return 0, err
	}
	var sent int64
	switch {
	case body == nil:
		*bp = b[:0]
		n, err := cn.nc.Write(b)
		return int64(n), err
	case !chunked && req.ContentLength <= smallBody:
		// Small body: one write for head and body.
		cl := int(req.ContentLength)
		b = grow(b, cl)
		*bp = b[:0]
		n, err := io.ReadFull(body, b[len(b):len(b)+cl])
		body.Close()
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
				err = errShortBody
			}
			return 0, &bodyError{fmt.Errorf("%w (%d of %d bytes)", err, n, cl)}
		}
		m, err := cn.nc.Write(b[:len(b)+cl])
		return int64(m), err
	}
	*bp = b[:0]
	n, err := cn.nc.Write(b)
	sent += int64(n)
	if err != nil {
		closeBody(body)
		return sent, err
	}
	buf := b[:cap(b)]
	if len(buf) < 4<<10 {
		buf = make([]byte, 16<<10)
	}
	var m int64
	if chunked {
		m, err = writeChunked(cn, buf, body, req.Trailer)
	} else {
		m, err = writeLength(cn, buf, body, req.ContentLength)
	}
	body.Close()
	return sent + m, err
}

// grow returns b with room for n more bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// writeLength copies exactly n bytes of body to cn.
func writeLength(cn *conn, buf []byte, body io.Reader, n int64) (int64, error) {
	var sent int64
	for sent < n {
		k, rerr := body.Read(buf[:min(int64(len(buf)), n-sent)])
		if k > 0 {
			w, werr := cn.nc.Write(buf[:k])
			sent += int64(w)
			if werr != nil {
				return sent, werr
			}
		}
		if rerr == io.EOF && sent < n {
			return sent, &bodyError{fmt.Errorf("%w (%d of %d bytes)", errShortBody, sent, n)}
		}
		if rerr != nil && rerr != io.EOF {
			return sent, &bodyError{rerr}
		}
	}
	return sent, nil
}

// writeChunked copies body to cn in chunked encoding, one chunk per read
// so that a streamed body is forwarded as it arrives, then the trailers.
func writeChunked(cn *conn, buf []byte, body io.Reader, trailer http.Header) (int64, error) {
	const pre = 18 // up to 16 hex digits and CRLF
	var sent int64
	for {
		k, rerr := body.Read(buf[pre : len(buf)-7])
		if rerr != nil && rerr != io.EOF {
			return sent, &bodyError{rerr}
		}
		start := pre
		end := pre + k
		if k > 0 {
			hex := strconv.AppendInt(buf[:0:pre], int64(k), 16)
			hex = append(hex, '\r', '\n')
			start = pre - len(hex)
			copy(buf[start:], hex)
			end = copy(buf[end:], "\r\n") + end
		}
		if rerr == io.EOF {
			if len(trailer) == 0 {
				end += copy(buf[end:], "0\r\n\r\n")
			} else {
				// Trailers are read after the body: the caller may fill them
				// while the body streams.
				tb := append(buf[start:end:end], "0\r\n"...)
				var err error
				if tb, err = appendFields(tb, trailer, nil); err != nil {
					return sent, err
				}
				tb = append(tb, '\r', '\n')
				w, werr := cn.nc.Write(tb)
				return sent + int64(w), werr
			}
		}
		if end > start {
			w, werr := cn.nc.Write(buf[start:end])
			sent += int64(w)
			if werr != nil {
				return sent, werr
			}
		}
		if rerr == io.EOF {
			return sent, nil
		}
	}
}

// appendHead appends req's request line and header fields to b. chunked
// reports a body sent with chunked transfer coding.
func appendHead(b []byte, req *http.Request, body io.ReadCloser) (_ []byte, chunked bool, err error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !http1.ValidToken(method) {
		return b, false, fmt.Errorf("send request: invalid method %q", method)
	}
	b = append(b, method...)
	b = append(b, ' ')
	n := len(b)
	if req.URL.Opaque != "" {
		b = append(b, req.URL.RequestURI()...)
	} else {
		p := req.URL.EscapedPath()
		if p == "" {
			p = "/"
		}
		b = append(b, p...)
		if req.URL.RawQuery != "" || req.URL.ForceQuery {
			b = append(b, '?')
			b = append(b, req.URL.RawQuery...)
		}
	}
	if !validTarget(b[n:]) {
		return b, false, fmt.Errorf("send request: invalid request target %q", b[n:])
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	h := req.Host
	if h == "" {
		h = req.URL.Host
	}
	if !validValue(h) || strings.ContainsAny(h, " \t/") {
		return b, false, fmt.Errorf("send request: invalid Host %q", h)
	}
	b = append(b, h...)
	b = append(b, '\r', '\n')
	if b, err = appendFields(b, req.Header, excludedRequest); err != nil {
		return b, false, err
	}
	switch {
	case body == nil:
		switch method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			b = append(b, "Content-Length: 0\r\n"...)
		}
	case req.ContentLength > 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, '\r', '\n')
	default:
		chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
		if len(req.Trailer) > 0 {
			b = append(b, "Trailer: "...)
			first := true
			for k := range req.Trailer {
				if !http1.ValidToken(k) {
					return b, false, fmt.Errorf("send request: invalid trailer name %q", k)
				}
				if !first {
					b = append(b, ", "...)
				}
				first = false
				b = append(b, k...)
			}
			b = append(b, '\r', '\n')
		}
	}
	if req.Close && !http1.HasTokenIn(req.Header["Connection"], "close") {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, '\r', '\n')
	return b, chunked, nil
}

// excludedRequest reports the request header fields the client writes
// itself from the request's fields.
func excludedRequest(k string) bool {
	switch len(k) {
	case 4:
		return strings.EqualFold(k, "Host")
	case 7:
		return strings.EqualFold(k, "Trailer")
	case 14:
		return strings.EqualFold(k, "Content-Length")
	case 17:
		return strings.EqualFold(k, "Transfer-Encoding")
	}
	return false
}

// appendFields appends the fields of h not excluded, refusing invalid
// names and values (which would let a value smuggle a header or a request).
func appendFields(b []byte, h http.Header, exclude func(string) bool) ([]byte, error) {
	for k, vv := range h {
		if exclude != nil && exclude(k) {
			continue
		}
		if !http1.ValidToken(k) {
			return b, fmt.Errorf("send request: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !validValue(v) {
				return b, fmt.Errorf("send request: invalid header field value for %q", k)
			}
			b = append(b, k...)
			b = append(b, ':', ' ')
			b = append(b, http1.TrimOWS(v)...)
			b = append(b, '\r', '\n')
		}
	}
	return b, nil
}

// validTarget reports whether a request target has no whitespace or
// control bytes.
func validTarget(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return len(b) > 0
}
