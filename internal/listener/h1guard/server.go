package h1guard

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/rampart-gw/rampart/internal/http1"
)

// Server is the guard's own HTTP/1.1 server: the fast path for plain
// (cleartext) listeners. It reads each request head once, validates it with
// the same parser Conn uses (parseHead), builds the *http.Request itself and
// writes the response without net/http's per-connection machinery: no
// background read goroutine per request, no bufio pair per connection, and
// an idle keep-alive connection holds no goroutine and no buffers — it is
// parked in an epoll set (Linux) until bytes arrive.
//
// It serves only the common case. Any connection whose next request is not
// a plain, valid HTTP/1.1 request in origin form with no body or a
// Content-Length body — a refused head, an HTTP/2 preface, an Upgrade, a
// chunked body, Expect, HTTP/1.0, absolute form, OPTIONS * — is handed over
// (with the bytes already read) to HandOver: a Conn served by net/http
// behind Handler, exactly as when the fast path is off. So every refusal
// and every rare feature keeps one implementation, and the conformance
// suites hold for both paths.
type Server struct {
	Handler http.Handler
	Config  *Config
	// ReadHeaderTimeout bounds reading a request head, from its first byte
	// (for the first request: from accept).
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection.
	IdleTimeout time.Duration
	// HandOver serves a connection the fast path does not (see above).
	HandOver func(*Conn)
	Log      *slog.Logger

	lim      limits
	poll     *poller
	mu       sync.Mutex
	conns    map[*srvConn]struct{}
	ln       net.Listener
	closing  atomic.Bool
	initOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup // accept loop, poller and sweeper
}

// Connection states.
const (
	csActive = iota // reading a head or serving a request
	csIdle          // waiting (goroutine held) for the next request
	csParked        // waiting in the poller, no goroutine
	csClosed
)

// A connection keeps its goroutine and read buffer for a while after a
// response (hot) before it is parked. How long adapts to the client: a
// client that sent its last request g after the previous response is
// waited for 16·g, within [hotMin, hotMax]. A busy keep-alive client so
// never pays for parking and waking, and one that sent a single request
// (or is idle) gives its goroutine and buffers back within a millisecond.
const (
	hotMin   = time.Millisecond
	hotMax   = 250 * time.Millisecond
	hotFirst = 5 * time.Millisecond // for the first request and after a wake-up
)

// watchDelay is how long a request may run before the server starts
// watching its connection for the client going away (see watch).
const watchDelay = 50 * time.Millisecond

// maxDiscard is the unread request body the server still reads and drops
// after a response to keep the connection (net/http's figure).
const maxDiscard = 256 << 10

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.lim = s.Config.limits()
		s.conns = make(map[*srvConn]struct{})
		s.done = make(chan struct{})
		if s.Log == nil {
			s.Log = slog.Default()
		}
		if p, err := newPoller(s); err == nil {
			s.poll = p
			s.wg.Add(2)
			go func() { defer s.wg.Done(); defer s.recoverPoller(); p.run() }()
			go func() { defer s.wg.Done(); defer s.recoverPoller(); p.sweep(s.done) }()
		} else if !errors.Is(err, errNoPoller) {
			s.Log.Warn("h1 server: idle connections will hold a goroutine", "error", err)
		}
	})
}

// recoverPoller logs a panic in the poller's goroutines and closes the
// parked connections, which nothing would wake any more (clients reconnect).
func (s *Server) recoverPoller() {
	if p := recover(); p != nil {
		s.Log.Error("h1 server: poller panicked; parked connections closed", "panic", p)
		s.poll.closeAll()
	}
}

// Serve accepts connections from ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// EMFILE and the like: back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.Log.Warn("h1 server: accept", "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.done:
				return nil
			}
			continue
		}
		backoff = 0
		c := &srvConn{s: s, nc: nc, fd: -1, accepted: time.Now()}
		if !s.track(c) {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

func (s *Server) track(c *srvConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *srvConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes idle connections, lets in-flight
// requests finish (their responses carry Connection: close) and waits until
// every connection is closed or ctx ends; then it closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.stop()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		s.closeIdle()
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			s.wg.Wait()
			return nil
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.init()
	s.stop()
	s.mu.Lock()
	conns := make([]*srvConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.state.Store(csClosed)
		c.nc.Close()
		s.untrack(c)
	}
	if s.poll != nil {
		s.poll.closeAll()
	}
	s.wg.Wait()
	return nil
}

func (s *Server) stop() {
	s.mu.Lock()
	first := !s.closing.Swap(true)
	ln := s.ln
	s.mu.Unlock()
	if !first {
		return
	}
	close(s.done)
	if ln != nil {
		ln.Close()
	}
	if s.poll != nil {
		s.poll.closeAll()
	}
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	var idle []*srvConn
	for c := range s.conns {
		if c.state.CompareAndSwap(csIdle, csClosed) {
			idle = append(idle, c)
		}
	}
	s.mu.Unlock()
	for _, c := range idle {
		c.nc.Close() // its goroutine sees the error and untracks it
	}
}

// srvConn is one client connection of the fast path.
type srvConn struct {
	s        *Server
	nc       net.Conn
	tcp      *net.TCPConn // for writev; nil when nc is not plain TCP
	tlsState *tls.ConnectionState
	remote   string
	accepted time.Time
	state    atomic.Int32

	// Poller bookkeeping (guarded by poller.mu while parked).
	fd         int
	registered bool
	gen        uint32
	expires    time.Time
	prev, next *srvConn
	hot        time.Duration // see hotMin
	idleFrom   time.Time     // when the current hot wait began

	buf    []byte // read buffer, nil while parked
	r, w   int
	rdl    time.Time // read deadline in force
	headDL bool      // the head-read deadline is set
	wb     []byte    // response head and small bodies, nil while parked
	iov    net.Buffers
	nreq   int   // heads taken from this connection
	served int64 // requests handed to the handler
	broken bool  // a read or write failed: close after the response
	unread bool  // the request body was left unread: linger on close
	werr   error // a write failed: nothing more is sent
	resp   response
	keys   []string

	// watch: see (*srvConn).watch.
	wmu       sync.Mutex
	timer     *time.Timer
	inHandler bool
	bgRunning bool
	bgDone    chan struct{}
	bgByte    [1]byte
	bgN       int
	bgErr     error
	ctx       *reqContext // of the request being served
	body      *body
}

// bufPool holds the 4 KiB buffers of active connections: the read buffer,
// the write buffer and the held body (see response.pend). Arrays, not
// slices, so that a Put does not allocate.
var bufPool = sync.Pool{New: func() any { return new([4096]byte) }}

func getBuf() []byte { return bufPool.Get().(*[4096]byte)[:] }

func putBuf(b []byte) {
	if cap(b) == 4096 {
		bufPool.Put((*[4096]byte)(b[:4096]))
	}
}

func (c *srvConn) serve() {
	defer func() {
		if p := recover(); p != nil {
			c.resp.pend = nil
			if p != http.ErrAbortHandler {
				buf := make([]byte, 16<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.Log.Error("h1 server: panic serving request", "remote", c.remote, "panic", p, "stack", string(buf))
			}
			c.close()
		}
	}()
	if c.remote == "" && !c.setup() {
		return
	}
	for {
		n, ok := c.readHead()
		if !ok {
			return
		}
		if !c.serveOne(n) {
			return
		}
	}
}

func (c *srvConn) setup() bool {
	c.remote = c.nc.RemoteAddr().String()
	var raw *net.TCPConn
	encrypted := false
	inner := c.nc
	for inner != nil {
		if tc, ok := inner.(*net.TCPConn); ok {
			raw = tc
			break
		}
		if tc, ok := inner.(*tls.Conn); ok {
			encrypted = true
			inner = tc.NetConn()
			continue
		}
		u, ok := inner.(interface{ Unwrap() net.Conn })
		if !ok {
			break
		}
		inner = u.Unwrap()
	}
	if !encrypted {
		c.tcp = raw // response bodies may go out with writev
	}
	if raw != nil && c.s.poll != nil {
		// Parking watches the socket. Under TLS that is sound too: a
		// connection parks only after a read timed out, which tls.Conn
		// returns only with no complete record buffered.
		if rc, err := raw.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { c.fd = int(fd) })
		}
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		return c.handshake(tc)
	}
	return true
}

// handshake runs the TLS handshake within the head timeout. A connection
// that negotiated h2 through ALPN is handed to net/http, which serves it as
// HTTP/2 behind the guard.
func (c *srvConn) handshake(tc *tls.Conn) bool {
	dl := c.accepted.Add(c.s.headerTimeout())
	tc.SetDeadline(dl)
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	err := tc.HandshakeContext(ctx)
	cancel()
	tc.SetWriteDeadline(time.Time{})
	c.rdl = dl
	if err != nil {
		c.s.Log.Debug("h1 server: TLS handshake", "remote", c.remote, "error", err)
		c.close()
		return false
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	if st.NegotiatedProtocol == "h2" {
		c.handOver()
		return false
	}
	return true
}

// close closes the connection for good. A request body still open (the
// handler panicked, or an upstream transport's goroutine still reads it) is
// closed first, after the socket, so that no reader blocks on the socket
// or touches the read buffer once it is back in the pool.
func (c *srvConn) close() {
	c.state.Store(csClosed)
	c.nc.Close()
	if b := c.body; b != nil {
		c.body = nil
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
	}
	c.releaseBuffers()
	c.s.untrack(c)
}

func (c *srvConn) releaseBuffers() {
	if len(c.buf) == 4096 {
		putBuf(c.buf)
	}
	c.buf, c.r, c.w = nil, 0, 0
	c.releaseWrite()
}

func (c *srvConn) releaseWrite() {
	putBuf(c.wb)
	c.wb = nil
	if p := c.resp.pend; p != nil {
		c.resp.pend = nil
		putBuf(p)
	}
}

func (c *srvConn) setReadDeadline(t time.Time) {
	if t.Equal(c.rdl) {
		return
	}
	c.rdl = t
	c.nc.SetReadDeadline(t)
}

// readHead returns the length of the next complete head at buf[r:]. false:
// the connection was closed, parked or handed over.
func (c *srvConn) readHead() (int, bool) {
	for {
		for c.w-c.r >= 2 && c.buf[c.r] == '\r' && c.buf[c.r+1] == '\n' {
			c.r += 2 // RFC 9112 §2.2: empty lines before a request line
		}
		var b []byte
		if c.buf != nil {
			b = c.buf[c.r:c.w]
		}
		var from int
		if n := http1.HeadEnd(b, &from); n >= 0 {
			c.headDL = false
			return n, true
		}
		if len(b) > 0 && (!firstLineFits(b, c.s.lim.maxURI) || len(b) >= c.s.Config.maxHead()) {
			c.handOver() // the guard refuses it
			return 0, false
		}
		if !c.fill(len(b) == 0) {
			return 0, false
		}
	}
}

// fill reads more of a head. idle: nothing of it has arrived yet.
func (c *srvConn) fill(idle bool) bool {
	if c.buf == nil {
		c.buf = getBuf()
		c.r, c.w = 0, 0
	}
	if c.r == c.w {
		c.r, c.w = 0, 0
	} else if c.w == len(c.buf) {
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		} else {
			limit := c.s.Config.maxHead() + c.s.lim.maxURI + 64
			if len(c.buf) >= limit {
				c.handOver()
				return false
			}
			nb := make([]byte, min(2*len(c.buf), limit))
			c.w = copy(nb, c.buf[c.r:c.w])
			c.r = 0
			if len(c.buf) == 4096 {
				putBuf(c.buf)
			}
			c.buf = nb
		}
	}
	var parkAt time.Time // when a timeout means "park", not "close"
	if idle {
		if c.s.closing.Load() {
			c.close()
			return false
		}
		c.state.Store(csIdle)
		if c.s.closing.Load() && c.state.CompareAndSwap(csIdle, csClosed) {
			c.close()
			return false
		}
		now := time.Now()
		var end time.Time
		if c.nreq == 0 {
			end = c.accepted.Add(c.s.headerTimeout())
		} else {
			end = now.Add(c.s.idleTimeout())
		}
		dl := end
		if c.s.poll != nil && c.fd >= 0 {
			if c.hot == 0 {
				c.hot = hotFirst
			}
			if hot := now.Add(c.hot); hot.Before(end) {
				dl, parkAt = hot, end
			}
		}
		c.idleFrom = now
		c.setReadDeadline(dl)
	} else if !c.headDL {
		c.headDL = true
		c.setReadDeadline(time.Now().Add(c.s.headerTimeout()))
	}
	n, err := c.nc.Read(c.buf[c.w:])
	c.w += n
	if idle && !c.state.CompareAndSwap(csIdle, csActive) {
		c.close() // shut down while waiting
		return false
	}
	if n > 0 {
		if idle && !parkAt.IsZero() {
			c.hot = min(max(16*time.Since(c.idleFrom), hotMin), hotMax)
		}
		return true
	}
	if idle && !parkAt.IsZero() && isTimeout(err) && c.w == c.r {
		c.park(parkAt)
		return false
	}
	c.close()
	return false
}

func (s *Server) headerTimeout() time.Duration {
	if s.ReadHeaderTimeout > 0 {
		return s.ReadHeaderTimeout
	}
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return 10 * time.Second
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return s.headerTimeout()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// park hands the connection to the poller and ends its goroutine.
func (c *srvConn) park(expires time.Time) {
	c.releaseBuffers()
	c.hot = hotFirst
	c.resp.hdr = nil
	c.resp.trailers = nil
	c.keys = nil
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.state.Store(csParked)
	if !c.s.poll.park(c, expires) {
		c.close()
	}
}

// resume runs when a parked connection has bytes (or was closed by the
// peer): a new goroutine serves it.
func (c *srvConn) resume() {
	if !c.state.CompareAndSwap(csParked, csActive) {
		return
	}
	c.serve()
}

// handOver passes the connection, with the bytes read so far, to net/http
// behind the guard.
func (c *srvConn) handOver() {
	c.state.Store(csClosed)
	c.s.untrack(c)
	c.setReadDeadline(time.Time{})
	g := New(c.nc, c.s.Config)
	if c.w > c.r {
		g.buf = make([]byte, max(4096, c.w-c.r))
		g.w = copy(g.buf, c.buf[c.r:c.w])
	}
	g.nreq = c.nreq
	g.served.Store(c.served)
	c.releaseBuffers()
	if c.s.HandOver == nil || c.s.closing.Load() {
		g.Close()
		return
	}
	c.s.HandOver(g)
}

// serveOne parses the head of length n at buf[r:] and serves the request.
// false: the connection is done (closed or handed over).
func (c *srvConn) serveOne(n int) bool {
	b := c.buf[c.r : c.r+n]
	if n > c.s.Config.maxHead()+2 {
		c.handOver()
		return false
	}
	h, why := parseHead(b, c.nreq == 0, &c.s.lim)
	if why != rNone || h.h2 || h.upgrade || h.chunked || h.http10 || h.absolute {
		c.handOver()
		return false
	}
	rs, ok := c.newRequest(b, h.length)
	if !ok {
		c.handOver()
		return false
	}
	c.nreq++
	c.r += n
	c.served++
	r := &rs.req
	w := &c.resp
	w.reset(c, r)
	if m := c.s.Config.MaxRequests; m > 0 && c.served >= int64(m) {
		w.hdr.Set("Connection", "close")
	}
	c.body = nil
	if r.ContentLength > 0 {
		rs.body.c, rs.body.left = c, r.ContentLength
		r.Body = &rs.body
		c.body = &rs.body
		c.setReadDeadline(time.Time{})
	}
	// WithContext is inlined and its copy does not escape: the context is
	// set in place without a second request allocation.
	rs.req = *r.WithContext(&rs.ctx)
	w.req = r
	c.handle(w, r, &rs.ctx)
	w.finish()
	// The response goes out before the rest of the request body is
	// discarded (as net/http): a reader of the body still blocked on the
	// socket must not hold the response back.
	flushErr := c.flush()
	c.finishBody()
	keep := flushErr == nil && !w.closeAfter && !c.broken && !c.s.closing.Load()
	c.releaseWrite()
	// Nothing of the request may stay reachable from the connection: the
	// response header holds values the handler made (and through them its
	// request state), and an idle connection should cost only itself.
	w.req = nil
	clear(w.hdr)
	clear(w.trailers)
	clear(c.keys)
	if !keep {
		if c.unread {
			c.linger()
		}
		c.close()
		return false
	}
	return true
}

// linger half-closes a connection whose request body was left unread and
// discards what the client still sends, briefly, so that the response is
// not lost to the TCP reset a close with unread input causes (net/http's
// closeWriteAndWait, NGINX's lingering close).
func (c *srvConn) linger() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	if c.buf == nil {
		c.buf = getBuf()
	}
	for total := 0; total < lingerBytes; {
		n, err := c.nc.Read(c.buf)
		total += n
		if err != nil {
			return
		}
	}
}

// handle runs the handler; a panic (http.ErrAbortHandler included)
// propagates to serve, which closes the connection.
func (c *srvConn) handle(w *response, r *http.Request, ctx *reqContext) {
	defer func() {
		c.stopWatch()
		ctx.cancel()
	}()
	c.startWatch(ctx)
	c.s.Handler.ServeHTTP(w, r)
}

// finishBody reads what the handler left of a Content-Length body, up to
// maxDiscard; more than that closes the connection.
func (c *srvConn) finishBody() {
	b := c.body
	c.body = nil
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.left == 0 || b.err != nil {
		if b.err != nil && b.err != io.EOF {
			c.broken = true
		}
		return
	}
	if b.left > maxDiscard || c.resp.closeAfter {
		c.broken = true
		c.unread = true
		return
	}
	for b.left > 0 {
		if c.r < c.w {
			k := int(min(int64(c.w-c.r), b.left))
			c.r += k
			b.left -= int64(k)
			continue
		}
		if c.buf == nil {
			c.buf = getBuf()
		}
		c.r, c.w = 0, 0
		m, err := c.nc.Read(c.buf[:min(int64(len(c.buf)), b.left)])
		b.left -= int64(m)
		if err != nil && b.left > 0 {
			c.broken = true
			return
		}
	}
}

// startWatch arms the watch for the request being served: a request still
// running after watchDelay gets a background read on its connection, which
// cancels the request when the client goes away (as net/http does for every
// request; here only slow ones pay for it).
func (c *srvConn) startWatch(ctx *reqContext) {
	c.wmu.Lock()
	c.inHandler = true
	c.ctx = ctx
	c.wmu.Unlock()
	if c.r != c.w {
		return // a pipelined request is waiting: the client is there
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(watchDelay, c.watch)
	} else {
		c.timer.Reset(watchDelay)
	}
}

func (c *srvConn) watch() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.inHandler || c.bgRunning {
		return
	}
	if b := c.body; b != nil && !b.done.Load() {
		c.timer.Reset(watchDelay) // the handler still reads the body
		return
	}
	c.bgRunning = true
	c.bgDone = make(chan struct{})
	c.nc.SetReadDeadline(time.Time{})
	c.rdl = time.Time{}
	ctx := c.ctx
	go func() {
		defer close(c.bgDone)
		n, err := c.nc.Read(c.bgByte[:])
		c.bgN, c.bgErr = n, err
		if n == 0 && err != nil && !isTimeout(err) {
			ctx.cancel() // the client is gone
		}
	}()
}

var aLongTimeAgo = time.Unix(1, 0)

func (c *srvConn) stopWatch() {
	if c.timer != nil {
		c.timer.Stop()
	}
	c.wmu.Lock()
	c.inHandler = false
	c.ctx = nil
	running := c.bgRunning
	if running {
		c.nc.SetReadDeadline(aLongTimeAgo)
		c.rdl = aLongTimeAgo
	}
	c.wmu.Unlock()
	if !running {
		return
	}
	<-c.bgDone
	c.bgRunning = false
	if c.bgN == 1 {
		if c.buf == nil {
			c.buf = getBuf()
			c.r, c.w = 0, 0
		}
		if c.w == len(c.buf) {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		}
		c.buf[c.w] = c.bgByte[0]
		c.w++
	} else if !isTimeout(c.bgErr) {
		c.broken = true
	}
}

// newRequest builds the request for the validated head b.
func (c *srvConn) newRequest(b []byte, length int64) (*reqState, bool) {
	// Count the fields to size the header map and its values.
	nf := -1
	for _, x := range b {
		if x == '\n' {
			nf++
		}
	}
	nf-- // the empty line
	rs := new(reqState)
	var s string
	if len(b) <= len(rs.head) {
		n := copy(rs.head[:], b)
		s = unsafe.String(&rs.head[0], n)
	} else {
		s = string(b)
	}
	r := &rs.req
	sp1 := strings.IndexByte(s, ' ')
	r.Method = s[:sp1]
	rest := s[sp1+1:]
	sp2 := strings.IndexByte(rest, ' ')
	target := rest[:sp2]
	if target[0] != '/' {
		return nil, false // OPTIONS *
	}
	if !parseTarget(&rs.url, target) {
		return nil, false
	}
	r.URL = &rs.url
	r.RequestURI = target
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.RemoteAddr = c.remote
	r.TLS = c.tlsState
	r.ContentLength = length
	r.Body = http.NoBody
	var vals []string
	if nf <= len(rs.vals) {
		vals = rs.vals[:0:nf]
	} else {
		vals = make([]string, 0, nf)
	}
	hdr := make(http.Header, nf)
	pos := strings.IndexByte(s, '\n') + 1
	var kb [64]byte
	for {
		j := strings.IndexByte(s[pos:], '\n') + pos
		line := s[pos : j-1]
		pos = j + 1
		if len(line) == 0 {
			break
		}
		colon := strings.IndexByte(line, ':')
		name, value := line[:colon], http1.TrimOWS(line[colon+1:])
		if strings.IndexByte(name, '_') >= 0 {
			continue // dropped, as Handler does (NGINX's underscores_in_headers off)
		}
		key := canonicalKey(name, &kb)
		switch key {
		case "Host":
			r.Host = value
			continue
		case "Expect":
			return nil, false // 100-continue: net/http answers it
		case "Connection":
			if http1.HasToken(value, "close") {
				r.Close = true
			}
		}
		if vv, ok := hdr[key]; ok {
			hdr[key] = append(vv, value)
			continue
		}
		i := len(vals)
		vals = append(vals, value)
		hdr[key] = vals[i : i+1 : i+1]
	}
	r.Header = hdr
	return rs, true
}

// reqState is one request's allocation: the request, its URL, its body
// reader and the backing array of its header values.
type reqState struct {
	req  http.Request
	url  url.URL
	body body
	ctx  reqContext
	vals [16]string
	// head holds the request head when it fits, so that the strings of
	// the request (method, target, names, values) need no allocation of
	// their own; reqState is never reused, so they stay valid.
	head [headRoom]byte
}

// headRoom is the head size kept in reqState (most API clients' heads are
// well below it; browsers' often are not, and get a string of their own).
const headRoom = 256

// pathSafe are the path bytes url.URL keeps as they are (escape(path) ==
// path), so Path can be the raw path with no RawPath.
var pathSafe [256]bool

func init() {
	for _, c := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~$&+,/:;=@" {
		pathSafe[c] = true
	}
}

// parseTarget fills u from an origin-form target, as url.ParseRequestURI
// would.
func parseTarget(u *url.URL, target string) bool {
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !pathSafe[path[i]] {
			v, err := url.ParseRequestURI(target)
			if err != nil {
				return false
			}
			*u = *v
			return true
		}
	}
	u.Path = path
	u.RawQuery = query
	u.ForceQuery = hasQuery && query == ""
	return true
}

// commonKeys interns the canonical form of frequent field names.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Length", "Content-Type", "Cookie", "Date",
		"Expect", "Forwarded", "Host", "If-Match", "If-Modified-Since", "If-None-Match",
		"Keep-Alive", "Origin", "Pragma", "Range", "Referer", "Te", "Traceparent", "Tracestate",
		"Upgrade", "User-Agent", "Via", "X-Api-Key", "X-Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey is textproto.CanonicalMIMEHeaderKey for a valid token,
// allocating only for uncommon names that are not already canonical.
func canonicalKey(name string, kb *[64]byte) string {
	upper := true
	canonical := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
			break
		}
		upper = c == '-'
	}
	if canonical {
		return name
	}
	if len(name) > len(kb) {
		return http.CanonicalHeaderKey(name)
	}
	k := kb[:len(name)]
	upper = true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		k[i] = c
		upper = c == '-'
	}
	if s, ok := commonKeys[string(k)]; ok {
		return s
	}
	return string(k)
}

// body reads a Content-Length request body from the connection.
type body struct {
	c      *srvConn
	mu     sync.Mutex
	left   int64
	err    error
	closed bool
	done   atomic.Bool // read to the end
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.left == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	c := b.c
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	var n int
	var err error
	if c.r < c.w {
		n = copy(p, c.buf[c.r:c.w])
		c.r += n
	} else {
		n, err = c.nc.Read(p)
	}
	b.left -= int64(n)
	if b.left == 0 {
		b.err = io.EOF
		b.done.Store(true)
		return n, io.EOF
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
	}
	return n, err
}

func (b *body) Close() error {
	b.mu.Lock()
	if b.err == nil && b.left == 0 {
		b.err = io.EOF
	}
	b.mu.Unlock()
	return nil
}

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

// firstLineFits reports whether the request line can still be within the
// URI limit (a method, two spaces and the version besides the target).
func firstLineFits(b []byte, maxURI int) bool {
	const slack = 64
	lim := maxURI + slack
	if len(b) <= lim {
		return true
	}
	for _, x := range b[:lim] {
		if x == '\n' {
			return true
		}
	}
	return false
}

// reqContext is a request's context: cancelled when the handler returns or
// the client goes away, like net/http's, but part of the request's one
// allocation. Its done channel is made only when someone asks for it, and
// it implements AfterFunc so that contexts derived from it (and
// context.AfterFunc on it) bind without a goroutine.
type reqContext struct {
	mu       sync.Mutex
	canceled atomic.Bool
	done     chan struct{}
	funcs    []*afterFunc
}

type afterFunc struct{ f func() }

func (c *reqContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *reqContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.canceled.Load() {
			close(c.done)
		}
	}
	return c.done
}

func (c *reqContext) Err() error {
	if c.canceled.Load() {
		return context.Canceled
	}
	return nil
}

func (c *reqContext) Value(any) any { return nil }

func (c *reqContext) String() string { return "h1guard.reqContext" }

// AfterFunc runs f in its own goroutine once c is cancelled (at once if it
// is); stop unregisters f and reports whether it did so before f started.
func (c *reqContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.canceled.Load() {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.funcs = append(c.funcs, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.funcs {
			if x == a {
				c.funcs = slices.Delete(c.funcs, i, i+1)
				return true
			}
		}
		return false
	}
}

func (c *reqContext) cancel() {
	c.mu.Lock()
	if c.canceled.Load() {
		c.mu.Unlock()
		return
	}
	c.canceled.Store(true)
	funcs := c.funcs
	c.funcs = nil
	if c.done != nil {
		close(c.done)
	}
	c.mu.Unlock()
	for _, a := range funcs {
		go a.f()
	}
}
