package h1server

// The request body: a Content-Length body read from the connection, and
// what is left of it after the handler.

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// maxDiscard is the unread request body the server still reads and drops
// after a response to keep the connection (net/http's figure).
const maxDiscard = 256 << 10

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
