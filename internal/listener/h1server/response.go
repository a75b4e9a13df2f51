package h1server

// Response writing: the http.ResponseWriter of the fast server, its head,
// framing and body.

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/http1"
)

// flush writes the buffered response bytes.
func (c *srvConn) flush() error {
	if c.werr != nil {
		c.wb = c.wb[:0]
		return c.werr
	}
	if len(c.wb) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.wb)
	c.wb = c.wb[:0]
	if err != nil {
		c.werr = err
		c.broken = true
	}
	return err
}

// writeBody sends p after the buffered bytes, in one writev when both are
// large enough to matter.
func (c *srvConn) writeBody(p []byte, tail string) error {
	if c.werr != nil {
		return c.werr
	}
	if len(c.wb)+len(p)+len(tail) <= cap(c.wb) {
		c.wb = append(c.wb, p...)
		c.wb = append(c.wb, tail...)
		return nil
	}
	var err error
	if c.tcp != nil {
		c.iov = append(c.iov[:0], c.wb, p)
		if tail != "" {
			c.iov = append(c.iov, crlf)
		}
		_, err = c.iov.WriteTo(c.tcp)
		c.wb = c.wb[:0]
	} else if len(c.wb) > 0 && len(c.wb)+len(p)+len(tail) <= recordMax {
		// Under TLS (no writev): the head and the body in one Write, so
		// one record and one system call rather than two of each.
		rb := recPool.Get().(*[recordMax]byte)
		b := append(append(append(rb[:0], c.wb...), p...), tail...)
		_, err = c.nc.Write(b)
		recPool.Put(rb)
		c.wb = c.wb[:0]
	} else {
		if err = c.flush(); err == nil {
			if _, err = c.nc.Write(p); err == nil && tail != "" {
				c.wb = append(c.wb, tail...)
			}
		}
	}
	if err != nil {
		c.werr = err
		c.broken = true
	}
	return err
}

var crlf = []byte("\r\n")

// recordMax is the largest TLS record's plaintext (16 KiB, RFC 8446
// §5.1): a head and body up to it are written as one (writeBody).
const recordMax = 16 << 10

// recPool holds the scratch buffers in which writeBody joins a head and a
// body for one Write. Arrays, so that a Put does not allocate.
var recPool = sync.Pool{New: func() any { return new([recordMax]byte) }}

// response is the http.ResponseWriter of the fast path, one per connection,
// reset for each request. The head is written in two steps, as net/http
// does it: the status line and the handler's fields when the handler calls
// WriteHeader (later changes to the header map do not reach the head; they
// may be trailers), the fields the server decides (Date, a sniffed
// Content-Type, Content-Length or chunked, Connection: close) when the first
// body bytes go out or the handler returns.
type response struct {
	c           *srvConn
	req         *http.Request
	hdr         http.Header
	status      int
	wroteHeader bool  // the final status is known; its head is in wb
	committed   bool  // the head is complete
	chunked     bool  //
	noBody      bool  // the status has no body (1xx, 204, 304)
	head        bool  // a HEAD request: the body is counted, never sent
	cl          int64 // declared Content-Length, -1 if none
	written     int64
	closeAfter  bool
	hasType     bool // the handler set Content-Type (or suppressed it)
	hasDate     bool
	hasConn     bool // the handler set Connection
	trailers    []string
	prefixed    bool   // the header has http.TrailerPrefix keys
	pend        []byte // body bytes held before the head is committed
}

func (w *response) reset(c *srvConn, r *http.Request) {
	w.c = c
	w.req = r
	if w.hdr == nil {
		w.hdr = make(http.Header, 8)
	} else {
		clear(w.hdr)
	}
	w.status = 0
	w.wroteHeader, w.committed, w.chunked, w.noBody = false, false, false, false
	w.head = r.Method == http.MethodHead
	w.cl, w.written = -1, 0
	w.closeAfter = r.Close
	w.trailers = w.trailers[:0]
	w.prefixed = false
	w.pend = nil
}

func (w *response) Header() http.Header { return w.hdr }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	w.noBody = !bodyAllowed(code)
	h := w.hdr
	if v := h["Content-Length"]; len(v) > 0 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
			w.cl = n
		} else {
			delete(h, "Content-Length")
		}
	}
	if vv, ok := h["Trailer"]; ok && !w.noBody && !w.head {
		for _, v := range vv {
			for _, k := range strings.Split(v, ",") {
				if k = strings.TrimSpace(k); k != "" {
					w.trailers = append(w.trailers, http.CanonicalHeaderKey(k))
				}
			}
		}
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.prefixed = true
			break
		}
	}
	switch {
	case code == http.StatusNotModified:
		// RFC 9110 §15.4.5, as net/http: no body fields.
		delete(h, "Content-Type")
		delete(h, "Content-Length")
		w.cl = -1
	case w.noBody:
		delete(h, "Content-Length")
		w.cl = -1
	case !w.head && (len(w.trailers) > 0 || w.prefixed):
		// Trailers need the chunked coding.
		delete(h, "Content-Length")
		w.cl = -1
	}
	_, w.hasType = h["Content-Type"]
	if code == http.StatusNotModified {
		w.hasType = true // never sniffed
	}
	_, w.hasDate = h["Date"]
	w.hasConn = len(h["Connection"]) > 0
	if w.c.s.closing.Load() || (w.hasConn && http1.HasTokenIn(h["Connection"], "close")) {
		w.closeAfter = true // shutting down: tell the client not to reuse it
	}
	c := w.c
	if c.wb == nil {
		c.wb = getBuf()[:0]
	}
	c.wb = appendStatus(c.wb, code)
	c.wb = w.appendFields(c.wb, true, false)
	if w.noBody || (w.cl >= 0 && w.hasType) {
		w.commitHead(false, nil)
	}
}

// informational writes a 1xx response at once.
func (w *response) informational(code int) {
	c := w.c
	if c.wb == nil {
		c.wb = getBuf()[:0]
	}
	c.wb = appendStatus(c.wb, code)
	c.wb = w.appendFields(c.wb, true, true)
	c.wb = append(c.wb, "\r\n"...)
	c.flush()
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if len(p) == 0 {
		return 0, nil
	}
	var err error
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		p = p[:w.cl-w.written]
		err = http.ErrContentLength
	}
	if !w.committed {
		if w.pend == nil {
			w.pend = getBuf()[:0]
		}
		if len(w.pend)+len(p) <= cap(w.pend) {
			w.pend = append(w.pend, p...)
			w.written += int64(len(p))
			return len(p), err
		}
		sniff := w.pend
		if len(sniff) == 0 {
			sniff = p
		}
		w.commitHead(false, sniff)
	}
	if !w.head {
		if werr := w.writeBody(p); werr != nil {
			return 0, werr
		}
	}
	w.written += int64(len(p))
	return len(p), err
}

func (w *response) writeBody(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	c := w.c
	if !w.chunked {
		return c.writeBody(p, "")
	}
	c.wb = strconv.AppendInt(c.wb, int64(len(p)), 16)
	c.wb = append(c.wb, "\r\n"...)
	return c.writeBody(p, "\r\n")
}

func (w *response) Flush() { w.FlushError() }

// FlushError sends the head and the body so far (http.ResponseController).
func (w *response) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commitHead(false, w.pend)
	}
	return w.c.flush()
}

// commitHead completes the head begun by WriteHeader, then writes any held
// body bytes. Content-Length is declared when known; otherwise the body is
// chunked, unless the handler has returned (final): then the held bytes
// are the whole body. sniff is the start of the body, for Content-Type.
func (w *response) commitHead(final bool, sniff []byte) {
	if w.committed {
		return
	}
	w.committed = true
	c := w.c
	held := w.pend
	w.pend = nil
	setLength := false
	switch {
	case w.noBody:
	case w.head:
		// As net/http: the length of what the handler wrote, when it
		// all fitted before the handler returned; otherwise none.
		setLength = final && w.cl < 0 && w.written > 0
	case w.cl >= 0:
	case final && len(w.trailers) == 0 && !w.prefixed:
		setLength = true
	default:
		w.chunked = true
	}
	if b := c.body; b != nil && !w.closeAfter {
		b.mu.Lock()
		if !b.closed && b.left > maxDiscard {
			w.closeAfter = true // too much unread body to skip
		}
		b.mu.Unlock()
	}
	if !w.hasDate {
		c.wb = appendDate(c.wb)
	}
	// As net/http: no sniffing under a Content-Encoding.
	if !w.hasType && !w.noBody && len(sniff) > 0 && w.hdr.Get("Content-Encoding") == "" {
		c.wb = append(c.wb, "Content-Type: "...)
		c.wb = append(c.wb, http.DetectContentType(sniff)...)
		c.wb = append(c.wb, "\r\n"...)
	}
	if setLength {
		c.wb = append(c.wb, "Content-Length: "...)
		c.wb = strconv.AppendInt(c.wb, w.written, 10)
		c.wb = append(c.wb, "\r\n"...)
	}
	if w.chunked {
		c.wb = append(c.wb, "Transfer-Encoding: chunked\r\n"...)
	}
	if w.closeAfter && !w.hasConn {
		c.wb = append(c.wb, "Connection: close\r\n"...)
	}
	c.wb = append(c.wb, "\r\n"...)
	if held != nil {
		if !w.head {
			w.writeBody(held)
		}
		putBuf(held)
	}
}

// appendFields appends the handler's header fields in sorted order, as
// net/http does: invalid names are skipped, line breaks in values become
// spaces. head: leave out what the server sets itself; informational: a 1xx.
func (w *response) appendFields(b []byte, head, informational bool) []byte {
	c := w.c
	keys := c.keys[:0]
	for k := range w.hdr {
		if head {
			if k == "Transfer-Encoding" || strings.HasPrefix(k, http.TrailerPrefix) {
				continue
			}
		}
		if informational && k == "Content-Length" {
			continue // as net/http: a 1xx has no body fields
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	c.keys = keys
	for _, k := range keys {
		if !http1.ValidToken(k) {
			continue
		}
		for _, v := range w.hdr[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendFieldValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// appendFieldValue appends v trimmed, with CR and LF replaced by spaces
// (net/http's headerNewlineToSpace).
func appendFieldValue(b []byte, v string) []byte {
	v = http1.TrimOWS(v)
	if strings.IndexByte(v, '\r') < 0 && strings.IndexByte(v, '\n') < 0 {
		return append(b, v...)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// finish completes the response after the handler returned.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commitHead(true, w.pend)
	}
	c := w.c
	if w.chunked {
		c.wb = append(c.wb, "0\r\n"...)
		for _, k := range w.trailers {
			for _, v := range w.hdr[k] {
				c.wb = append(c.wb, k...)
				c.wb = append(c.wb, ": "...)
				c.wb = appendFieldValue(c.wb, v)
				c.wb = append(c.wb, "\r\n"...)
			}
		}
		for k, vv := range w.hdr {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && http1.ValidToken(name) {
				for _, v := range vv {
					c.wb = append(c.wb, name...)
					c.wb = append(c.wb, ": "...)
					c.wb = appendFieldValue(c.wb, v)
					c.wb = append(c.wb, "\r\n"...)
				}
			}
		}
		c.wb = append(c.wb, "\r\n"...)
	}
	if w.cl >= 0 && w.written < w.cl && !w.noBody && !w.head {
		w.closeAfter = true // the client would wait for the rest
	}
}

func bodyAllowed(code int) bool {
	switch {
	case code >= 100 && code <= 199:
		return false
	case code == 204, code == 304:
		return false
	}
	return true
}

// statusLines caches "HTTP/1.1 NNN Text\r\n" for the codes net/http knows.
var statusLines [600][]byte

func init() {
	for code := 100; code < 600; code++ {
		if t := http.StatusText(code); t != "" {
			statusLines[code] = []byte("HTTP/1.1 " + strconv.Itoa(code) + " " + t + "\r\n")
		}
	}
}

func appendStatus(b []byte, code int) []byte {
	if code < len(statusLines) && statusLines[code] != nil {
		return append(b, statusLines[code]...)
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, " status code "...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, "\r\n"...)
}

// dateField caches the Date field for the current second.
type dateField struct {
	sec  int64
	line []byte
}

var dateCache atomic.Pointer[dateField]

func appendDate(b []byte) []byte {
	now := time.Now()
	d := dateCache.Load()
	if d == nil || d.sec != now.Unix() {
		line := make([]byte, 0, 40)
		line = append(line, "Date: "...)
		line = now.UTC().AppendFormat(line, http.TimeFormat)
		line = append(line, "\r\n"...)
		d = &dateField{sec: now.Unix(), line: line}
		dateCache.Store(d)
	}
	return append(b, d.line...)
}
