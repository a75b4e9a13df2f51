package proxy

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"
)

// CloseGoingAway is the WebSocket close code a draining gateway sends
// (RFC 6455 section 7.4.1: an endpoint is "going away").
const CloseGoingAway = 1001

// wsPipe copies WebSocket frames from one side to the other and keeps track
// of frame boundaries, so that a draining gateway can put a close frame
// between two frames instead of cutting a connection mid-message. Control
// frames may come between the fragments of a message (RFC 6455 5.4), so a
// frame boundary is enough.
//
// The copier holds mu while it writes, and goingAway takes it too, so the
// injected frame never lands inside another one.
type wsPipe struct {
	dst io.Writer
	// mask: frames written towards the upstream (the gateway acts as the
	// client there) must be masked.
	mask bool

	mu sync.Mutex
	// Frame parsing state: hdr holds the part of a frame header read so
	// far; remaining is the payload left in the current frame.
	hdr       [14]byte
	hdrN      int
	remaining uint64
	// forwardedClose: a close frame already went through this pipe, so the
	// gateway must not send another.
	forwardedClose bool
	// pending: a close was asked for mid-frame; it goes out at the next
	// boundary. closed: the gateway's close frame went out, and whatever
	// the source sends after it is dropped.
	pending, closed bool
}

// headerLen is the full length of a frame header whose second byte is b1.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// atBoundary reports whether the next byte starts a frame. mu held.
func (p *wsPipe) atBoundary() bool { return p.hdrN == 0 && p.remaining == 0 }

// track follows the framing of b and returns how many bytes it consumed:
// all of b, or, with stop set, the bytes up to the first frame boundary it
// reaches. mu held.
func (p *wsPipe) track(b []byte, stop bool) int {
	i := 0
	for i < len(b) {
		if p.remaining > 0 {
			n := uint64(len(b) - i)
			if n > p.remaining {
				n = p.remaining
			}
			p.remaining -= n
			i += int(n)
		} else {
			p.hdr[p.hdrN] = b[i]
			p.hdrN++
			i++
			if p.hdrN >= 2 && p.hdrN == headerLen(p.hdr[1]) {
				p.remaining = payloadLen(p.hdr[:p.hdrN])
				if p.hdr[0]&0x0f == 0x8 {
					p.forwardedClose = true
				}
				p.hdrN = 0
			}
		}
		if stop && p.atBoundary() {
			return i
		}
	}
	return i
}

func payloadLen(h []byte) uint64 {
	switch n := h[1] & 0x7f; n {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(n)
	}
}

// sendClose writes the gateway's close frame (1001) and marks the pipe
// closed. mu held.
func (p *wsPipe) sendClose() error {
	p.pending, p.closed = false, true
	if p.forwardedClose {
		// The source already closed; a second close frame is not allowed.
		return nil
	}
	reason := "gateway shutting down"
	payload := make([]byte, 2+len(reason))
	binary.BigEndian.PutUint16(payload, CloseGoingAway)
	copy(payload[2:], reason)
	frame := []byte{0x88, byte(len(payload))}
	if p.mask {
		frame[1] |= 0x80
		var key [4]byte
		binary.BigEndian.PutUint32(key[:], rand.Uint32())
		frame = append(frame, key[:]...)
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	_, err := p.dst.Write(append(frame, payload...))
	return err
}

// Write makes a pipe an io.Writer (for the bytes the client sent before
// the switch).
func (p *wsPipe) Write(b []byte) (int, error) { return len(b), p.write(b) }

// write forwards b (bytes read from the source) to dst, minding frames.
func (p *wsPipe) write(b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil // after the gateway's close frame, nothing more goes out
	}
	n := p.track(b, p.pending)
	if _, err := p.dst.Write(b[:n]); err != nil {
		return err
	}
	if p.pending && p.atBoundary() {
		// The frame in progress is complete: the close goes next, and the
		// rest of b is dropped.
		return p.sendClose()
	}
	return nil
}

// goingAway sends the close frame now if the pipe is between frames, or
// asks the copier to send it at the next boundary.
func (p *wsPipe) goingAway() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.pending {
		return
	}
	if p.atBoundary() {
		p.sendClose()
		return
	}
	p.pending = true
}

// copyFrom copies src into the pipe until src ends or a write fails.
func (p *wsPipe) copyFrom(src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if werr := p.write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
