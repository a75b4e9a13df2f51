package h1server

// The connection loop of the fast server: a connection's goroutine, its
// read buffer, reading heads, parking in the poller and resuming, handing
// over to net/http, serving one request and watching for the client going
// away.

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/http1"
	"github.com/rampart-gw/rampart/internal/listener/guard"
)

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
// (Variables for tests.)
var (
	hotMin   = time.Millisecond
	hotMax   = 250 * time.Millisecond
	hotFirst = 5 * time.Millisecond // for the first request and after a wake-up
)

// parkMisses is how many hot waits in a row may time out before a
// connection parks at once after its responses, without the hot wait: when
// the client's gaps are longer (thousands of busy connections on one core)
// the wait only buys a deadline, a timer, a wake-up and a read that fails
// before parking anyway. Re-arming the descriptor reports bytes already
// waiting, so a request that arrives meanwhile is not lost. A wake-up
// within hotFirst of such a park (the client is quick again) ends the
// streak.
const parkMisses = 2

// watchDelay is how long a request may run before the server starts
// watching its connection for the client going away (see watch).
const watchDelay = 50 * time.Millisecond

// srvConn is one client connection of the fast path. It holds only what
// outlives a request and a parked wait: 128 bytes, one size class. The
// state of a connection at work (buffers, the response writer, the watch)
// is a connWork, taken from a pool when the connection's goroutine starts
// and given back when it parks, so that a parked connection costs its
// srvConn and Go's socket (see docs/performance.md, "Memory per idle
// keep-alive connection").
type srvConn struct {
	s         *Server
	nc        net.Conn
	tcp       *net.TCPConn // for writev; nil when nc is not plain TCP
	tlsState  *tls.ConnectionState
	remote    string
	*connWork // nil while parked (and once closed)

	// Poller bookkeeping (guarded by poller.mu while parked).
	prev, next *srvConn
	// expires is, in Unix nanoseconds, when the first head is due (from
	// accept, until the first request) and, while parked, when the idle
	// (or first-head) timeout closes the connection.
	expires    int64
	nreq       int   // heads taken from this connection
	served     int64 // requests handed to the handler
	fd         int32
	state      atomic.Int32
	gen        uint32
	registered bool
	// misses: hot waits in a row that timed out (see parkMisses).
	misses uint8
	// deep: parked without Go's socket (see poller.deepen); fd is then a
	// descriptor of the poller's own.
	deep bool
}

// connWork is the state of a connection while its goroutine runs: from a
// pool, given back when the connection parks or closes.
type connWork struct {
	c        *srvConn      // for the watch timer
	hot      time.Duration // see hotMin
	idleFrom time.Time     // when the current hot wait began

	buf    []byte // read buffer
	r, w   int
	rdl    time.Time // read deadline in force (rdlUnknown: not known)
	headDL bool      // the head-read deadline is set
	wb     []byte    // response head and small bodies
	iov    net.Buffers
	broken bool  // a read or write failed: close after the response
	unread bool  // the request body was left unread: linger on close
	werr   error // a write failed: nothing more is sent
	resp   response
	keys   []string

	// watch: see (*connWork).watch.
	wmu       sync.Mutex
	timer     *time.Timer
	armed     bool // the timer was reset for the request being served
	fired     bool // the timer fired once: its callback may still run, do not pool
	inHandler bool
	bgRunning bool
	bgDone    chan struct{}
	bgByte    [1]byte
	bgN       int
	bgErr     error
	ctx       *reqContext // of the request being served
	body      *body
}

// rdlUnknown stands for "the socket's read deadline is not known" (a
// connection coming back from the poller): no deadline equals it.
var rdlUnknown = time.Unix(0, 1)

var workPool = sync.Pool{New: func() any { return new(connWork) }}

// attach gives the connection its work state.
func (c *srvConn) attach() {
	w := workPool.Get().(*connWork)
	w.c = c
	w.rdl = rdlUnknown
	c.connWork = w
}

// detach gives the buffers and the work state back to their pools.
func (c *srvConn) detach() {
	w := c.connWork
	if w == nil {
		return
	}
	c.releaseWrite()
	if len(w.buf) == 4096 {
		putBuf(w.buf)
	}
	c.connWork = nil
	w.wmu.Lock()
	keep := !w.fired && !w.bgRunning
	w.wmu.Unlock()
	if !keep {
		return // a watch callback may still look at it: leave it to the GC
	}
	clear(w.iov)
	clear(w.resp.hdr)
	clear(w.resp.trailers)
	clear(w.keys)
	*w = connWork{
		timer: w.timer,
		iov:   w.iov[:0],
		resp:  response{hdr: w.resp.hdr, trailers: w.resp.trailers[:0]},
		keys:  w.keys[:0],
	}
	workPool.Put(w)
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
			if c.connWork != nil {
				c.resp.pend = nil
			}
			if p != http.ErrAbortHandler {
				buf := make([]byte, 16<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.Log.Error("h1 server: panic serving request", "remote", c.remote, "panic", p, "stack", string(buf))
			}
			c.close()
		}
	}()
	c.attach()
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
			rc.Control(func(fd uintptr) { c.fd = int32(fd) })
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
	dl := time.Unix(0, c.expires)
	tc.SetDeadline(dl)
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	err := tc.HandshakeContext(ctx)
	cancel()
	tc.SetWriteDeadline(time.Time{})
	c.rdl = dl
	if err != nil {
		c.s.Log.Debug("h1 server: TLS handshake", "remote", c.remote, "error", err)
		if c.s.HandshakeError != nil {
			c.s.HandshakeError(err)
		}
		c.close()
		return false
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	if st.NegotiatedProtocol == "h2" {
		c.handOverTo(c.s.HandOverH2)
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
	if c.connWork == nil { // parked
		c.dropDeep()
		c.s.untrack(c)
		return
	}
	if b := c.body; b != nil {
		c.body = nil
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
	}
	c.releaseBuffers()
	c.s.untrack(c)
}

// releaseBuffers gives the buffers and the rest of the work state back
// (detach): the connection's goroutine ends.
func (c *srvConn) releaseBuffers() { c.detach() }

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
		if len(b) > 0 && (!c.s.lim.LineFits(b) || len(b) >= c.s.lim.MaxHead) {
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
			limit := c.s.lim.MaxHead + c.s.lim.MaxURI + 64
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
	fresh := false
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
			end = time.Unix(0, c.expires)
		} else {
			end = now.Add(c.s.idleTimeout())
		}
		dl := end
		if c.s.poll != nil && c.fd >= 0 {
			if c.hot == 0 {
				// The first wait since accept or a wake-up: the bytes that
				// woke the connection are there, so a read that finds
				// them is no hit (see parkMisses).
				c.hot = hotFirst
				fresh = true
			}
			if hot := now.Add(c.hot); hot.Before(end) {
				dl, parkAt = hot, end
				if c.misses >= parkMisses && !fresh && c.tlsState == nil {
					// Not under TLS: tls.Conn may hold a record it read
					// from the socket, which no event would report.
					if !c.state.CompareAndSwap(csIdle, csActive) {
						c.close() // shut down meanwhile
						return false
					}
					c.park(end)
					return false
				}
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
			if !fresh {
				c.misses = 0
			}
		}
		return true
	}
	if idle && !parkAt.IsZero() && isTimeout(err) && c.w == c.r {
		if c.misses < parkMisses {
			c.misses++
		}
		c.park(parkAt)
		return false
	}
	c.close()
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// park hands the connection to the poller and ends its goroutine.
func (c *srvConn) park(expires time.Time) {
	c.releaseBuffers()
	c.state.Store(csParked)
	if !c.s.poll.park(c, expires) {
		c.close()
	}
}

// resume runs when a parked connection has bytes (or was closed by the
// peer), on a worker (see poller.worker).
func (c *srvConn) resume() {
	if !c.state.CompareAndSwap(csParked, csActive) {
		c.dropDeep() // closed meanwhile
		return
	}
	if c.deep && !c.surface() {
		c.close()
		return
	}
	if c.misses >= parkMisses && c.nreq > 0 {
		// Parked at once: woken within hotFirst, the hot wait would have
		// caught the request, so wait again.
		parked := c.expires - int64(c.s.idleTimeout())
		if time.Now().UnixNano()-parked < int64(hotFirst) {
			c.misses = 0
		}
	}
	c.serve()
}

// handOver passes the connection, with the bytes read so far, to net/http
// behind the guard.
func (c *srvConn) handOver() { c.handOverTo(nil) }

// handOverTo is handOver to to (HandOver if nil).
func (c *srvConn) handOverTo(to func(*guard.Conn)) {
	if to == nil {
		to = c.s.HandOver
	}
	c.state.Store(csClosed)
	c.s.untrack(c)
	c.setReadDeadline(time.Time{})
	g := guard.New(c.nc, c.s.Config)
	g.Adopt(c.buf[c.r:c.w], c.nreq, c.served)
	c.releaseBuffers()
	if to == nil || c.s.closing.Load() {
		g.Close()
		return
	}
	to(g)
}

// serveOne parses the head of length n at buf[r:] and serves the request.
// false: the connection is done (closed or handed over).
func (c *srvConn) serveOne(n int) bool {
	b := c.buf[c.r : c.r+n]
	if n > c.s.lim.MaxHead+2 {
		c.handOver()
		return false
	}
	h, ok := c.s.lim.Check(b, c.nreq == 0)
	if ok && h.H2 {
		c.handOverTo(c.s.HandOverH2)
		return false
	}
	if !ok || h.Upgrade || h.Chunked || h.HTTP10 || h.Absolute {
		c.handOver()
		return false
	}
	rs, ok := c.newRequest(b, h.Length)
	if !ok {
		c.handOver()
		return false
	}
	c.nreq++
	c.r += n
	c.served++
	if c.r == c.w && rs.req.ContentLength == 0 && len(c.buf) == 4096 {
		// Nothing more was read and no body follows: the request holds
		// no part of the buffer (newRequest copied the head), so a
		// handler waiting on its upstream holds no read buffer either
		// (docs/performance.md, "What a busy connection holds"). fill
		// takes one again.
		putBuf(c.buf)
		c.buf = nil
		c.r, c.w = 0, 0
	}
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
	c.nc.SetReadDeadline(time.Now().Add(guard.LingerTime))
	if c.buf == nil {
		c.buf = getBuf()
	}
	for total := 0; total < guard.LingerBytes; {
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
		c.timer = time.AfterFunc(watchDelay, c.connWork.watch)
	} else {
		c.timer.Reset(watchDelay)
	}
	c.armed = true
}

// watch runs in the timer's goroutine. It works on the connWork it was
// armed for (c.connWork may be another one by then, or nil).
func (w *connWork) watch() {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.fired = true
	c := w.c
	if c == nil || !w.inHandler || w.bgRunning {
		return
	}
	if b := w.body; b != nil && !b.done.Load() {
		w.timer.Reset(watchDelay) // the handler still reads the body
		return
	}
	w.bgRunning = true
	w.bgDone = make(chan struct{})
	c.nc.SetReadDeadline(time.Time{})
	w.rdl = time.Time{}
	ctx := w.ctx
	go func() {
		defer close(w.bgDone)
		n, err := c.nc.Read(w.bgByte[:])
		w.bgN, w.bgErr = n, err
		if n == 0 && err != nil && !isTimeout(err) {
			ctx.cancel() // the client is gone
		}
	}()
}

var aLongTimeAgo = time.Unix(1, 0)

func (c *srvConn) stopWatch() {
	stopped := true
	if c.armed {
		c.armed = false
		stopped = c.timer.Stop()
	}
	c.wmu.Lock()
	if !stopped {
		c.fired = true // its callback has started and may still run
	}
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
