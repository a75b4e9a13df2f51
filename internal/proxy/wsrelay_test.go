package proxy

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// frame builds a WebSocket frame (FIN set) with opcode op and payload; with
// mask it is masked with a fixed key.
func frame(op byte, payload []byte, mask bool) []byte {
	b := []byte{0x80 | op}
	mbit := byte(0)
	if mask {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, mbit|byte(n))
	case n <= 0xffff:
		b = append(b, mbit|126, byte(n>>8), byte(n))
	default:
		b = append(b, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	p := append([]byte(nil), payload...)
	if mask {
		key := []byte{1, 2, 3, 4}
		b = append(b, key...)
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	return append(b, p...)
}

// readFrames splits b into frames, unmasking payloads.
func readFrames(t *testing.T, b []byte) (ops []byte, payloads [][]byte, masked []bool) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatalf("truncated frame header: % x", b)
		}
		hl := headerLen(b[1])
		if len(b) < hl {
			t.Fatalf("truncated frame header: % x", b)
		}
		n := payloadLen(b[:hl])
		if uint64(len(b)-hl) < n {
			t.Fatalf("truncated payload: want %d, have %d", n, len(b)-hl)
		}
		p := append([]byte(nil), b[hl:hl+int(n)]...)
		m := b[1]&0x80 != 0
		if m {
			key := b[hl-4 : hl]
			for i := range p {
				p[i] ^= key[i%4]
			}
		}
		ops, payloads, masked = append(ops, b[0]&0x0f), append(payloads, p), append(masked, m)
		b = b[hl+int(n):]
	}
	return
}

// TestWSPipeGoingAway feeds frames through a pipe in chunks of every size
// and asks for the close at every point of the stream: the output is always
// whole frames, the frames before the request intact, then exactly one
// close 1001, masked towards the upstream and unmasked towards the client.
func TestWSPipeGoingAway(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000) // 64-bit length
	mid := bytes.Repeat([]byte("y"), 300)   // 16-bit length
	for _, mask := range []bool{false, true} {
		var stream []byte
		frames := [][]byte{
			frame(0x1, []byte("hello"), !mask),
			frame(0x2, mid, !mask),
			frame(0x9, nil, !mask), // ping between frames
			frame(0x2, big, !mask),
			frame(0x1, []byte("after"), !mask),
		}
		for _, f := range frames {
			stream = append(stream, f...)
		}
		for _, chunk := range []int{1, 3, 7, 64, 1000, len(stream)} {
			for _, at := range []int{0, 1, 5, 9, 100, len(frames[0]) + 2, len(stream) - 3, len(stream)} {
				var out bytes.Buffer
				p := &wsPipe{dst: &out, mask: mask}
				for i := 0; i < len(stream); i += chunk {
					if i <= at && at < i+chunk {
						// Split the chunk at the request point.
						p.Write(stream[i:at])
						p.goingAway()
						p.Write(stream[at:min(i+chunk, len(stream))])
						continue
					}
					p.Write(stream[i:min(i+chunk, len(stream))])
				}
				if at >= len(stream) {
					p.goingAway()
				}
				ops, payloads, masked := readFrames(t, out.Bytes())
				if len(ops) == 0 || ops[len(ops)-1] != 0x8 {
					t.Fatalf("mask=%v chunk=%d at=%d: last frame opcode %v, want a close", mask, chunk, at, ops)
				}
				cl := payloads[len(payloads)-1]
				if code := binary.BigEndian.Uint16(cl); code != CloseGoingAway {
					t.Errorf("close code %d, want %d", code, CloseGoingAway)
				}
				if masked[len(masked)-1] != mask {
					t.Errorf("mask=%v: close frame masked=%v", mask, masked[len(masked)-1])
				}
				// The frames before the close are a prefix of the input, each
				// whole, and include every frame that had started at the
				// request point.
				started := 0
				for off := 0; started < len(frames) && off < at; started++ {
					off += len(frames[started])
				}
				if got := len(ops) - 1; got != started {
					t.Errorf("mask=%v chunk=%d at=%d: %d frames before the close, want %d", mask, chunk, at, got, started)
				}
				for i := 0; i < len(ops)-1 && i < len(frames); i++ {
					want := frames[i]
					if !bytes.Equal(out.Bytes()[offset(frames, i):offset(frames, i+1)], want) {
						t.Errorf("frame %d altered", i)
					}
				}
			}
		}
	}
}

func offset(frames [][]byte, i int) int {
	n := 0
	for _, f := range frames[:i] {
		n += len(f)
	}
	return n
}

// TestWSPipeNoSecondClose: when the source already sent a close frame, the
// gateway does not send one of its own.
func TestWSPipeNoSecondClose(t *testing.T) {
	var out bytes.Buffer
	p := &wsPipe{dst: &out}
	in := frame(0x8, []byte{0x03, 0xe8}, false)
	p.Write(in)
	p.goingAway()
	p.Write(frame(0x1, []byte("late"), false))
	if !bytes.Equal(out.Bytes(), in) {
		t.Errorf("output % x, want only the source's close % x", out.Bytes(), in)
	}
}

// FuzzWSPipe: whatever the source sends, the pipe forwards a prefix of it,
// followed by at most one close frame after a goingAway.
func FuzzWSPipe(f *testing.F) {
	f.Add(frame(0x1, []byte("hi"), true), 3, 1)
	f.Add(frame(0x2, bytes.Repeat([]byte("z"), 200), false), 50, 7)
	f.Fuzz(func(t *testing.T, in []byte, chunk, at int) {
		if chunk <= 0 || chunk > 1<<16 {
			chunk = 1
		}
		if at < 0 {
			at = -at
		}
		var out bytes.Buffer
		p := &wsPipe{dst: &out}
		asked := false
		for i := 0; i < len(in); i += chunk {
			if !asked && i >= at {
				p.goingAway()
				asked = true
			}
			p.Write(in[i:min(i+chunk, len(in))])
		}
		got := out.Bytes()
		var closeFrame []byte
		if p.closed && !p.forwardedClose {
			reason := "gateway shutting down"
			closeFrame = append([]byte{0x88, byte(2 + len(reason)), 0x03, 0xe9}, reason...)
		}
		if !bytes.HasSuffix(got, closeFrame) {
			t.Fatalf("output does not end with the close frame: % x", got)
		}
		fwd := got[:len(got)-len(closeFrame)]
		if !bytes.HasPrefix(in, fwd) {
			t.Fatalf("forwarded bytes are not a prefix of the input")
		}
		if !p.closed && len(fwd) != len(in) {
			t.Fatalf("no close, yet only %d of %d bytes forwarded", len(fwd), len(in))
		}
	})
}
