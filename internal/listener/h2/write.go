package h2

import (
	"encoding/binary"
	"time"

	"golang.org/x/net/http2"
)

// The write queue. Frames are encoded into c.wbuf under c.mu; whoever
// appends to an idle queue becomes its one writer (flushLocked): it swaps
// the buffer out and writes it with one Write, outside the lock, until the
// queue is empty. Frames queued meanwhile by other streams leave with the
// next write.

// frameHeader appends a frame header.
func frameHeader(b []byte, length int, typ http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(typ), byte(flags),
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}

// All the append* helpers run with c.mu held.

func (c *conn) appendSettings(settings ...http2.Setting) {
	c.wbuf = frameHeader(c.wbuf, 6*len(settings), http2.FrameSettings, 0, 0)
	for _, s := range settings {
		c.wbuf = binary.BigEndian.AppendUint16(c.wbuf, uint16(s.ID))
		c.wbuf = binary.BigEndian.AppendUint32(c.wbuf, s.Val)
	}
}

func (c *conn) appendSettingsAck() {
	c.wbuf = frameHeader(c.wbuf, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
}

func (c *conn) appendPingAck(data [8]byte) {
	c.wbuf = frameHeader(c.wbuf, 8, http2.FramePing, http2.FlagPingAck, 0)
	c.wbuf = append(c.wbuf, data[:]...)
}

func (c *conn) appendWindowUpdate(id uint32, incr uint32) {
	c.wbuf = frameHeader(c.wbuf, 4, http2.FrameWindowUpdate, 0, id)
	c.wbuf = binary.BigEndian.AppendUint32(c.wbuf, incr&0x7fffffff)
}

func (c *conn) appendRST(id uint32, code http2.ErrCode) {
	c.wbuf = frameHeader(c.wbuf, 4, http2.FrameRSTStream, 0, id)
	c.wbuf = binary.BigEndian.AppendUint32(c.wbuf, uint32(code))
}

func (c *conn) appendGoAway(last uint32, code http2.ErrCode) {
	c.wbuf = frameHeader(c.wbuf, 8, http2.FrameGoAway, 0, 0)
	c.wbuf = binary.BigEndian.AppendUint32(c.wbuf, last&0x7fffffff)
	c.wbuf = binary.BigEndian.AppendUint32(c.wbuf, uint32(code))
}

func (c *conn) appendData(id uint32, p []byte, end bool) {
	var fl http2.Flags
	if end {
		fl = http2.FlagDataEndStream
	}
	c.wbuf = frameHeader(c.wbuf, len(p), http2.FrameData, fl, id)
	c.wbuf = append(c.wbuf, p...)
}

// appendHeaderBlock frames the HPACK block in c.hbuf as HEADERS and as
// many CONTINUATION frames as the peer's max frame size needs.
func (c *conn) appendHeaderBlock(id uint32, end bool) {
	blk := c.hbuf
	max := c.peerMaxFrame
	first := true
	for first || len(blk) > 0 {
		n := min(len(blk), max)
		var fl http2.Flags
		typ := http2.FrameContinuation
		if first {
			typ = http2.FrameHeaders
			if end {
				fl |= http2.FlagHeadersEndStream
			}
		}
		if n == len(blk) {
			fl |= http2.FlagHeadersEndHeaders
		}
		c.wbuf = frameHeader(c.wbuf, n, typ, fl, id)
		c.wbuf = append(c.wbuf, blk[:n]...)
		blk = blk[n:]
		first = false
	}
	c.hbuf = c.hbuf[:0]
}

// Write implements io.Writer for the HPACK encoder (into c.hbuf).
type hpackSink struct{ c *conn }

func (h hpackSink) Write(p []byte) (int, error) {
	h.c.hbuf = append(h.c.hbuf, p...)
	return len(p), nil
}

// flushLocked writes the queue unless another goroutine is writing it
// already (that one writes what was queued). c.mu is held; it is released
// during the write.
func (c *conn) flushLocked() {
	if c.writing || len(c.wbuf) == 0 {
		return
	}
	c.writing = true
	for len(c.wbuf) > 0 && c.werr == nil {
		buf := c.wbuf
		c.wbuf = c.wspare[:0]
		c.mu.Unlock()
		_, err := c.nc.Write(buf)
		c.mu.Lock()
		if cap(buf) <= 64<<10 {
			c.wspare = buf[:0]
		} else {
			c.wspare = nil
		}
		if err != nil && c.werr == nil {
			c.werr = err
			c.failLocked(err)
		}
	}
	if c.werr != nil {
		c.wbuf = c.wbuf[:0]
	}
	c.writing = false
	if c.wwait {
		c.wwait = false
		c.wcond.Broadcast()
	}
}

// drainLocked writes everything queued and waits for the writer to
// finish, giving up after d.
func (c *conn) drainLocked(d time.Duration) {
	c.nc.SetWriteDeadline(time.Now().Add(d))
	for c.writing {
		c.wwait = true
		c.wcond.Wait()
	}
	c.flushLocked()
}
