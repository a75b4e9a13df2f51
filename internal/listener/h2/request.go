package h2

import (
	"context"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rampart-gw/rampart/internal/listener/httpcore"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// stream is one request/response exchange. It is one allocation: the
// request, its URL, its context, its body reader and its response writer.
type stream struct {
	c     *conn
	id    uint32
	cond  sync.Cond // on c.mu: body data, window, state changes
	state uint8
	// err, once set, fails the handler's writes and body reads.
	err  error
	dead atomic.Bool // err is set (read without the lock)

	localDone  bool // END_STREAM sent
	gotTrailer bool
	waiting    bool // a writer waits for window

	sendWin     int64
	recvWin     int64
	recvUnacked int64
	declLen     int64 // content-length, -1 unknown
	gotLen      int64

	trailer http.Header // trailers received, copied to r.Trailer at EOF
	body    *reqBody
	req     *http.Request
	w       responseWriter
	handler http.Handler
	ctx     streamCtx

	reqv  http.Request
	urlv  url.URL
	bodyv reqBody
	vals  [12]string
}

func newStream(c *conn, id uint32) *stream {
	st := &stream{c: c, id: id, sendWin: c.peerInit, recvWin: int64(c.s.StreamWindow), declLen: -1}
	st.cond.L = &c.mu
	st.ctx.parent = c.ctx
	st.w.st = st
	if n := len(c.hdrFree); n > 0 {
		st.w.hdr = c.hdrFree[n-1]
		c.hdrFree = c.hdrFree[:n-1]
	}
	return st
}

func (st *stream) release() {}

// newRequest builds st's request from its HEADERS (RFC 9113 §8.3) and
// returns the handler to run; a malformed request is a stream error.
func (c *conn) newRequest(st *stream, f *http2.MetaHeadersFrame) (http.Handler, error) {
	bad := http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	var method, scheme, authority, path string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":path":
			path = hf.Value
		default: // :protocol (no extended CONNECT), :status
			return nil, bad
		}
	}
	connect := method == http.MethodConnect
	if connect {
		if path != "" || scheme != "" || authority == "" {
			return nil, bad
		}
	} else if method == "" || path == "" || scheme != "https" && scheme != "http" {
		return nil, bad
	}
	regular := f.RegularFields()
	hdr := make(http.Header, len(regular))
	vals := st.vals[:0]
	for _, hf := range regular {
		key := c.canonical(hf.Name)
		if vv, ok := hdr[key]; ok {
			hdr[key] = append(vv, hf.Value)
			continue
		}
		i := len(vals)
		vals = append(vals, hf.Value)
		hdr[key] = vals[i : i+1 : i+1]
	}
	// Connection-specific fields make a request malformed (RFC 9113
	// §8.2.2): a stream error, as h2spec 8.1.2.2 wants.
	for _, k := range connHeaders {
		if _, ok := hdr[k]; ok {
			return nil, bad
		}
	}
	if te := hdr["Te"]; len(te) > 0 && (len(te) > 1 || te[0] != "trailers" && te[0] != "") {
		return nil, bad
	}
	if authority == "" {
		authority = hdr.Get("Host")
	}
	if strings.IndexByte(authority, '@') >= 0 && (scheme == "http" || scheme == "https") {
		return nil, bad
	}
	r := &st.reqv
	u := &st.urlv
	requestURI := path
	if connect {
		u.Host = authority
		requestURI = authority
	} else {
		if path[0] != '/' && path != "*" {
			return nil, bad
		}
		if !httpcore.ParseTarget(u, path) {
			return nil, bad
		}
	}
	needsContinue := false
	if ex := hdr["Expect"]; len(ex) > 0 {
		needsContinue = httpguts.HeaderValuesContainsToken(ex, "100-continue")
		if needsContinue {
			delete(hdr, "Expect")
		}
	}
	if cookies := hdr["Cookie"]; len(cookies) > 1 {
		hdr["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	var trailer http.Header
	for _, v := range hdr["Trailer"] {
		for _, key := range strings.Split(v, ",") {
			key = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(key))
			switch key {
			case "Transfer-Encoding", "Trailer", "Content-Length", "":
			default:
				if trailer == nil {
					trailer = make(http.Header)
				}
				trailer[key] = nil
			}
		}
	}
	delete(hdr, "Trailer")
	bodyOpen := !f.StreamEnded()
	var clen int64
	if cl, ok := hdr["Content-Length"]; ok {
		// As net/http: a content-length that does not parse counts as 0.
		if n, err := strconv.ParseUint(cl[0], 10, 63); err == nil {
			clen = int64(n)
		}
		for _, dup := range cl[1:] {
			if dup != cl[0] {
				return nil, bad
			}
		}
		hdr["Content-Length"] = cl[:1]
		if !bodyOpen && clen != 0 {
			return nil, bad
		}
		st.declLen = clen
	} else if bodyOpen {
		clen = -1
	}
	*r = http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     hdr,
		Host:       authority,
		RemoteAddr: c.remote,
		RequestURI: requestURI,
		TLS:        c.tls,
		Trailer:    trailer,
	}
	if trailer != nil {
		st.trailer = make(http.Header)
	}
	if bodyOpen {
		r.ContentLength = clen
		b := &st.bodyv
		b.st = st
		b.needsContinue = needsContinue
		st.body = b
		r.Body = b
	} else {
		st.state = stHalfClosedRemote
		r.Body = http.NoBody
	}
	// WithContext is inlined and its copy does not escape (as in
	// h1server): the request stays part of the stream's allocation.
	st.reqv = *r.WithContext(&st.ctx)
	st.req = &st.reqv
	st.w.reset(st.req)
	if f.Truncated {
		return http.HandlerFunc(headerListTooLong), nil
	}
	if method == http.MethodOptions && path == "*" {
		return http.HandlerFunc(globalOptions), nil
	}
	return c.s.Handler, nil
}

// globalOptions answers OPTIONS * as net/http's server does (its handler
// never sees it).
func globalOptions(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "0")
	if r.ContentLength != 0 {
		mb := http.MaxBytesReader(w, r.Body, 4<<10)
		io.Copy(io.Discard, mb)
	}
}

var connHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

func headerListTooLong(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
	w.Write([]byte("<h1>HTTP Error 431</h1><p>Request Header Field(s) Too Large</p>"))
}

// canonical is the canonical form of a (lower-case, valid) field name,
// cached per connection as net/http's server does.
func (c *conn) canonical(name string) string {
	if k, ok := commonCanonical[name]; ok {
		return k
	}
	if k, ok := c.canon[name]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(name)
	if c.canon == nil {
		c.canon = make(map[string]string)
	}
	if len(c.canon) < 256 {
		c.canon[name] = k
	}
	return k
}

var commonCanonical = func() map[string]string {
	m := make(map[string]string)
	for _, k := range httpcore.CommonKeys {
		m[strings.ToLower(k)] = k
	}
	return m
}()

// reqBody is a request body: DATA the reader buffered for the handler.
type reqBody struct {
	st            *stream
	buf           []byte
	r             int
	err           error // io.EOF at the end, or why the body failed
	closed        bool  // the handler closed it
	detached      bool  // the handler returned: the stream is gone
	needsContinue bool
}

func (b *reqBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	st := b.st
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for b.r == len(b.buf) {
		if b.detached || b.closed && b.err == nil {
			return 0, http.ErrBodyReadAfterClose
		}
		if b.err != nil {
			if b.err == errLongBody || b.err == errShortBody || b.err == errStreamReset || b.err == errConnClosed {
				return 0, b.err
			}
			if st.trailer != nil {
				for k := range st.req.Trailer {
					st.req.Trailer[k] = st.trailer[k]
				}
			}
			return 0, b.err
		}
		if b.needsContinue {
			b.needsContinue = false
			st.w.continueLocked() // lets go of the lock: check again
			continue
		}
		st.cond.Wait()
	}
	n := copy(p, b.buf[b.r:])
	b.r += n
	if b.r == len(b.buf) {
		b.buf, b.r = b.buf[:0], 0
	}
	c.creditLocked(st, int64(n))
	c.flushLocked()
	return n, nil
}

func (b *reqBody) Close() error {
	c := b.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if n := len(b.buf) - b.r; n > 0 && !b.detached {
		c.creditLocked(nil, int64(n))
		c.flushLocked()
	}
	b.buf, b.r = nil, 0
	return nil
}

// streamCtx is a stream's context: cancelled on RST_STREAM, when the
// connection ends and when the handler returns, without
// context.WithCancel's allocations (httpcore.Ctx, embedded by value).
// Values come from the connection's context.
type streamCtx struct {
	httpcore.Ctx
	parent context.Context
}

func (c *streamCtx) Value(k any) any { return c.parent.Value(k) }

func (c *streamCtx) String() string { return "h2.streamCtx" }

func (c *streamCtx) cancel() { c.Ctx.Cancel() }
