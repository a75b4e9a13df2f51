package h1server

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// poller parks idle keep-alive connections in an epoll set of its own, so
// that an idle connection holds no goroutine, no stack and no buffers: only
// its socket and a srvConn. The epoll descriptor is itself registered with
// Go's network poller (it is readable when events are pending), so waiting
// takes no thread. Each parked descriptor is armed EPOLLONESHOT; the event
// data carries the descriptor and a generation, so a late event for a
// connection that was closed (and whose descriptor number was reused) is
// ignored.
type poller struct {
	s    *Server
	epfd int
	f    *os.File
	rc   syscallRawConn

	mu     sync.Mutex
	parked []*srvConn // by descriptor
	gen    uint32     // of the last park (event data; server-wide, so a reused descriptor's stale event never matches)
	n      int        // parked connections
	head   *srvConn   // parked connections, oldest first
	tail   *srvConn
	closed bool

	// work hands resumed connections to idle workers (see worker).
	work    chan *srvConn
	workers atomic.Int32 // running workers, busy or idle
}

type syscallRawConn interface {
	Read(func(fd uintptr) bool) error
}

func newPoller(s *Server) (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "h1server-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &poller{s: s, epfd: fd, f: f, rc: rc, work: make(chan *srvConn)}, nil
}

// park arms c's descriptor; false: the poller is closed or the descriptor
// could not be armed (the caller closes c).
func (p *poller) park(c *srvConn, expires time.Time) bool {
	if c.fd < 0 {
		return false
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.gen++
	c.gen = p.gen
	c.expires = expires.UnixNano()
	fd := c.fd
	p.put(c)
	op := syscall.EPOLL_CTL_ADD
	if c.registered {
		op = syscall.EPOLL_CTL_MOD
	}
	c.registered = true
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: fd, Pad: int32(c.gen)}
	// Under the lock: once armed, the event may fire at once and the
	// waker must find c parked.
	err := syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	if err != nil {
		p.take(c)
	}
	p.mu.Unlock()
	return err == nil
}

// put adds c to the parked connections (by descriptor and in the list).
func (p *poller) put(c *srvConn) {
	fd := int(c.fd)
	if fd >= len(p.parked) {
		p.parked = append(p.parked, make([]*srvConn, fd+1-len(p.parked))...)
	}
	p.parked[fd] = c
	p.n++
	p.link(c)
}

// take removes c, which is parked, from the parked connections.
func (p *poller) take(c *srvConn) {
	p.parked[c.fd] = nil
	p.n--
	p.unlink(c)
}

// lookup is the connection parked on fd, or nil.
func (p *poller) lookup(fd int32) *srvConn {
	if fd < 0 || int(fd) >= len(p.parked) {
		return nil
	}
	return p.parked[fd]
}

func (p *poller) link(c *srvConn) {
	c.next = nil
	c.prev = p.tail
	if p.tail != nil {
		p.tail.next = c
	} else {
		p.head = c
	}
	p.tail = c
}

func (p *poller) unlink(c *srvConn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else if p.head == c {
		p.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else if p.tail == c {
		p.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

// run waits for events and resumes their connections on workers (see
// dispatch) until the poller is closed.
func (p *poller) run() {
	var evs [256]syscall.EpollEvent
	ready := make([]*srvConn, 0, len(evs))
	for {
		var n int
		err := p.rc.Read(func(fd uintptr) bool {
			var e error
			n, e = syscall.EpollWait(int(fd), evs[:], 0)
			return e == nil && n > 0
		})
		if err != nil {
			return // closed
		}
		ready = ready[:0]
		p.mu.Lock()
		for i := 0; i < n; i++ {
			c := p.lookup(evs[i].Fd)
			if c == nil || int32(c.gen) != evs[i].Pad {
				continue
			}
			p.take(c)
			ready = append(ready, c)
		}
		p.mu.Unlock()
		for _, c := range ready {
			p.dispatch(c)
		}
		clear(ready)
	}
}

// workerIdle is how long a worker waits for the next connection before it
// exits (a variable for tests).
var workerIdle = 10 * time.Second

// dispatch resumes c on an idle worker, or on a new one when none is idle.
// A new goroutine per wake-up would start with the runtime's smallest stack
// and grow it (copystack) on every request the proxy path serves; a worker
// keeps the stack it has grown (docs/performance.md, "Scaling with
// connections").
func (p *poller) dispatch(c *srvConn) {
	select {
	case p.work <- c:
	default:
		p.workers.Add(1)
		go p.worker(c)
	}
}

// worker serves resumed connections, each until it parks or closes, and
// waits for the next one. It exits when the server stops (the poller then
// resumes nothing more) or after a whole workerIdle period (between one and
// two of them) without work, so idle workers are bounded by the peak of
// resumed connections served at once and go away after it. The timer is
// not reset per connection: a period in which the worker served one only
// extends its life by another.
func (p *poller) worker(c *srvConn) {
	defer p.workers.Add(-1)
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		c.resume()
		c = nil
		worked := true
	wait:
		select {
		case c = <-p.work:
		case <-t.C:
			if !worked {
				return
			}
			worked = false
			t.Reset(workerIdle)
			goto wait
		case <-p.s.done:
			return
		}
	}
}

// sweep closes parked connections whose idle (or first head) timeout has
// passed, once a second, until done is closed.
func (p *poller) sweep(done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var expired []*srvConn
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			expired = expired[:0]
			p.mu.Lock()
			ns := now.UnixNano()
			deepBy := ns + int64(p.s.idleTimeout()-deepAfter)
			deepLeft := maxDeepPerSweep
			for c := p.head; c != nil; {
				next := c.next
				if ns >= c.expires {
					p.take(c)
					expired = append(expired, c)
				} else if deepLeft > 0 && !c.deep && c.nreq > 0 && c.expires <= deepBy {
					deepLeft--
					p.deepen(c)
				}
				c = next
			}
			p.mu.Unlock()
			for _, c := range expired {
				if c.state.CompareAndSwap(csParked, csClosed) {
					c.close()
				} else {
					c.dropDeep()
				}
			}
			clear(expired)
		}
	}
}

// closeAll closes every parked connection and the poller.
func (p *poller) closeAll() {
	p.mu.Lock()
	var all []*srvConn
	for c := p.head; c != nil; c = c.next {
		all = append(all, c)
	}
	clear(p.parked)
	p.n = 0
	p.head, p.tail = nil, nil
	first := !p.closed
	p.closed = true
	p.mu.Unlock()
	for _, c := range all {
		if c.state.CompareAndSwap(csParked, csClosed) {
			c.close()
		} else {
			c.dropDeep() // closed by Server.Close
		}
	}
	if first {
		p.f.Close()
	}
}

var errNoPoller error = nil

// count is the number of parked connections.
func (p *poller) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// deepAfter is how long a connection stays parked with Go's socket before
// the sweeper parks it deep, without it (a variable for tests).
var deepAfter = 2 * time.Second

// maxDeepPerSweep bounds the deep parks of one sweep (each costs a few
// system calls under the poller's lock, which wake-ups and parks wait for):
// about 5 ms of work a second.
const maxDeepPerSweep = 1024

// Rebinder is implemented by a connection wrapper (the listener's counting
// connection) whose inner TCP connection the server may replace: a
// connection parked deep closes Go's socket (its netFD and the runtime's
// poll descriptor, ~0.8 KiB) and keeps only a duplicate of the descriptor;
// when bytes arrive, a new *net.TCPConn is made from it and rebound into
// the wrapper. A plain *net.TCPConn given to Serve is never parked deep:
// nothing else could see its replacement.
type Rebinder interface {
	// InnerTCP is the wrapped connection (nil if it is not TCP).
	InnerTCP() *net.TCPConn
	// RebindTCP replaces it; false when the wrapper was closed. nil: the
	// connection is parked deep; until the next RebindTCP the wrapper
	// holds nothing of it (and a Close closes nothing but the wrapper).
	RebindTCP(*net.TCPConn) bool
}

// deepen parks c, which is parked, deep (under p.mu): the event for a
// duplicate of its descriptor is armed, then Go's socket is closed.
func (p *poller) deepen(c *srvConn) {
	rb, ok := c.nc.(Rebinder)
	if !ok || c.tlsState != nil {
		return
	}
	inner := rb.InnerTCP()
	if inner == nil {
		return
	}
	rc, err := inner.SyscallConn()
	if err != nil {
		return
	}
	dfd := -1
	rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if e == 0 {
			dfd = int(r)
		}
	})
	if dfd < 0 {
		return
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(dfd), Pad: int32(c.gen)}
	if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, dfd, &ev) != nil {
		syscall.Close(dfd)
		return
	}
	// The old registration goes before Go closes the descriptor: the
	// open file lives on through dfd, and so would it.
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(c.fd), nil)
	p.parked[c.fd] = nil
	c.fd = int32(dfd)
	if dfd >= len(p.parked) {
		p.parked = append(p.parked, make([]*srvConn, dfd+1-len(p.parked))...)
	}
	p.parked[dfd] = c
	c.deep = true
	c.registered = false
	c.tcp = nil
	inner.Close()
	rb.RebindTCP(nil) // nothing of Go's socket stays reachable
}

// surface gives a connection woken from a deep park a Go socket again.
// false: it could not (c is closed by the caller).
func (c *srvConn) surface() bool {
	dfd := int(c.fd)
	syscall.EpollCtl(c.s.poll.epfd, syscall.EPOLL_CTL_DEL, dfd, nil)
	c.deep, c.fd = false, -1
	f := os.NewFile(uintptr(dfd), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return false
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok || !c.nc.(Rebinder).RebindTCP(tc) {
		nc.Close()
		return false
	}
	c.tcp = tc
	if rc, err := tc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { c.fd = int32(fd) })
	}
	return true
}

// dropDeep closes the descriptor of a connection parked deep.
func (c *srvConn) dropDeep() {
	if c.deep {
		c.deep = false
		syscall.Close(int(c.fd))
		c.fd = -1
	}
}
