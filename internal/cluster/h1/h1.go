// Package h1 is a lean HTTP/1.1 client for plain-text upstreams: an
// http.RoundTripper that writes the request and reads the response on the
// caller's goroutine, over a per-target LIFO pool of keep-alive connections.
//
// It replaces net/http.Transport on the gateway's hot path for upstreams
// with protocol http1 and no TLS (issue 6): no reader and writer goroutine
// per connection, no channel hand-offs, one string allocation for the whole
// response head, and read buffers that idle connections give back to a
// shared pool. HTTP/2 and TLS upstreams keep the standard library's stack.
//
// Behaviour kept from net/http.Transport: request headers are written as
// given (invalid names or values are refused), Content-Length and chunked
// request framing with trailers, 1xx responses skipped (101 returned with a
// read-write body), HEAD/204/304 without a body, chunked responses with
// trailers declared by the Trailer header pre-populated in Response.Trailer,
// repeated identical Content-Length values collapsed, one retry on a fresh
// connection when a reused connection turns out to be stale.
//
// Deliberate differences: the Connection header of a response is kept as
// received (net/http drops it when it contains "close"), so the proxy can
// remove the headers it names; a response with both Content-Length and
// Transfer-Encoding is an error (RFC 9112 section 6.3 allows treating it as
// one, net/http drops the Content-Length); no User-Agent is invented; no
// request is sent while the response of the previous one is being read
// (there is no full-duplex request/response streaming).
package h1

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxIdlePerHost = 64
	DefaultMaxHeadBytes   = 1 << 20
	DefaultMaxHeaders     = 1000
	DefaultReadBufferSize = 4 << 10
)

// probeAfter is how long a pooled connection may sit idle before it is
// checked for a close by the server (one non-blocking read) before reuse.
// Busy connections skip the check; idle ones are the ones servers close
// (keep-alive timeouts of a few seconds are common).
const probeAfter = time.Second

// Config configures a Client. The zero value is usable.
type Config struct {
	// DialContext opens a connection to addr ("host:port"). Default: a
	// net.Dialer with a 5 s timeout.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxIdlePerHost bounds the idle keep-alive connections kept per target.
	// Default 64; negative keeps none.
	MaxIdlePerHost int
	// IdleTimeout closes connections idle for longer than this. Default 0:
	// idle connections are kept until the server closes them.
	IdleTimeout time.Duration
	// MaxHeadBytes bounds a response head (status line and header fields),
	// and separately its trailers, in bytes. Default 1 MiB.
	MaxHeadBytes int
	// MaxHeaders bounds the number of header fields in a response head.
	// Default 1000.
	MaxHeaders int
	// ReadBufferSize is the read buffer of a connection in use, in bytes.
	// Idle connections hold none. Default 4 KiB (a page, as NGINX's
	// proxy_buffer_size): a head that does not fit is read on (readLongHead),
	// and body reads at least as large as the buffer bypass it, so only the
	// memory of the exchanges in flight depends on it (docs/performance.md,
	// "HTTP/2 memory under load").
	ReadBufferSize int
	// Now returns the current time for idle accounting. Default time.Now.
	Now func() time.Time
}

// Client is an HTTP/1.1 http.RoundTripper for plain-text upstreams. It is
// safe for concurrent use.
type Client struct {
	cfg     Config
	readers sync.Pool // *bufio.Reader
	writers sync.Pool // *[]byte, request heads and body copies
	states  sync.Pool // *exchangeState, released responses

	realClock bool // cfg.Now is time.Now

	mu     sync.Mutex
	hosts  map[string]*host
	nidle  int
	closed bool
	// gone are addresses retired by Retire: their connections are closed
	// instead of pooled. Nil until the first Retire.
	gone  map[string]struct{}
	jstop chan struct{} // closed to stop the janitor; nil when none runs
	jdone chan struct{} // closed when the janitor has returned
}

var _ http.RoundTripper = (*Client)(nil)

// host is the idle connections to one target, most recently used last.
type host struct {
	idle []*conn
}

// New returns a Client with cfg's settings.
func New(cfg Config) *Client {
	if cfg.DialContext == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		cfg.DialContext = d.DialContext
	}
	if cfg.MaxIdlePerHost == 0 {
		cfg.MaxIdlePerHost = DefaultMaxIdlePerHost
	}
	if cfg.MaxHeadBytes <= 0 {
		cfg.MaxHeadBytes = DefaultMaxHeadBytes
	}
	if cfg.MaxHeaders <= 0 {
		cfg.MaxHeaders = DefaultMaxHeaders
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = DefaultReadBufferSize
	}
	realClock := cfg.Now == nil
	if realClock {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, hosts: map[string]*host{}, realClock: realClock}
}

// since returns the time elapsed since t. With the real clock it reads only
// the monotonic clock (time.Since), half the cost of time.Now.
func (c *Client) since(t time.Time) time.Duration {
	if c.realClock {
		return time.Since(t)
	}
	return c.cfg.Now().Sub(t)
}

// conn is one upstream connection.
type conn struct {
	nc     net.Conn
	addr   string
	abortF func()        // abort, made once per connection
	br     *bufio.Reader // nil while idle and until the response is readable
	// rc and readyF wait for the response without a read buffer (see
	// awaitReadable); rc is nil when nc is no syscall.Conn.
	rc     syscall.RawConn
	readyF func(uintptr) bool
	waited bool        // readyF's state: it was called once
	peek   [1]byte     // readyF's
	shard  *watchShard // where its exchanges are watched (watch.go)
	w      watch       // of the exchange in flight, guarded by shard.mu
	idleAt time.Time
	// dl is set while a deadline may be set on nc: one an exchange left
	// because its body was already buffered (readResponse).
	dl bool
	// reused is set once the connection served a response and was pooled:
	// a failure before the first response byte may then be a stale
	// keep-alive connection rather than a broken server.
	reused bool
}

// aLongTimeAgo is a deadline in the past: setting it makes blocked reads
// and writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

// abort makes the connection's pending and future I/O fail. It is what a
// cancelled request context runs.
func (cn *conn) abort() { cn.nc.SetDeadline(aLongTimeAgo) }

func (cn *conn) close() { cn.nc.Close() }

func (c *Client) reader(nc net.Conn) *bufio.Reader {
	if br, ok := c.readers.Get().(*bufio.Reader); ok {
		br.Reset(nc)
		return br
	}
	return bufio.NewReaderSize(nc, c.cfg.ReadBufferSize)
}

func (c *Client) buffer() *[]byte {
	if b, ok := c.writers.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 16<<10)
	return &b
}

// get returns an idle connection to addr, or dials a new one.
func (c *Client) get(ctx context.Context, addr string, deadline time.Time) (*conn, error) {
	for {
		cn := c.popIdle(addr)
		if cn == nil {
			break
		}
		if c.since(cn.idleAt) >= probeAfter && !cn.alive() {
			cn.close()
			continue
		}
		return cn, nil
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	nc, err := c.cfg.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cn := &conn{nc: nc, addr: addr, shard: newShard()}
	cn.abortF = cn.abort
	if rc := rawConn(nc); rc != nil {
		cn.rc = rc
		cn.readyF = cn.ready
	}
	return cn, nil
}

// rawConn is the syscall.RawConn of nc or of the connection it wraps (an
// Unwrap() net.Conn chain, such as the cluster's breaker-counted
// connection), nil if there is none. Only waits use it: reads and writes
// still go through nc.
func rawConn(nc net.Conn) syscall.RawConn {
	for i := 0; nc != nil && i < 8; i++ {
		if sc, ok := nc.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				return rc
			}
			return nil
		}
		u, ok := nc.(interface{ Unwrap() net.Conn })
		if !ok {
			return nil
		}
		nc = u.Unwrap()
	}
	return nil
}

// takeReader gives cn its read buffer for a response, once the connection
// is readable (or its deadline passed, or it was closed or aborted: the
// read that follows then fails as it would have). An exchange so holds no
// read buffer while the server works on the request: with a thousand
// requests in flight, that was 16 MiB of buffers waiting
// (docs/performance.md, "Scaling with connections").
func (c *Client) takeReader(cn *conn) {
	if cn.br != nil {
		return
	}
	if cn.rc != nil {
		cn.waited = false
		cn.rc.Read(cn.readyF) // its error is the next read's
	}
	cn.br = c.reader(cn.nc)
}

// ready is the callback of the wait in takeReader. The first call peeks,
// without blocking, for a byte: false (nothing yet) makes the network
// poller wait until the socket is readable. Go's poller clears a stale
// readiness before the first call, so the first one must look at the
// socket itself. The response is rarely there yet (the request was just
// written), so this peek replaces the read that would fail with EAGAIN.
// After the wait, true: the read that follows reports what there is.
func (cn *conn) ready(fd uintptr) bool {
	if cn.waited {
		return true
	}
	cn.waited = true
	_, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&cn.peek[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return e != syscall.EAGAIN
}

// popIdle takes the most recently used idle connection to addr, closing
// expired ones on the way.
func (c *Client) popIdle(addr string) *conn {
	c.mu.Lock()
	h := c.hosts[addr]
	if h == nil || len(h.idle) == 0 {
		c.mu.Unlock()
		return nil
	}
	n := len(h.idle)
	cn := h.idle[n-1]
	h.idle[n-1] = nil
	h.idle = h.idle[:n-1]
	c.nidle--
	if t := c.cfg.IdleTimeout; t > 0 && c.since(cn.idleAt) > t {
		// The newest idle connection expired, so did every older one.
		stale := append([]*conn{cn}, h.idle...)
		clear(h.idle)
		h.idle = h.idle[:0]
		c.nidle -= len(stale) - 1
		c.mu.Unlock()
		for _, s := range stale {
			s.close()
		}
		return nil
	}
	c.mu.Unlock()
	return cn
}

// alive checks, without blocking for long, that the server has not closed
// an idle connection: a read must time out with nothing to read.
func (cn *conn) alive() bool {
	cn.nc.SetReadDeadline(time.Now().Add(50 * time.Microsecond))
	var one [1]byte
	n, err := cn.nc.Read(one[:])
	cn.nc.SetReadDeadline(time.Time{})
	var ne net.Error
	return n == 0 && errors.As(err, &ne) && ne.Timeout()
}

// put returns a connection whose exchange ended cleanly to the idle pool.
func (c *Client) put(cn *conn) {
	if (cn.br != nil && cn.br.Buffered() > 0) || c.cfg.MaxIdlePerHost < 0 {
		// Bytes nobody asked for: the connection is out of step.
		cn.close()
		return
	}
	if cn.br != nil {
		c.readers.Put(cn.br)
		cn.br = nil
	}
	cn.reused = true
	cn.idleAt = c.cfg.Now()
	var evict *conn
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cn.close()
		return
	}
	if _, gone := c.gone[cn.addr]; gone {
		c.mu.Unlock()
		cn.close()
		return
	}
	h := c.hosts[cn.addr]
	if h == nil {
		h = &host{}
		c.hosts[cn.addr] = h
	}
	if len(h.idle) >= c.cfg.MaxIdlePerHost {
		// Keep the most recently used ones: the oldest is the most likely
		// to have been closed by the server.
		evict = h.idle[0]
		copy(h.idle, h.idle[1:])
		h.idle = h.idle[:len(h.idle)-1]
		c.nidle--
	}
	h.idle = append(h.idle, cn)
	c.nidle++
	if c.jstop == nil && c.cfg.IdleTimeout > 0 {
		c.jstop, c.jdone = make(chan struct{}), make(chan struct{})
		go c.janitor(c.jstop, c.jdone)
	}
	c.mu.Unlock()
	if evict != nil {
		evict.close()
	}
}

// janitor closes connections idle past IdleTimeout. It runs while there
// are idle connections and is stopped by CloseIdleConnections.
func (c *Client) janitor(stop, done chan struct{}) {
	defer close(done)
	defer func() {
		if recover() != nil {
			c.mu.Lock()
			if c.jstop == stop {
				c.jstop, c.jdone = nil, nil
			}
			c.mu.Unlock()
		}
	}()
	period := max(c.cfg.IdleTimeout/2, time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if c.prune() {
			return
		}
	}
}

// prune closes expired idle connections. It reports whether none is left,
// in which case the janitor is deregistered and must return.
func (c *Client) prune() bool {
	now := c.cfg.Now()
	var stale []*conn
	c.mu.Lock()
	for addr, h := range c.hosts {
		i := 0
		for i < len(h.idle) && now.Sub(h.idle[i].idleAt) > c.cfg.IdleTimeout {
			i++
		}
		if i > 0 {
			stale = append(stale, h.idle[:i]...)
			n := copy(h.idle, h.idle[i:])
			clear(h.idle[n:])
			h.idle = h.idle[:n]
			c.nidle -= i
		}
		if len(h.idle) == 0 {
			delete(c.hosts, addr)
		}
	}
	last := c.nidle == 0
	if last {
		c.jstop, c.jdone = nil, nil
	}
	c.mu.Unlock()
	for _, cn := range stale {
		cn.close()
	}
	return last
}

// CloseIdleConnections closes every idle connection and stops the idle
// janitor. Connections in use are pooled again when their exchange ends.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	var idle []*conn
	for _, h := range c.hosts {
		idle = append(idle, h.idle...)
	}
	clear(c.hosts)
	c.nidle = 0
	stop, done := c.jstop, c.jdone
	c.jstop, c.jdone = nil, nil
	c.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	for _, cn := range idle {
		cn.close()
	}
}

// maxGone bounds the addresses Retire remembers. Past it the marks are
// dropped: a connection in use to a forgotten address is then pooled
// again when its exchange ends, and closes at IdleTimeout.
const maxGone = 4096

// Retire closes the idle connections to addr, and connections to addr in
// use when their exchange ends: addr left the upstream (discovery), and
// requests still running on it finish. Readmit undoes it.
func (c *Client) Retire(addr string) {
	c.mu.Lock()
	if c.gone == nil || len(c.gone) >= maxGone {
		c.gone = map[string]struct{}{}
	}
	c.gone[addr] = struct{}{}
	var idle []*conn
	if h := c.hosts[addr]; h != nil {
		idle = h.idle
		c.nidle -= len(idle)
		delete(c.hosts, addr)
	}
	c.mu.Unlock()
	for _, cn := range idle {
		cn.close()
	}
}

// Readmit lets connections to addr be pooled again (addr is back).
func (c *Client) Readmit(addr string) {
	c.mu.Lock()
	delete(c.gone, addr)
	c.mu.Unlock()
}

// Close closes idle connections and keeps connections in use from being
// pooled afterwards.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.CloseIdleConnections()
	return nil
}

// targetAddr returns the host:port to dial for u.
func targetAddr(u string) string {
	if strings.LastIndexByte(u, ':') > strings.LastIndexByte(u, ']') {
		return u
	}
	return u + ":80"
}
