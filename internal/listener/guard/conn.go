// Package guard puts a strict HTTP/1.1 framing guard in front of
// net/http. Conn wraps each accepted connection: it parses every request
// head on the connection (pipelined ones included) and follows each body's
// framing (Content-Length or chunked) to find where the next request starts,
// and hands net/http only bytes it has validated against RFC 9112/9110 and
// the strictest of NGINX, HAProxy and Envoy (docs/security.md).
//
// A refused head never reaches net/http: the guard hands over a synthetic
// request in its place (method RAMPART-REJECT, the reason in the target),
// which Handler answers with the JSON error and Connection: close, so
// requests pipelined behind it are never read. A malformed chunked body
// (whose head was already handed over) fails the body read, which aborts
// the upstream request; Handler replaces the response with 400 and closes.
//
// An HTTP/2 prior-knowledge preface switches the connection to HTTP/2,
// where the guard only counts frames to cut off rapid-reset and control
// frame floods; a hijacked (upgraded) connection is passed through.
//
// The fast HTTP/1.1 server (internal/listener/h1server) checks each head
// with the same parser (Limits.Check) and hands every connection it does
// not serve itself to a Conn (Conn.Adopt), so a refusal has one
// implementation. The grammar both share is internal/http1's.
package guard

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/http1"
)

// Config bounds what a connection may send. Zero fields take the defaults
// named on each.
type Config struct {
	// MaxHeaderBytes bounds the request line plus fields; larger -> 431.
	// Default 61440.
	MaxHeaderBytes int
	// MaxURIBytes bounds the request target; longer -> 414. Default 8192.
	MaxURIBytes int
	// MaxHeaders bounds the number of header fields; more -> 431. Default 100.
	MaxHeaders int
	// MaxBodyBytes refuses a declared Content-Length above it with 413 before
	// reading the body; <= 0 disables the check.
	MaxBodyBytes int64
	// MaxRequests is the number of requests served on one connection before
	// the response carries Connection: close; 0 = unlimited. Default set by
	// the listener (1000).
	MaxRequests int
	// H2 enables the HTTP/2 prior-knowledge (h2c) hand-over.
	H2 bool
	// OnRefuse, if set, is told of every request the guard answers
	// itself (they never reach the gateway handler or its request
	// metrics): for rampart_http_refused_total and the access log. It runs
	// on the connection's goroutine, so it must not block.
	OnRefuse func(Refusal)
}

// Limits returns c's bounds with the defaults applied.
func (c *Config) Limits() Limits {
	l := Limits{MaxURI: c.MaxURIBytes, MaxHeaders: c.MaxHeaders, MaxBody: c.MaxBodyBytes, MaxHead: c.MaxHeaderBytes}
	if l.MaxURI <= 0 {
		l.MaxURI = 8192
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = 100
	}
	if l.MaxHead <= 0 {
		l.MaxHead = 61440
	}
	return l
}

const rejectMethod = "RAMPART-REJECT"

// ErrFraming is the body read error for a malformed chunked body.
var ErrFraming = errors.New("malformed request framing")

// errH2Abuse ends an HTTP/2 connection that resets streams or sends control
// frames at an abusive rate.
var errH2Abuse = errors.New("http2 control frame abuse")

// Conn states.
const (
	stHead    = iota // expecting a request head
	stLength         // in a Content-Length body
	stChunked        // in a chunked body
	stUpgrade        // after an Upgrade request: wait for the handler's verdict
	stPass           // raw pass-through (hijacked)
	stH2             // HTTP/2: pass-through with frame accounting
	stDrain          // refused or failed: discard input until close
)

// Upgrade verdicts set by Handler.
const (
	upWaiting = iota
	upHijacked
	upDone
)

// Conn is a guarded client connection.
type Conn struct {
	net.Conn
	cfg *Config
	lim Limits

	// Read-side state, touched only by the (single) reader.
	buf      []byte // buf[r:w] read from the socket, not yet handed over
	r, w     int
	ready    int // buf[r:r+ready] validated, ready to hand over
	st       uint8
	left     int64
	chunk    chunker
	nreq     int
	upgradeN bool // the current request asked for an Upgrade
	synth    []byte
	h2       h2count

	// Shared with Handler and Close.
	upgrade atomic.Int32 // verdict for stUpgrade
	failed  atomic.Bool  // a chunked body was malformed
	linger  atomic.Bool  // refused or HTTP/2: close lingering
	served  atomic.Int64 // requests handed to the handler
	closeMu sync.Once
}

// New wraps c.
func New(c net.Conn, cfg *Config) *Conn {
	g := &Conn{Conn: c, cfg: cfg, lim: cfg.Limits()}
	g.chunk.maxTrailer = g.lim.MaxHead
	return g
}

// Adopt makes c continue a connection that another server (the fast
// HTTP/1.1 server) began: buffered are the bytes it read and did not serve,
// heads the request heads it took (only the first may be the HTTP/2
// preface) and served the requests it handed to its handler (for
// MaxRequests). It must be called before the first Read.
func (c *Conn) Adopt(buffered []byte, heads int, served int64) {
	if len(buffered) > 0 {
		c.stash(buffered)
	}
	c.nreq = heads
	c.served.Store(served)
}

// Read hands over validated bytes.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.ready > 0 {
			n := copy(p, c.buf[c.r:c.r+c.ready])
			c.r += n
			c.ready -= n
			return n, nil
		}
		if len(c.synth) > 0 {
			n := copy(p, c.synth)
			c.synth = c.synth[n:]
			return n, nil
		}
		buffered := c.w - c.r
		switch c.st {
		case stHead:
			if done, err := c.head(); err != nil {
				return 0, err
			} else if done {
				continue
			}
		case stLength:
			if buffered > 0 {
				k := int64(buffered)
				if k > c.left {
					k = c.left
				}
				c.ready = int(k)
				c.bodyDone(k)
				continue
			}
			if int64(len(p)) > c.left {
				p = p[:c.left]
			}
			n, err := c.Conn.Read(p)
			c.bodyDone(int64(n))
			return n, err
		case stChunked:
			if buffered > 0 {
				n, done, why := c.chunk.feed(c.buf[c.r:c.w])
				if why != rNone {
					return 0, c.fail()
				}
				c.ready = n
				if done {
					c.endMessage()
				}
				continue
			}
			n, err := c.Conn.Read(p)
			if n == 0 {
				return 0, err
			}
			m, done, why := c.chunk.feed(p[:n])
			if why != rNone {
				return 0, c.fail()
			}
			if done {
				c.endMessage()
				if m < n { // the next request starts here
					c.stash(p[m:n])
				}
				return m, nil
			}
			return n, err
		case stUpgrade:
			switch c.upgrade.Load() {
			case upHijacked:
				c.st = stPass
				continue
			case upDone:
				c.st = stHead
				continue
			}
			// Keep the bytes (a WebSocket may follow) without handing them
			// over; return only when net/http aborts the read.
			if err := c.fill(); err != nil {
				return 0, err
			}
			if c.w == len(c.buf) {
				return 0, c.refuseDrain()
			}
		case stPass:
			if buffered > 0 {
				c.ready = buffered
				continue
			}
			return c.Conn.Read(p)
		case stH2:
			var n int
			var err error
			if buffered > 0 {
				n = copy(p, c.buf[c.r:c.w])
				c.r += n
			} else {
				n, err = c.Conn.Read(p)
			}
			if !c.h2.feed(p[:n]) {
				c.st = stDrain
				c.linger.Store(false) // an abusive client gets a reset
				return 0, errH2Abuse
			}
			return n, err
		case stDrain:
			return c.drain()
		}
	}
}

// head processes buffered bytes in stHead. It returns true when state
// advanced (ready bytes, synthetic request or a new state).
func (c *Conn) head() (bool, error) {
	// RFC 9112 §2.2: empty lines before a request line are ignored.
	for c.w-c.r >= 2 && c.buf[c.r] == '\r' && c.buf[c.r+1] == '\n' {
		c.r += 2
	}
	b := c.buf[c.r:c.w]
	var from int
	n := http1.HeadEnd(b, &from)
	if n < 0 {
		if len(b) > 0 && !c.lim.LineFits(b) {
			c.refuse(rURITooLong)
			return true, nil
		}
		if len(b) >= c.lim.MaxHead {
			c.refuse(rHeadTooLarge)
			return true, nil
		}
		if err := c.fill(); err != nil {
			return false, err
		}
		return true, nil
	}
	if n > c.lim.MaxHead+2 {
		c.refuse(rHeadTooLarge)
		return true, nil
	}
	h, why := parseHead(b[:n], c.nreq == 0, &c.lim)
	c.nreq++
	if why != rNone {
		c.refuse(why)
		return true, nil
	}
	if h.H2 {
		if !c.cfg.H2 {
			c.refuse(rVersionUnsupported)
			return true, nil
		}
		c.st = stH2
		c.h2.skip = len(h2Rest)
		c.linger.Store(true)
		c.ready = n
		return true, nil
	}
	c.ready = n
	c.upgradeN = h.Upgrade
	if h.Upgrade {
		// Set before net/http sees the request, so the handler's verdict
		// always comes after it (see Handler).
		c.upgrade.Store(upWaiting)
	}
	switch {
	case h.Chunked:
		c.st = stChunked
		c.chunk.reset()
	case h.Length > 0:
		c.st = stLength
		c.left = h.Length
	default:
		c.endMessage()
	}
	return true, nil
}

// fill reads more bytes from the socket into buf, growing it up to the head
// limit.
func (c *Conn) fill() error {
	if c.buf == nil {
		c.buf = make([]byte, 4096)
	}
	if c.r > 0 && c.r == c.w {
		c.r, c.w = 0, 0
	}
	if c.w == len(c.buf) {
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		} else if len(c.buf) < c.lim.MaxHead+c.lim.MaxURI+64 {
			nb := make([]byte, min(2*len(c.buf), c.lim.MaxHead+c.lim.MaxURI+64))
			c.w = copy(nb, c.buf[c.r:c.w])
			c.r = 0
			c.buf = nb
		} else {
			return nil // full; callers check
		}
	}
	n, err := c.Conn.Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// stash keeps b (bytes read past the end of a body) as the start of the
// next request.
func (c *Conn) stash(b []byte) {
	if c.buf == nil {
		c.buf = make([]byte, max(4096, len(b)))
	}
	c.r, c.w = 0, copy(c.buf, b)
}

func (c *Conn) bodyDone(n int64) {
	c.left -= n
	if c.left == 0 {
		c.endMessage()
	}
}

func (c *Conn) endMessage() {
	if c.upgradeN {
		c.upgradeN = false
		c.st = stUpgrade
		return
	}
	c.st = stHead
}

// refuse replaces the rest of the input with a synthetic request that makes
// Handler answer with why's verdict.
func (c *Conn) refuse(why reason) {
	c.synth = []byte(rejectMethod + " /" + strconv.Itoa(int(why)) + " HTTP/1.1\r\nHost: rampart\r\nConnection: close\r\n\r\n")
	c.r, c.w, c.ready = 0, 0, 0
	c.st = stDrain
	c.linger.Store(true)
}

func (c *Conn) refuseDrain() error {
	c.st = stDrain
	c.linger.Store(true)
	return ErrFraming
}

// fail ends a malformed body: the body read fails and Handler answers 400.
func (c *Conn) fail() error {
	c.failed.Store(true)
	c.r, c.w, c.ready = 0, 0, 0
	return c.refuseDrain()
}

// drain discards input until the connection fails or closes; net/http's
// background read waits here while the refusal is written.
func (c *Conn) drain() (int, error) {
	var scratch [512]byte
	for {
		if _, err := c.Conn.Read(scratch[:]); err != nil {
			return 0, err
		}
	}
}

// CloseWrite half-closes the connection (net/http's lingering close,
// upgrade relays).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection. After a refusal, and on every HTTP/2
// connection, it first half-closes and reads (briefly, boundedly) what the
// client still sends, so that the last response or GOAWAY is not lost to a
// TCP reset: closing a socket with unread input makes the kernel send RST,
// and the client may then drop what it had not read yet. net/http's HTTP/2
// server leaves input unread when it hangs up on a protocol error (it checks
// a frame's header before reading its payload). NGINX closes lingering the
// same way. The lingering runs in its own goroutine, so Close never blocks
// its caller (http.Server.Close closes every connection under one lock);
// the socket is closed when the client closes or LingerTime passes.
func (c *Conn) Close() error {
	err := net.ErrClosed
	c.closeMu.Do(func() {
		if c.linger.Load() && c.CloseWrite() == nil {
			err = nil
			go c.lingerClose()
			return
		}
		err = c.Conn.Close()
	})
	return err
}

func (c *Conn) lingerClose() {
	c.Conn.SetReadDeadline(time.Now().Add(LingerTime))
	var scratch [4096]byte
	for total := 0; total < LingerBytes; {
		n, err := c.Conn.Read(scratch[:])
		total += n
		if err != nil {
			break
		}
	}
	c.Conn.Close()
}

// A lingering close reads what the client still sends for at most
// LingerTime and LingerBytes.
const (
	LingerTime  = 500 * time.Millisecond
	LingerBytes = 1 << 20
)

// Unwrap returns the underlying connection.
func (c *Conn) Unwrap() net.Conn { return c.Conn }
