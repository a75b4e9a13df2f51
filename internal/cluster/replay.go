package cluster

import (
	"errors"
	"io"
	"sync"
)

// replay lets a request body be sent again on a retry. It streams the body
// to the first attempt while keeping a copy of up to limit bytes; a retry
// replays the copy and then continues with the unread rest. Once more than
// limit bytes were consumed the body can no longer be replayed, and the
// request is not retried after that point.
type replay struct {
	mu       sync.Mutex
	src      io.ReadCloser
	buf      []byte
	limit    int64
	overflow bool
	eof      bool
	err      error
	gen      int
}

var errStaleAttempt = errors.New("request body belongs to an abandoned attempt")

// reader returns a fresh reader for a new attempt; readers of earlier
// attempts stop working (their transport may still be running).
func (r *replay) reader() io.ReadCloser {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	return &replayReader{r: r, gen: r.gen}
}

// replayable reports whether the body can still be sent again in full.
func (r *replay) replayable() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.overflow
}

type replayReader struct {
	r   *replay
	gen int
	pos int
}

func (rr *replayReader) Read(p []byte) (int, error) {
	r := rr.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if rr.gen != r.gen {
		return 0, errStaleAttempt
	}
	if rr.pos < len(r.buf) {
		n := copy(p, r.buf[rr.pos:])
		rr.pos += n
		return n, nil
	}
	if r.eof {
		return 0, io.EOF
	}
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.src.Read(p)
	if n > 0 {
		if !r.overflow && int64(len(r.buf)+n) <= r.limit {
			r.buf = append(r.buf, p[:n]...)
			rr.pos = len(r.buf)
		} else {
			r.overflow = true
			r.buf = nil
			rr.pos = 0
		}
	}
	switch {
	case err == io.EOF:
		r.eof = true
	case err != nil:
		r.err = err
	}
	return n, err
}

// Close does not close the client's body: a later attempt may need it. The
// HTTP server closes it when the handler returns.
func (rr *replayReader) Close() error { return nil }
