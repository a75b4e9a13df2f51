package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/rampart-gw/rampart/internal/http1"
)

// max1xx bounds the informational responses skipped before the final one.
const max1xx = 16

// maxDrain is the most of an unread body Close discards to keep the
// connection, and only when those bytes are already buffered.
const maxDrain = 4 << 10

// readResponse reads the final response to req from cn. got reports that
// some response bytes arrived (so the request reached a live server). The
// body ends the watch of the exchange (cn.unwatch). noReuse
// keeps the connection out of the pool after the body. lift clears the
// connection's deadlines once the final head is in, unless the body needs
// no read on the connection (cn.dl then says a deadline is left).
func (c *Client) readResponse(ctx context.Context, cn *conn, req *http.Request, noReuse, lift bool) (_ *http.Response, got bool, _ error) {
	c.takeReader(cn)
	for n := 0; ; n++ {
		mem := new(headMem)
		head, gotHead, err := readHead(cn.br, c.cfg.MaxHeadBytes, mem)
		if err != nil {
			return nil, got || gotHead, err
		}
		got = true
		x := c.state()
		resp := &x.resp
		if err := parseHead(head, resp, c.cfg.MaxHeaders, mem); err != nil {
			return nil, true, err
		}
		if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			if n >= max1xx {
				return nil, true, fmt.Errorf("%w: too many 1xx responses", ErrMalformed)
			}
			continue
		}
		resp.Request = req
		if resp.StatusCode == http.StatusSwitchingProtocols {
			if lift {
				cn.lift(ctx)
			}
			if !cn.unwatch() {
				return nil, true, ctx.Err()
			}
			resp.ContentLength = 0 // as net/http: a 1xx response has no body
			resp.Body = &upgraded{nc: cn.nc, br: cn.br}
			return resp, true, nil
		}
		if err := c.frame(x, req); err != nil {
			return nil, true, err
		}
		// The final head is in: the wait for it is over. A body already
		// in the buffer is read without the connection, so its deadline
		// can stay until the next exchange sets its own (one deadline
		// change per exchange instead of two).
		if lift && !bodyBuffered(&x.body, cn.br) {
			cn.lift(ctx)
		}
		b := &x.body
		b.c, b.cn, b.ctx, b.resp, b.noReuse = c, cn, ctx, resp, noReuse
		b.x = x
		if b.mode == modeNone {
			resp.Body = http.NoBody
			b.finish(true)
		} else {
			resp.Body = b
		}
		return resp, true, nil
	}
}

// lift clears the deadline of the wait for the head (and the read
// deadline of an early response), then redoes an abort the reset may have
// undone.
func (cn *conn) lift(ctx context.Context) {
	cn.nc.SetDeadline(time.Time{})
	cn.dl = false
	if ctx.Err() != nil {
		cn.abort()
	}
}

// bodyBuffered reports whether the whole body of a framed response is in
// br, so that reading it needs no read on the connection.
func bodyBuffered(b *respBody, br *bufio.Reader) bool {
	switch b.mode {
	case modeNone:
		return true
	case modeLength:
		return b.remain <= int64(br.Buffered())
	}
	return false
}

// exchangeState is a response and its body in one allocation. Released
// ones (Client.Release) are reused, header map included.
type exchangeState struct {
	resp http.Response
	body respBody
}

// maxPooledHeaders bounds the header map kept with a released response,
// so that one huge response does not pin a huge map in the pool.
const maxPooledHeaders = 64

// state returns a cleared exchangeState, reused when one was released.
func (c *Client) state() *exchangeState {
	if x, ok := c.states.Get().(*exchangeState); ok {
		return x
	}
	return &exchangeState{}
}

// Release hands back a response of this client that the caller is done
// with — its body closed or read to the end, and neither the response nor
// its Header map used again — so that a later response reuses its memory.
// The header values are not reused: they may live on (say, in the header
// map of the client's response). Calling Release is optional; responses
// without a body of their own (http.NoBody, upgrades) and those whose body
// is still in use are left to the garbage collector.
func (c *Client) Release(resp *http.Response) {
	b, ok := resp.Body.(*respBody)
	if !ok || b.resp != resp || b.x == nil || b.c != c {
		return
	}
	b.mu.Lock()
	done := b.released && !b.reading
	b.mu.Unlock()
	if !done {
		return
	}
	x, h := b.x, resp.Header
	if len(h) > maxPooledHeaders {
		h = nil
	}
	clear(h)
	x.resp = http.Response{Header: h}
	x.body = respBody{}
	c.states.Put(x)
}

// frame applies the framing rules of RFC 9112 section 6.3 to a parsed
// final response: it sets ContentLength, TransferEncoding, Close, Trailer
// and the body mode.
func (c *Client) frame(x *exchangeState, req *http.Request) error {
	resp, b := &x.resp, &x.body
	h := resp.Header
	conn := h["Connection"]
	resp.Close = http1.HasTokenIn(conn, "close") || (resp.ProtoMinor == 0 && !http1.HasTokenIn(conn, "keep-alive"))

	cl := int64(-1)
	if vv := h["Content-Length"]; len(vv) > 0 {
		for _, v := range vv[1:] {
			if v != vv[0] {
				return malformed("conflicting Content-Length", strings.Join(vv, ", "))
			}
		}
		if len(vv) > 1 {
			h["Content-Length"] = vv[:1]
		}
		var ok bool
		if cl, ok = http1.ParseLength(vv[0]); !ok {
			return malformed("Content-Length", vv[0])
		}
	}
	chunked := false
	if te, ok := h["Transfer-Encoding"]; ok && resp.ProtoMinor == 1 {
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return malformed("Transfer-Encoding", strings.Join(te, ", "))
		}
		if cl >= 0 {
			// A message with both is a smuggling or splitting attempt
			// (RFC 9112 section 6.3, item 3).
			return malformed("Content-Length with Transfer-Encoding", te[0])
		}
		chunked = true
		delete(h, "Transfer-Encoding")
		te[0] = "chunked"
		resp.TransferEncoding = te
	}

	switch code := resp.StatusCode; {
	case req.Method == http.MethodHead:
		resp.ContentLength = cl
		if chunked {
			resp.ContentLength = -1
		}
		return nil
	case code == http.StatusNoContent || code == http.StatusNotModified:
		resp.ContentLength = 0
		return nil
	case chunked:
		resp.ContentLength = -1
		b.mode = modeChunked
		if tr, err := declaredTrailers(h); err != nil {
			return err
		} else if tr != nil {
			resp.Trailer = tr
		}
	case cl == 0:
		resp.ContentLength = 0
	case cl > 0:
		resp.ContentLength = cl
		b.mode, b.remain = modeLength, cl
	default:
		resp.ContentLength = -1
		resp.Close = true
		b.mode = modeClose
	}
	return nil
}

// declaredTrailers returns the trailer names announced by the Trailer
// header with nil values, as net/http does, and removes the header.
func declaredTrailers(h http.Header) (http.Header, error) {
	vv, ok := h["Trailer"]
	if !ok {
		return nil, nil
	}
	delete(h, "Trailer")
	var tr http.Header
	for _, v := range vv {
		for v != "" {
			var k string
			k, v, _ = strings.Cut(v, ",")
			k = http1.TrimOWS(k)
			if k == "" {
				continue
			}
			k = http.CanonicalHeaderKey(k)
			switch k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, malformed("trailer name", k)
			}
			if tr == nil {
				tr = http.Header{}
			}
			tr[k] = nil
		}
	}
	return tr, nil
}

// readHead reads one response head from br, up to max bytes, and returns
// it as a string. got reports that at least one byte arrived.
func readHead(br *bufio.Reader, max int, mem *headMem) (_ string, got bool, _ error) {
	from := 0
	for {
		buf, _ := br.Peek(br.Buffered())
		if n := http1.HeadEnd(buf, &from); n > 0 {
			if n > max {
				return "", true, errHeadTooLarge
			}
			var s string
			if mem != nil && n <= len(mem.buf) {
				s = unsafe.String(&mem.buf[0], copy(mem.buf[:], buf[:n]))
			} else {
				s = string(buf[:n])
			}
			br.Discard(n)
			return s, true, nil
		}
		if len(buf) > max {
			return "", true, errHeadTooLarge
		}
		if len(buf) == br.Size() {
			return readLongHead(br, max, from)
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			if len(buf) == 0 && br.Buffered() == 0 {
				return "", false, err
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", true, err
		}
	}
}

// readLongHead reads a head that does not fit in br's buffer.
func readLongHead(br *bufio.Reader, max, from int) (string, bool, error) {
	var acc []byte
	for {
		chunk, _ := br.Peek(br.Buffered())
		old := len(acc)
		acc = append(acc, chunk...)
		if n := http1.HeadEnd(acc, &from); n > 0 {
			if n > max {
				return "", true, errHeadTooLarge
			}
			br.Discard(n - old)
			return string(acc[:n]), true, nil
		}
		br.Discard(len(chunk))
		if len(acc) > max {
			return "", true, errHeadTooLarge
		}
		if _, err := br.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", true, err
		}
	}
}

// Body modes.
const (
	modeNone    = iota // no body
	modeLength         // Content-Length bytes
	modeChunked        // chunked transfer coding
	modeClose          // until the server closes
)

// respBody is a response body bound to its connection. Read must not be
// called concurrently with Read; Close may be called at any time.
type respBody struct {
	x      *exchangeState // the allocation this body is part of
	c      *Client
	cn     *conn
	ctx    context.Context
	resp   *http.Response
	mode   uint8
	remain int64 // of the body (modeLength) or of the current chunk
	// crlf is set when the current chunk's data is done and its CRLF is
	// still to be read.
	crlf    bool
	noReuse bool

	mu       sync.Mutex
	reading  bool
	released bool  // the connection was pooled or closed
	err      error // sticky: io.EOF once done
}

var errBodyClosed = errors.New("read on closed response body")

// finish releases the connection: to the pool when reuse is allowed and
// the exchange's watch ended before it aborted the connection, else closed.
func (b *respBody) finish(reuse bool) {
	b.released = true
	ok := b.cn.unwatch()
	if reuse && ok && !b.noReuse && !b.resp.Close && !b.resp.Request.Close {
		b.c.put(b.cn)
		return
	}
	b.cn.close()
}

func (b *respBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.reading = true
	b.mu.Unlock()

	n, err := b.read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	if b.err != nil { // closed meanwhile; Close released the connection
		return n, b.err
	}
	if err == nil {
		return n, nil
	}
	if err == io.EOF {
		b.err = io.EOF
		b.finish(true)
		return n, io.EOF
	}
	if ctxErr := b.ctx.Err(); ctxErr != nil {
		err = ctxErr
	}
	b.err = err
	b.finish(false)
	return n, err
}

// read reads body bytes; io.EOF means the body ended cleanly and the
// connection is ready for the next exchange (modeClose: closed by peer).
func (b *respBody) read(p []byte) (int, error) {
	br := b.cn.br
	switch b.mode {
	case modeLength:
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err := br.Read(p)
		b.remain -= int64(n)
		if b.remain == 0 {
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	case modeClose:
		n, err := br.Read(p)
		if err == io.EOF {
			b.noReuse = true
		}
		return n, err
	}
	if b.remain == 0 {
		if err := b.nextChunk(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := br.Read(p)
	b.remain -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, err
	}
	if b.remain == 0 {
		b.crlf = true
		// Finish the body now when its end is already buffered, so the
		// last data comes with io.EOF and the connection is freed early.
		if br.Buffered() >= 5 {
			if end, _ := br.Peek(5); string(end) == "\r\n0\r\n" {
				if err := b.nextChunk(); err != nil {
					return n, err
				}
			}
		}
	}
	return n, nil
}

// nextChunk reads the CRLF ending the previous chunk and the next chunk's
// size line; at the last chunk it reads the trailers and returns io.EOF.
func (b *respBody) nextChunk() error {
	br := b.cn.br
	if b.crlf {
		var crlf [2]byte
		if _, err := io.ReadFull(br, crlf[:]); err != nil {
			return unexpected(err)
		}
		if crlf != [2]byte{'\r', '\n'} {
			return fmt.Errorf("%w: chunk not followed by CRLF", ErrMalformed)
		}
		b.crlf = false
	}
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > http1.MaxChunkLine+2 {
		return fmt.Errorf("%w: chunk size line too long", ErrMalformed)
	}
	if err != nil {
		return unexpected(err)
	}
	size, ok := http1.ParseChunkSize(line)
	if !ok {
		return malformed("chunk size line", string(line))
	}
	if size > 0 {
		b.remain = size
		return nil
	}
	if err := b.readTrailers(); err != nil {
		return err
	}
	return io.EOF
}

// readTrailers reads the trailer section after the last chunk into
// resp.Trailer.
func (b *respBody) readTrailers() error {
	br := b.cn.br
	var acc []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = errHeadTooLarge
		}
		if err != nil {
			return unexpected(err)
		}
		if len(acc) == 0 && (len(line) == 1 || (len(line) == 2 && line[0] == '\r')) {
			return nil // no trailers
		}
		acc = append(acc, line...)
		if len(acc) > b.c.cfg.MaxHeadBytes {
			return errHeadTooLarge
		}
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			break
		}
	}
	s := string(acc)
	n := strings.Count(s, "\n") - 1
	if n > b.c.cfg.MaxHeaders {
		return errHeadTooLarge
	}
	tr := b.resp.Trailer
	if tr == nil {
		tr = make(http.Header, n)
	}
	if err := parseFields(s, tr, n, nil); err != nil {
		return err
	}
	b.resp.Trailer = tr
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Close releases the connection. Before the end of the body it closes the
// connection, unless the rest (at most 4 KiB) is already buffered.
func (b *respBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return nil
	}
	if b.err == nil {
		b.err = errBodyClosed
	}
	if b.reading {
		// A concurrent Read holds the buffer: just break the connection.
		b.released = true
		b.cn.unwatch()
		b.cn.close()
		return nil
	}
	b.finish(b.drain())
	return nil
}

// drain discards the rest of a body that is already buffered and reports
// whether that reached its end.
func (b *respBody) drain() bool {
	br := b.cn.br
	if b.mode == modeLength && b.remain <= maxDrain && int64(br.Buffered()) >= b.remain {
		br.Discard(int(b.remain))
		b.remain = 0
		return true
	}
	return false
}

// upgraded is the body of a 101 response: the raw connection, read through
// the bytes already buffered.
type upgraded struct {
	nc net.Conn
	br *bufio.Reader
}

var _ io.ReadWriteCloser = (*upgraded)(nil)

func (u *upgraded) Read(p []byte) (int, error)  { return u.br.Read(p) }
func (u *upgraded) Write(p []byte) (int, error) { return u.nc.Write(p) }
func (u *upgraded) Close() error                { return u.nc.Close() }

// CloseWrite half-closes the connection when it supports it.
func (u *upgraded) CloseWrite() error {
	if cw, ok := u.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
