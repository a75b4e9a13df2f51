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
//
// mu guards the state and is never held while reading src (a streaming
// call's client may send its next message much later): src is read under
// readMu, so that the state stays available to finish, replayable and a
// new attempt meanwhile.
type replay struct {
	mu       sync.Mutex
	readMu   sync.Mutex
	src      io.ReadCloser
	buf      []byte
	limit    int64
	overflow bool
	eof      bool
	err      error
	gen      int
	// done: no attempt will be made again (the response head is in), so
	// nothing more is kept and the copy goes once it has been sent.
	done bool
}

// finish stops keeping the body: the call has its response head, after
// which nothing is sent again. The current reader still sends what it has
// not sent of the copy.
func (r *replay) finish() {
	r.mu.Lock()
	r.done = true
	r.mu.Unlock()
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

// errNotReplayable is again's error once the body outgrew the copy.
var errNotReplayable = errors.New("request body too large to send again")

// again is a Request.GetBody for the transport: a fresh reader while the
// body can still be sent again in full.
func (r *replay) again() (io.ReadCloser, error) {
	if !r.replayable() {
		return nil, errNotReplayable
	}
	return r.reader(), nil
}

type replayReader struct {
	r   *replay
	gen int
	pos int
}

func (rr *replayReader) Read(p []byte) (int, error) {
	r := rr.r
	if n, done, err := rr.fromCopy(p); done {
		return n, err
	}
	r.readMu.Lock()
	defer r.readMu.Unlock()
	// Another attempt's reader may have read (and kept) more meanwhile.
	if n, done, err := rr.fromCopy(p); done {
		return n, err
	}
	n, err := r.src.Read(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	stale := rr.gen != r.gen
	if n > 0 {
		switch {
		case !r.overflow && int64(len(r.buf)+n) <= r.limit:
			r.buf = append(r.buf, p[:n]...)
			if !stale {
				rr.pos = len(r.buf)
			}
		case stale && !r.overflow:
			// A newer attempt needs these bytes and they cannot be
			// kept: its body would have a hole. Fail it instead.
			r.err = errBodyLost
			r.overflow, r.buf = true, nil
		default:
			r.overflow, r.buf, rr.pos = true, nil, 0
		}
	}
	switch {
	case err == io.EOF:
		r.eof = true
	case err != nil && r.err == nil:
		r.err = err
	}
	if stale {
		return 0, errStaleAttempt
	}
	return n, err
}

// errBodyLost fails an attempt whose body an abandoned attempt consumed
// past what could be kept.
var errBodyLost = errors.New("request body consumed by an abandoned attempt")

// fromCopy serves p from the kept copy, or ends the read (stale reader,
// end or error of the body); done is false when src must be read.
func (rr *replayReader) fromCopy(p []byte) (n int, done bool, err error) {
	r := rr.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if rr.gen != r.gen {
		return 0, true, errStaleAttempt
	}
	if rr.pos < len(r.buf) {
		n := copy(p, r.buf[rr.pos:])
		rr.pos += n
		return n, true, nil
	}
	if r.done && r.buf != nil {
		r.buf, rr.pos, r.overflow = nil, 0, true
	}
	if r.eof {
		return 0, true, io.EOF
	}
	if r.err != nil {
		return 0, true, r.err
	}
	return 0, false, nil
}

// Close does not close the client's body: a later attempt may need it. The
// HTTP server closes it when the handler returns.
func (rr *replayReader) Close() error { return nil }
