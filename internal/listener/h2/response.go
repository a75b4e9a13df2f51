package h2

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// bufSize is how much of a response body is held before it is sent: a
// response that fits is sent, with its content-length, when the handler
// returns.
const bufSize = 16 << 10

// smallBufSize is the body buffer a response starts with when its first
// write fits: most API responses are small, and a stream holds its buffer
// from the first write until the handler returns, so at hundreds of
// concurrent streams a 16 KiB buffer each was megabytes of live heap (and
// twice that of resident memory at GOGC=100; docs/performance.md, "HTTP/2
// memory under load"). A body that outgrows it moves to a bufSize buffer.
const smallBufSize = 2 << 10

var (
	bufPool      = sync.Pool{New: func() any { b := make([]byte, 0, bufSize); return &b }}
	smallBufPool = sync.Pool{New: func() any { b := make([]byte, 0, smallBufSize); return &b }}
)

// getBuf returns an empty body buffer for a first write of n bytes.
func getBuf(n int) *[]byte {
	if n <= smallBufSize {
		return smallBufPool.Get().(*[]byte)
	}
	return bufPool.Get().(*[]byte)
}

// putBuf gives a body buffer back to the pool of its size.
func putBuf(bp *[]byte) {
	*bp = (*bp)[:0]
	if cap(*bp) < bufSize {
		smallBufPool.Put(bp)
		return
	}
	bufPool.Put(bp)
}

// growBuf moves what the body buffer holds to a bufSize one.
func (w *responseWriter) growBuf() {
	big := bufPool.Get().(*[]byte)
	*big = append((*big)[:0], *w.bufp...)
	putBuf(w.bufp)
	w.bufp = big
}

// responseWriter is a stream's http.ResponseWriter. Its fields are the
// handler goroutine's; the frames it sends are queued under c.mu.
//
// The header is encoded when the response is first sent (the first flush,
// a body beyond bufSize or the handler's return), not at WriteHeader:
// fields changed in between are sent as they are then, except the declared
// trailers and http.TrailerPrefix keys, which go in the trailers.
type responseWriter struct {
	st          *stream
	req         *http.Request
	hdr         http.Header
	status      int
	wroteHeader bool // the handler called WriteHeader (or Write)
	sentHeader  bool // the HEADERS frame is queued
	isHead      bool
	headLen     int // bytes written to a HEAD response (not sent)
	bufp        *[]byte
	trailers    []string // declared at WriteHeader ("Trailer")
}

func (w *responseWriter) reset(r *http.Request) {
	w.req = r
	w.isHead = r.Method == http.MethodHead
}

func (w *responseWriter) release() {
	if w.bufp != nil {
		putBuf(w.bufp)
		w.bufp = nil
	}
}

func (w *responseWriter) Header() http.Header {
	if w.hdr == nil {
		w.hdr = make(http.Header)
	}
	return w.hdr
}

func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if w.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Informational: sent at once (103 Early Hints).
		c := w.st.c
		c.mu.Lock()
		if w.st.err == nil && !c.dead {
			c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(code)})
			w.encodeFields(w.hdr, nil)
			c.appendHeaderBlock(w.st.id, false)
			c.flushLocked()
		}
		c.mu.Unlock()
		return
	}
	w.wroteHeader = true
	w.status = code
	for _, v := range w.hdr["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
				w.trailers = append(w.trailers, k)
			}
		}
	}
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == http.StatusNoContent || status == http.StatusNotModified)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.st.dead.Load() {
		return 0, w.deadErr()
	}
	if w.isHead {
		w.headLen += len(p)
		return len(p), nil
	}
	if w.bufp == nil {
		w.bufp = getBuf(len(p))
	}
	if len(*w.bufp)+len(p) > cap(*w.bufp) && cap(*w.bufp) < bufSize {
		w.growBuf()
	}
	buf := *w.bufp
	if len(buf)+len(p) <= bufSize {
		*w.bufp = append(buf, p...)
		return len(p), nil
	}
	c := w.st.c
	c.mu.Lock()
	err := w.sendLocked(buf, false)
	*w.bufp = buf[:0]
	if err == nil {
		if len(p) < bufSize {
			*w.bufp = append(buf[:0], p...)
		} else {
			err = w.sendLocked(p, false)
		}
	}
	c.flushLocked()
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *responseWriter) WriteString(s string) (int, error) {
	if w.bufp != nil && len(*w.bufp)+len(s) <= cap(*w.bufp) && w.wroteHeader && bodyAllowed(w.status) && !w.isHead && !w.st.dead.Load() {
		*w.bufp = append(*w.bufp, s...)
		return len(s), nil
	}
	return w.Write([]byte(s))
}

func (w *responseWriter) deadErr() error {
	c := w.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return w.st.err
}

// Flush sends the header and what the body holds.
func (w *responseWriter) Flush() { w.FlushError() }

// FlushError is Flush reporting a stream that is gone
// (http.ResponseController).
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	c := w.st.c
	c.mu.Lock()
	var buf []byte
	if w.bufp != nil {
		buf = *w.bufp
		*w.bufp = buf[:0]
	}
	err := w.sendLocked(buf, false)
	c.flushLocked()
	c.mu.Unlock()
	return err
}

// EnableFullDuplex reports success: an HTTP/2 handler may always read the
// request body while it writes the response.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// SetReadDeadline and SetWriteDeadline are not supported per stream
// (http.ResponseController reports it).
func (w *responseWriter) SetReadDeadline(time.Time) error  { return http.ErrNotSupported }
func (w *responseWriter) SetWriteDeadline(time.Time) error { return http.ErrNotSupported }

// finishLocked ends the response when the handler returns.
func (w *responseWriter) finishLocked() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	var buf []byte
	if w.bufp != nil {
		buf = *w.bufp
	}
	w.sendLocked(buf, true)
}

// continueLocked sends 100 Continue before the first body read of a
// request that expects it.
func (w *responseWriter) continueLocked() {
	c := w.st.c
	if w.sentHeader || w.st.err != nil || c.dead {
		return
	}
	c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "100"})
	c.appendHeaderBlock(w.st.id, false)
	c.flushLocked()
}

// sendLocked queues the header (first time), data and, when final, the
// end of the stream (with the trailers). It waits for flow-control window.
func (w *responseWriter) sendLocked(data []byte, final bool) error {
	st := w.st
	c := st.c
	if st.localDone {
		return nil
	}
	if st.err != nil {
		return st.err
	}
	if c.dead {
		return errConnClosed
	}
	trailers := final && w.hasTrailers()
	if !w.sentHeader {
		end := final && len(data) == 0 && !trailers
		w.writeHeaderLocked(data, final, end)
		w.sentHeader = true
		if end {
			w.localDoneLocked()
			return nil
		}
	}
	sentEnd := false
	for len(data) > 0 {
		for st.err == nil && !c.dead && (st.sendWin <= 0 || c.sendWin <= 0) {
			if len(c.wbuf) > 0 && !c.writing {
				// flushLocked lets go of the lock: check again after it.
				c.flushLocked()
				continue
			}
			st.waiting = true
			st.cond.Wait()
			st.waiting = false
		}
		if st.err != nil {
			return st.err
		}
		if c.dead {
			return errConnClosed
		}
		n := int64(len(data))
		n = min(n, st.sendWin, c.sendWin, int64(c.peerMaxFrame))
		end := final && !trailers && n == int64(len(data))
		c.appendData(st.id, data[:n], end)
		st.sendWin -= n
		c.sendWin -= n
		data = data[n:]
		sentEnd = end
		if len(c.wbuf) >= 64<<10 {
			c.flushLocked()
			if st.err != nil {
				return st.err
			}
		}
	}
	if !final {
		return nil
	}
	if trailers {
		w.writeTrailersLocked()
	} else if !sentEnd {
		c.appendData(st.id, nil, true)
	}
	w.localDoneLocked()
	return nil
}

// localDoneLocked: END_STREAM is queued. A client still sending its body
// gets RST_STREAM NO_ERROR (RFC 9113 §8.1).
func (w *responseWriter) localDoneLocked() {
	st := w.st
	c := st.c
	st.localDone = true
	switch st.state {
	case stHalfClosedRemote:
		c.closeStreamLocked(st, nil)
	case stOpen:
		c.appendRST(st.id, 0)
		if b := st.body; b != nil && b.err == nil {
			b.err = errStreamReset
		}
		c.closeStreamLocked(st, nil)
	}
}

func (w *responseWriter) hasTrailers() bool {
	for _, k := range w.trailers {
		if len(w.hdr[k]) > 0 {
			return true
		}
	}
	for k, vv := range w.hdr {
		if len(vv) > 0 && strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

func (w *responseWriter) isTrailer(k string) bool {
	for _, t := range w.trailers {
		if t == k {
			return true
		}
	}
	return false
}

// writeHeaderLocked encodes and queues the response's HEADERS. first is
// the start of the body (for content-type sniffing); final: the handler
// has returned, so a body held whole gets its content-length.
func (w *responseWriter) writeHeaderLocked(first []byte, final, end bool) {
	c := w.st.c
	enc := c.enc
	enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(w.status)})
	w.encodeFields(w.hdr, w.trailers)
	allowed := bodyAllowed(w.status)
	if allowed {
		if _, ok := w.hdr["Content-Type"]; !ok && len(first) > 0 {
			enc.WriteField(hpack.HeaderField{Name: "content-type", Value: http.DetectContentType(first)})
		}
		if _, ok := w.hdr["Content-Length"]; !ok && final {
			n := len(first)
			if w.isHead {
				n = w.headLen
			}
			if n > 0 || !w.isHead {
				enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(n)})
			}
		}
	}
	if _, ok := w.hdr["Date"]; !ok {
		enc.WriteField(hpack.HeaderField{Name: "date", Value: httpDate()})
	}
	c.appendHeaderBlock(w.st.id, end)
	if cv := w.hdr["Connection"]; len(cv) > 0 && strings.EqualFold(cv[0], "close") {
		// As net/http (and HTTP/1.1): "Connection: close" ends the
		// connection gracefully, with GOAWAY once the streams are done.
		c.startShutdownLocked()
	}
}

// encodeFields encodes h's fields, lower-cased, leaving out what HTTP/2
// forbids (connection-specific fields), trailers and invalid fields.
func (w *responseWriter) encodeFields(h http.Header, skip []string) {
	enc := w.st.c.enc
	for k, vv := range h {
		if len(vv) == 0 || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		switch k {
		case "Connection", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Keep-Alive":
			continue
		}
		if len(skip) > 0 && w.isTrailer(k) {
			continue
		}
		lk, ok := lowerCommon[k]
		if !ok {
			if !httpguts.ValidHeaderFieldName(k) {
				continue
			}
			lk = strings.ToLower(k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				continue
			}
			enc.WriteField(hpack.HeaderField{Name: lk, Value: v})
		}
	}
}

func (w *responseWriter) writeTrailersLocked() {
	c := w.st.c
	enc := c.enc
	for _, k := range w.trailers {
		w.encodeTrailer(enc, strings.ToLower(k), w.hdr[k])
	}
	for k, vv := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			w.encodeTrailer(enc, strings.ToLower(name), vv)
		}
	}
	c.appendHeaderBlock(w.st.id, true)
}

func (w *responseWriter) encodeTrailer(enc *hpack.Encoder, name string, vv []string) {
	if !httpguts.ValidTrailerHeader(http.CanonicalHeaderKey(name)) {
		return
	}
	for _, v := range vv {
		if httpguts.ValidHeaderFieldValue(v) {
			enc.WriteField(hpack.HeaderField{Name: name, Value: v})
		}
	}
}

var lowerCommon = func() map[string]string {
	m := make(map[string]string)
	for _, k := range commonCanonical {
		m[k] = strings.ToLower(k)
	}
	for _, k := range []string{"Access-Control-Allow-Origin", "Cache-Control", "Content-Encoding", "Etag",
		"Expires", "Last-Modified", "Location", "Server", "Set-Cookie", "Strict-Transport-Security",
		"Vary", "X-Content-Type-Options", "Grpc-Status", "Grpc-Message", "Alt-Svc",
		"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "Retry-After"} {
		m[k] = strings.ToLower(k)
	}
	return m
}()

var statusTexts [600]string

func init() {
	for i := 100; i < len(statusTexts); i++ {
		statusTexts[i] = strconv.Itoa(i)
	}
}

func statusText(code int) string {
	if code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

// httpDate is the Date field, formatted once a second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &cachedDate{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}

type cachedDate struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[cachedDate]
