// Package spool buffers request bodies before they are forwarded (a route's
// request_buffering, docs/proxying.md): in memory up to a per-body
// threshold drawn from one listener-wide budget, then, when asked, in a
// temporary file that is removed when the body is closed.
//
// A Spool belongs to one listener and lives as long as it does; a Body
// belongs to one request and is closed when the request ends.
package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Config sizes a Spool. The listener's limits fill it (config holds the
// defaults: limits.body_buffer_bytes, buffer_memory_bytes, buffer_dir).
type Config struct {
	// Memory is how many bytes of one body are kept in memory; 0 = none.
	Memory int64
	// Budget bounds the memory all bodies of the spool hold together.
	Budget int64
	// Dir is where temporary files are created; "" = os.TempDir().
	Dir string
}

// Spool buffers the request bodies of one listener.
type Spool struct {
	cfg  Config
	used atomic.Int64
}

// New returns a spool with cfg.
func New(cfg Config) *Spool { return &Spool{cfg: cfg} }

// InUse returns the bytes of memory the spool's open bodies hold.
func (s *Spool) InUse() int64 { return s.used.Load() }

// take reserves n bytes of the budget, if they are free.
func (s *Spool) take(n int64) bool {
	for {
		u := s.used.Load()
		if u+n > s.cfg.Budget {
			return false
		}
		if s.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// ErrSpill is what Read fails with when the temporary file cannot be
// created or written (the client's body was fine).
var ErrSpill = errors.New("spool request body to a temporary file")

// FilePrefix starts the name of every temporary file (in Config.Dir).
const FilePrefix = "rampart-body-"

// minChunk is the first memory buffer of a body; it doubles up to
// Config.Memory as the body grows.
const minChunk = 4 << 10

// maxIdleReads bounds consecutive reads that return nothing and no error
// (a broken reader), as bufio does.
const maxIdleReads = 100

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Read reads src into a Body: the first Config.Memory bytes into memory, as
// far as the budget allows. With toFile it writes the rest to a temporary
// file and reads src to its end, so the body is complete; without, it stops
// when the memory is full, and the body is complete only if src ended
// within it (one byte is read past the memory to find out).
//
// On an error reading src it returns that error and no body (nothing held);
// a failure of the temporary file wraps ErrSpill.
func (s *Spool) Read(src io.Reader, toFile bool) (*Body, error) {
	b := &Body{s: s}
	err := b.fill(src, toFile)
	if err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Body) fill(src io.Reader, toFile bool) error {
	s := b.s
	for idle := 0; ; {
		if len(b.mem) == cap(b.mem) && !b.grow() {
			break
		}
		n, err := src.Read(b.mem[len(b.mem):cap(b.mem)])
		b.mem = b.mem[:len(b.mem)+n]
		switch {
		case err == io.EOF:
			b.done = true
			return nil
		case err != nil:
			return err
		case n == 0:
			if idle++; idle >= maxIdleReads {
				return io.ErrNoProgress
			}
		default:
			idle = 0
		}
	}
	if toFile {
		return b.spill(src, s.cfg.Dir)
	}
	// The memory is full: one more byte says whether the body ended.
	for idle := 0; ; {
		n, err := src.Read(b.extra[:])
		b.nextra = n
		switch {
		case err == io.EOF:
			b.done = true
			return nil
		case err != nil:
			return err
		case n > 0:
			b.rest = src
			return nil
		}
		if idle++; idle >= maxIdleReads {
			return io.ErrNoProgress
		}
	}
}

// grow enlarges the memory buffer within Config.Memory and the budget,
// keeping what it holds; false when it cannot.
func (b *Body) grow() bool {
	limit := b.s.cfg.Memory
	c := int64(cap(b.mem))
	if c >= limit {
		return false
	}
	n := min(max(2*c, minChunk), limit)
	if !b.s.take(n - c) {
		return false
	}
	b.held += n - c
	m := make([]byte, len(b.mem), n)
	copy(m, b.mem)
	b.mem = m
	return true
}

// spill writes the rest of src to a temporary file, created once src
// yields a byte past the memory (a body that fits needs none).
func (b *Body) spill(src io.Reader, dir string) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for idle := 0; ; {
		n, rerr := src.Read(buf)
		if n > 0 {
			idle = 0
			if b.file == nil {
				f, err := os.CreateTemp(dir, FilePrefix+"*")
				if err != nil {
					return fmt.Errorf("%w: %w", ErrSpill, err)
				}
				b.file = f
			}
			if _, werr := b.file.Write(buf[:n]); werr != nil {
				return fmt.Errorf("%w: %w", ErrSpill, werr)
			}
			b.size += int64(n)
		}
		switch {
		case rerr == io.EOF:
			b.done = true
			return nil
		case rerr != nil:
			return rerr
		case n == 0:
			if idle++; idle >= maxIdleReads {
				return io.ErrNoProgress
			}
		}
	}
}

// Body is one buffered request body.
type Body struct {
	s    *Spool
	mem  []byte
	held int64 // budget reserved: cap(mem)
	file *os.File
	size int64 // bytes in file
	// extra is the byte read past a full memory buffer, when nextra is 1.
	extra  [1]byte
	nextra int
	done   bool      // the source ended: the body is complete
	rest   io.Reader // the unread rest of an incomplete body's source
	closed bool
	// shares counts the holders besides the owner (Retain); the memory
	// and the file are released when the owner has closed the body and
	// every holder has released it.
	shares atomic.Int32
	owner  atomic.Bool // the owner has closed the body
	mu     sync.Mutex  // serializes free between Close and Release
}

// Complete reports whether the whole body is buffered (its source ended).
func (b *Body) Complete() bool { return b.done }

// Len returns the bytes buffered: the body's length when it is complete.
func (b *Body) Len() int64 { return int64(len(b.mem)) + int64(b.nextra) + b.size }

// File returns the name of the body's temporary file, "" for none.
func (b *Body) File() string {
	if b.file == nil {
		return ""
	}
	return b.file.Name()
}

// Open returns a reader of the body from its start. A complete body can be
// opened any number of times, each reader independent of the others (one
// per upstream attempt). An incomplete body's reader goes on with the rest
// of the source after the buffered bytes: open it once.
//
// Close the body once no reader is needed any more: a reader of a closed
// body's file fails.
func (b *Body) Open() (io.ReadCloser, error) {
	return &reader{b: b}, nil
}

// Retain adds a holder of a complete body besides its owner (a mirrored
// copy of the request reading it after the request ended): the body's
// memory and file stay until the owner has closed it and every holder has
// called Release once. It is safe to call from another goroutine than the
// owner's, before the owner's Close.
func (b *Body) Retain() { b.shares.Add(1) }

// Release gives back a holder's Retain.
func (b *Body) Release() {
	if b.shares.Add(-1) == 0 && b.owner.Load() {
		b.free()
	}
}

// Close releases the body's memory and closes and removes its temporary
// file, once every holder (Retain) has released it. It may be called more
// than once.
func (b *Body) Close() error {
	if b.owner.Swap(true) {
		return nil
	}
	if b.shares.Load() > 0 {
		return nil // the last Release frees it
	}
	return b.free()
}

// free releases the memory and the file, once.
func (b *Body) free() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.s.used.Add(-b.held)
	b.held = 0
	if b.file == nil {
		return nil
	}
	err := b.file.Close()
	if rerr := os.Remove(b.file.Name()); err == nil {
		err = rerr
	}
	return err
}

// Buffered returns the complete body rc reads from its start, when rc is
// a reader Open returned and nothing has been read from it yet: a body a
// policy buffered already (the waf policy's inspection), which a route's
// request_buffering uses as it is instead of buffering it again.
func Buffered(rc io.Reader) (*Body, bool) {
	r, ok := rc.(*reader)
	if !ok || r.off != 0 || !r.b.done || r.b.closed {
		return nil, false
	}
	return r.b, true
}

type reader struct {
	b   *Body
	off int64 // into the buffered bytes: mem, extra, file
}

func (r *reader) Read(p []byte) (int, error) {
	b := r.b
	if len(p) == 0 {
		return 0, nil
	}
	mem := int64(len(b.mem))
	if r.off < mem {
		n := copy(p, b.mem[r.off:])
		r.off += int64(n)
		return n, nil
	}
	if r.off < mem+int64(b.nextra) {
		p[0] = b.extra[0]
		r.off++
		return 1, nil
	}
	if fo := r.off - mem - int64(b.nextra); fo < b.size {
		n, err := b.file.ReadAt(p[:min(int64(len(p)), b.size-fo)], fo)
		r.off += int64(n)
		if err == io.EOF && n > 0 {
			err = nil
		}
		return n, err
	}
	if b.done {
		return 0, io.EOF
	}
	return b.rest.Read(p)
}

func (r *reader) Close() error { return nil }

var _ io.ReadCloser = (*reader)(nil)
