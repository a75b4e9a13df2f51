package h1

// A/B (issue 14, temporary): a short attempt to find the upstream response
// already there before the reading goroutine parks in the netpoller.

import (
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"syscall"
)

// spinReader reads an upstream connection through its raw descriptor: a
// read that would block first yields the processor up to tries times (the
// response is probably on its way) and only then parks.
type spinReader struct {
	nc    net.Conn
	rc    syscall.RawConn
	tries int
	fn    func(uintptr) bool
	p     []byte
	n     int
	err   error
	left  int
}

func spinTries() int {
	n, _ := strconv.Atoi(os.Getenv("RAMPART_X_UPSPIN"))
	return n
}

func (s *spinReader) init(nc net.Conn, tries int) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	s.nc, s.rc, s.tries = nc, rc, tries
	s.fn = s.try
	return true
}

func (s *spinReader) try(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), s.p)
		switch err {
		case nil:
			s.n, s.err = n, nil
			if n == 0 {
				s.err = io.EOF
			}
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if s.left > 0 {
				s.left--
				runtime.Gosched()
				continue
			}
			return false
		default:
			s.n, s.err = 0, &net.OpError{Op: "read", Net: "tcp", Source: s.nc.LocalAddr(), Addr: s.nc.RemoteAddr(), Err: os.NewSyscallError("read", err)}
			return true
		}
	}
}

func (s *spinReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.p, s.left = p, s.tries
	if err := s.rc.Read(s.fn); err != nil {
		s.p = nil
		return 0, err
	}
	s.p = nil
	return s.n, s.err
}
