package h2

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const maxWindow = 1<<31 - 1

// readBufSize is a connection's read buffer. Frame headers and small frames
// are read through it; the part of a larger payload it does not hold is
// read straight into the framer's buffer, so a bigger one saves few reads
// and costs every connection its size (docs/performance.md, "HTTP/2 memory
// under load").
const readBufSize = 4 << 10

// Stream states (RFC 9113 §5.1). Idle streams have no struct; a stream the
// server is done with is removed from the table and is closed.
const (
	stOpen             = iota
	stHalfClosedRemote // the client sent END_STREAM
	stClosed
)

var (
	errConnClosed   = errors.New("h2: connection closed")
	errStreamReset  = errors.New("h2: stream reset")
	errShortBody    = errors.New("h2: request body shorter than its content-length")
	errLongBody     = errors.New("h2: request body longer than its content-length")
	errClientGoAway = errors.New("h2: client sent GOAWAY")
)

// conn is one HTTP/2 connection. Its reader (serve) owns the protocol state
// machine; c.mu guards everything shared with handlers: the stream table,
// windows, the write queue and the HPACK encoder.
type conn struct {
	s      *Server
	nc     net.Conn
	br     *bufio.Reader
	fr     *http2.Framer
	ctx    context.Context // base context of every stream
	remote string
	tls    *tls.ConnectionState
	canon  map[string]string // per-connection canonical header cache (reader only)

	mu              sync.Mutex
	wcond           sync.Cond // writing ended (wwait)
	wwait           bool
	streams         map[uint32]*stream
	maxID           uint32 // highest stream id the client opened
	open            int    // open and half-closed streams
	handlers        int    // handlers running
	goAwaySent      bool
	goAwayID        uint32
	shutting        bool // graceful: close once the last stream ends
	dead            bool // the connection ended
	werr            error
	unackedSettings int
	sawSettings     bool
	// hdrFree are response header maps of finished streams, cleared, for
	// the next streams (h1server reuses its response header the same way).
	hdrFree []http.Header

	// send side
	sendWin      int64
	peerInit     int64
	peerMaxFrame int
	enc          *hpack.Encoder
	hbuf         []byte
	wbuf, wspare []byte
	writing      bool

	// receive side
	recvWin     int64 // what the client may still send on the connection
	recvUnacked int64 // consumed and not yet given back
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s:            s,
		nc:           nc,
		br:           bufio.NewReaderSize(nc, readBufSize),
		streams:      make(map[uint32]*stream),
		sendWin:      65535,
		peerInit:     65535,
		peerMaxFrame: 16384,
		recvWin:      65535,
		remote:       nc.RemoteAddr().String(),
		wbuf:         make([]byte, 0, 4096),
	}
	c.wcond.L = &c.mu
	c.enc = hpack.NewEncoder(hpackSink{c})
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetMaxReadFrameSize(s.MaxReadFrameSize)
	c.fr.MaxHeaderListSize = s.MaxHeaderListSize
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.SetReuseFrames()
	c.ctx = context.Background()
	if s.ConnContext != nil {
		c.ctx = s.ConnContext(c.ctx, nc)
	}
	for inner := nc; inner != nil; {
		if tc, ok := inner.(*tls.Conn); ok {
			st := tc.ConnectionState()
			c.tls = &st
			break
		}
		u, ok := inner.(interface{ Unwrap() net.Conn })
		if !ok {
			break
		}
		inner = u.Unwrap()
	}
	return c
}

func (c *conn) serve() {
	defer c.finish()
	pt := c.s.PrefaceTimeout
	if pt <= 0 {
		pt = 10 * time.Second
	}
	c.nc.SetReadDeadline(time.Now().Add(pt))
	var pre [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, pre[:]); err != nil || string(pre[:]) != http2.ClientPreface {
		return
	}
	c.mu.Lock()
	c.appendSettings(
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: c.s.MaxReadFrameSize},
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.s.MaxConcurrentStreams},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.s.MaxHeaderListSize},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(c.s.StreamWindow)},
	)
	c.unackedSettings = 1
	if extra := int64(c.s.ConnWindow) - 65535; extra > 0 {
		c.appendWindowUpdate(0, uint32(extra))
		c.recvWin += extra
	}
	c.flushLocked()
	c.mu.Unlock()

	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			if !c.readError(err) {
				return
			}
			continue
		}
		c.mu.Lock()
		if !c.sawSettings {
			if _, ok := f.(*http2.SettingsFrame); !ok {
				c.connErrorLocked(http2.ErrCodeProtocol)
				c.mu.Unlock()
				return
			}
			c.sawSettings = true
			c.nc.SetReadDeadline(time.Time{})
			if c.s.IdleTimeout > 0 {
				c.nc.SetReadDeadline(time.Now().Add(c.s.IdleTimeout))
			}
		}
		err = c.processLocked(f)
		ok := true
		if err != nil {
			ok = c.frameErrorLocked(err, f)
		}
		c.mu.Unlock()
		if !ok {
			return
		}
	}
}

// readError handles an error from ReadFrame; false ends the connection.
func (c *conn) readError(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		if c.shutting && se.StreamID > c.goAwayID {
			return true
		}
		c.resetLocked(se.StreamID, se.Code, nil)
		return true
	case errors.As(err, &ce):
		c.connErrorLocked(http2.ErrCode(ce))
		return false
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.connErrorLocked(http2.ErrCodeFrameSize)
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && c.open == 0 && c.sawSettings && !c.dead {
		// Idle: say goodbye politely.
		c.shutting = true
		if !c.goAwaySent {
			c.goAwaySent, c.goAwayID = true, c.maxID
			c.appendGoAway(c.maxID, http2.ErrCodeNo)
		}
		c.drainLocked(time.Second)
	}
	return false
}

// frameErrorLocked handles an error from processing f; false ends the
// connection.
func (c *conn) frameErrorLocked(err error, f http2.Frame) bool {
	switch e := err.(type) {
	case http2.StreamError:
		c.resetLocked(e.StreamID, e.Code, nil)
		return true
	case http2.ConnectionError:
		if f != nil {
			if id := f.Header().StreamID; id > c.maxID { // as net/http
				c.maxID = id
			}
		}
		c.connErrorLocked(http2.ErrCode(e))
		return false
	}
	c.connErrorLocked(http2.ErrCodeInternal)
	return false
}

// connErrorLocked sends GOAWAY with code and writes the queue out; the
// reader then closes the connection.
func (c *conn) connErrorLocked(code http2.ErrCode) {
	if !c.goAwaySent || code != http2.ErrCodeNo {
		c.goAwaySent, c.goAwayID = true, c.maxID
		c.appendGoAway(c.maxID, code)
	}
	c.drainLocked(time.Second)
}

// finish ends the connection: every stream still open fails.
func (c *conn) finish() {
	c.mu.Lock()
	c.failLocked(errConnClosed)
	c.mu.Unlock()
	c.nc.Close()
}

// failLocked marks the connection dead and fails its streams.
func (c *conn) failLocked(err error) {
	if c.dead {
		return
	}
	c.dead = true
	if c.werr == nil {
		c.werr = err
	}
	for _, st := range c.streams {
		c.closeStreamLocked(st, err)
	}
	c.nc.SetReadDeadline(time.Now()) // wake the reader
}

// shutdown starts a graceful shutdown (Server.Shutdown).
func (c *conn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startShutdownLocked()
}

func (c *conn) startShutdownLocked() {
	if c.dead {
		return
	}
	c.shutting = true
	if !c.goAwaySent {
		c.goAwaySent, c.goAwayID = true, c.maxID
		c.appendGoAway(c.maxID, http2.ErrCodeNo)
		c.flushLocked()
	}
	if c.open == 0 {
		c.closeQuietlyLocked()
	}
}

// closeQuietlyLocked writes what is queued and closes the connection
// (graceful shutdown, idle).
func (c *conn) closeQuietlyLocked() {
	c.drainLocked(time.Second)
	c.failLocked(errConnClosed)
}

// resetLocked sends RST_STREAM for id and closes its stream, if open.
func (c *conn) resetLocked(id uint32, code http2.ErrCode, cause error) {
	if c.dead {
		return
	}
	c.appendRST(id, code)
	if st := c.streams[id]; st != nil {
		if cause == nil {
			cause = errStreamReset
		}
		c.closeStreamLocked(st, cause)
	}
	c.flushLocked()
}

// closeStreamLocked moves st to closed. err is nil for a stream that ended
// normally; else the handler's writes and body reads fail with it and its
// context is cancelled.
func (c *conn) closeStreamLocked(st *stream, err error) {
	if st.state == stClosed {
		return
	}
	st.state = stClosed
	delete(c.streams, st.id)
	c.open--
	if err != nil {
		if st.err == nil {
			st.err = err
		}
		st.dead.Store(true)
		if b := st.body; b != nil && b.err == nil {
			b.err = err
		}
		st.ctx.cancel()
	}
	st.cond.Broadcast()
	if c.open == 0 && !c.dead {
		if c.shutting {
			c.closeQuietlyLocked()
		} else if c.s.IdleTimeout > 0 {
			c.nc.SetReadDeadline(time.Now().Add(c.s.IdleTimeout))
		}
	}
}

// processLocked handles one frame from the client.
func (c *conn) processLocked(f http2.Frame) error {
	// After a GOAWAY, frames of streams beyond it are discarded (the
	// connection window still counts; RFC 9113 §6.8).
	if c.goAwaySent && f.Header().StreamID > c.goAwayID {
		if d, ok := f.(*http2.DataFrame); ok {
			if int64(d.Length) > c.recvWin {
				return http2.ConnectionError(http2.ErrCodeFlowControl)
			}
			c.recvWin -= int64(d.Length)
			c.creditLocked(nil, int64(d.Length))
			c.flushLocked()
		}
		return nil
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		c.appendPingAck(f.Data)
		c.flushLocked()
		return nil
	case *http2.RSTStreamFrame:
		st := c.streams[f.StreamID]
		if st == nil {
			if f.StreamID > c.maxID {
				return http2.ConnectionError(http2.ErrCodeProtocol) // idle
			}
			return nil
		}
		c.closeStreamLocked(st, errStreamReset)
		return nil
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
		return nil
	case *http2.GoAwayFrame:
		c.startShutdownLocked()
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil // unknown and ignorable frames
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		c.unackedSettings--
		if c.unackedSettings < 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil
	}
	if f.NumSettings() > 100 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	// Settings apply in order, duplicates included (RFC 9113 §6.5.3).
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(s.Val)
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.peerInit
			c.peerInit = int64(s.Val)
			for _, st := range c.streams {
				st.sendWin += delta
				if st.sendWin > maxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				if delta > 0 {
					st.cond.Broadcast()
				}
			}
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = int(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.appendSettingsAck()
	c.flushLocked()
	return nil
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		if c.sendWin+inc > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		wasBlocked := c.sendWin <= 0
		c.sendWin += inc
		if wasBlocked && c.sendWin > 0 {
			for _, st := range c.streams {
				if st.waiting {
					st.cond.Broadcast()
				}
			}
		}
		return nil
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // idle
		}
		return nil // closed: allowed
	}
	if st.sendWin+inc > maxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	st.sendWin += inc
	if st.waiting {
		st.cond.Broadcast()
	}
	return nil
}

func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	st := c.streams[id]
	if id == 0 || st == nil && id > c.maxID {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	n := int64(f.Length) // padding included
	if n > c.recvWin {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWin -= n
	if st == nil || st.state != stOpen || st.gotTrailer {
		c.creditLocked(nil, n)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	data := f.Data()
	b := st.body
	if st.declLen >= 0 && st.gotLen+int64(len(data)) > st.declLen {
		c.creditLocked(nil, n)
		b.err = errLongBody
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if n > st.recvWin {
		c.creditLocked(nil, n)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	st.recvWin -= n
	if len(data) > 0 {
		st.gotLen += int64(len(data))
		if b.closed {
			c.creditLocked(nil, int64(len(data)))
		} else {
			if b.r > 0 && len(b.buf)+len(data) > cap(b.buf) {
				b.buf = b.buf[:copy(b.buf, b.buf[b.r:])]
				b.r = 0
			}
			b.buf = append(b.buf, data...)
			st.cond.Broadcast()
		}
	}
	if pad := n - int64(len(data)); pad > 0 {
		c.creditLocked(st, pad)
	}
	if f.StreamEnded() {
		c.endRemoteLocked(st)
	}
	c.flushLocked()
	return nil
}

// endRemoteLocked handles END_STREAM from the client.
func (c *conn) endRemoteLocked(st *stream) {
	if b := st.body; b != nil && b.err == nil {
		if st.declLen >= 0 && st.gotLen != st.declLen {
			b.err = errShortBody
		} else {
			b.err = io.EOF
		}
	}
	st.state = stHalfClosedRemote
	st.cond.Broadcast()
	if st.localDone {
		c.closeStreamLocked(st, nil)
	}
}

// creditLocked gives n consumed bytes back to the client, in batches:
// WINDOW_UPDATE once half a window is consumed. st nil: connection only.
// The caller flushes.
func (c *conn) creditLocked(st *stream, n int64) {
	if c.dead || n <= 0 {
		return
	}
	c.recvUnacked += n
	if c.recvUnacked >= int64(c.s.ConnWindow)/2 {
		c.appendWindowUpdate(0, uint32(c.recvUnacked))
		c.recvWin += c.recvUnacked
		c.recvUnacked = 0
	}
	if st != nil && st.state == stOpen {
		st.recvUnacked += n
		if st.recvUnacked >= int64(c.s.StreamWindow)/2 {
			c.appendWindowUpdate(st.id, uint32(st.recvUnacked))
			st.recvWin += st.recvUnacked
			st.recvUnacked = 0
		}
	}
}

func (c *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 != 1 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if st := c.streams[id]; st != nil {
		if st.state == stHalfClosedRemote {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		return c.processTrailers(st, f)
	}
	if id <= c.maxID {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.maxID = id
	if c.shutting {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	if c.open+1 > int(c.s.MaxConcurrentStreams) {
		if c.unackedSettings == 0 {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	if c.handlers >= 4*int(c.s.MaxConcurrentStreams) {
		// Handlers of reset streams still running: a rapid-reset client.
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	st := newStream(c, id)
	handler, err := c.newRequest(st, f)
	if err != nil {
		st.release()
		return err
	}
	c.streams[id] = st
	c.open++
	if c.open == 1 && c.s.IdleTimeout > 0 {
		c.nc.SetReadDeadline(time.Time{})
	}
	c.handlers++
	st.handler = handler
	c.s.dispatch(st)
	return nil
}

func (c *conn) processTrailers(st *stream, f *http2.MetaHeadersFrame) error {
	if st.gotTrailer {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st.gotTrailer = true
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 || f.Truncated {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	for _, hf := range f.RegularFields() {
		key := c.canonical(hf.Name)
		if !httpguts.ValidTrailerHeader(key) {
			return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
		}
		if st.trailer != nil {
			st.trailer[key] = append(st.trailer[key], hf.Value)
		}
	}
	c.endRemoteLocked(st)
	c.flushLocked()
	return nil
}

// runHandler serves one stream on its own goroutine.
func (c *conn) runHandler(st *stream, h http.Handler) {
	defer c.handlerDone(st)
	h.ServeHTTP(&st.w, st.req)
}

func (c *conn) handlerDone(st *stream) {
	p := recover()
	if p != nil && p != http.ErrAbortHandler {
		c.s.Log.Error("h2: handler panicked", "remote", c.remote, "stream", st.id, "panic", p)
	}
	c.mu.Lock()
	if p != nil {
		if st.state != stClosed {
			c.resetLocked(st.id, http2.ErrCodeInternal, errStreamReset)
		}
	} else {
		st.w.finishLocked()
	}
	if st.state != stClosed && !c.dead {
		// The response could not be finished (its window never opened
		// before the stream died): nothing more to send.
		c.resetLocked(st.id, http2.ErrCodeInternal, errStreamReset)
	}
	c.handlers--
	if b := st.body; b != nil {
		b.closed = true
		b.detached = true
	}
	if c.handlers > 0 && !c.writing && len(c.wbuf) > 0 {
		// Other streams' handlers are running: let those that are ready
		// queue their frames first, so that one write carries them all.
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
	}
	c.flushLocked()
	if h := st.w.hdr; h != nil && len(c.hdrFree) < 16 && len(h) < 64 {
		clear(h)
		c.hdrFree = append(c.hdrFree, h)
	}
	st.w.hdr = nil
	c.mu.Unlock()
	st.ctx.cancel()
	st.w.release()
}
