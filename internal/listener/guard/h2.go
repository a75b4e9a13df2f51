package guard

import "time"

// h2Rest is the part of the HTTP/2 client preface after the
// "PRI * HTTP/2.0\r\n\r\n" head (RFC 9113 §3.4).
const h2Rest = "SM\r\n\r\n"

// HTTP/2 abuse budgets. net/http's HTTP/2 server already bounds concurrent
// streams, CONTINUATION sequences (CVE-2023-45288) and queued control
// frames; what it does not bound is the rate at which a client may open and
// at once reset streams (CVE-2023-44487, "rapid reset"), each of which
// starts a handler and so an upstream request.
const (
	// resetFloor resets are always allowed; beyond it a connection whose
	// client reset more than half the streams it opened is closed (Envoy's
	// premature-reset heuristic).
	resetFloor = 100
	// controlPerSecond bounds PING and SETTINGS frames (not acks) per
	// second, beyond one per frame of progress (HEADERS, DATA,
	// WINDOW_UPDATE) the client sent in that second: grpc-go clients send
	// a BDP-estimation PING about once per round trip while answers
	// arrive, well over 100 a second under load, and acknowledge the data
	// with WINDOW_UPDATEs; a flood of PINGs alone is still cut off.
	controlPerSecond = 100
)

// h2count follows HTTP/2 frame boundaries in the client's byte stream and
// counts the frames that matter for abuse; it never buffers payloads.
type h2count struct {
	skip     int // preface bytes still to skip
	hdr      [9]byte
	hn       int
	left     int // payload bytes of the current frame still to skip
	streams  int
	resets   int
	control  int
	progress int // HEADERS, DATA and WINDOW_UPDATE frames in the window
	window   time.Time
}

// feed accounts for b and reports false once the client is abusive.
func (h *h2count) feed(b []byte) bool {
	for len(b) > 0 {
		if h.skip > 0 {
			k := min(h.skip, len(b))
			h.skip -= k
			b = b[k:]
			continue
		}
		if h.left > 0 {
			k := min(h.left, len(b))
			h.left -= k
			b = b[k:]
			continue
		}
		k := copy(h.hdr[h.hn:], b)
		h.hn += k
		b = b[k:]
		if h.hn < len(h.hdr) {
			return true
		}
		h.hn = 0
		h.left = int(h.hdr[0])<<16 | int(h.hdr[1])<<8 | int(h.hdr[2])
		typ, flags := h.hdr[3], h.hdr[4]
		switch typ {
		case 0x0, 0x8: // DATA, WINDOW_UPDATE
			h.progress++
		case 0x1: // HEADERS
			h.streams++
			h.progress++
		case 0x3: // RST_STREAM
			h.resets++
			if h.resets > resetFloor && 2*h.resets > h.streams {
				return false
			}
		case 0x4, 0x6: // SETTINGS, PING
			if flags&0x1 != 0 {
				break // ack
			}
			now := time.Now()
			if now.Sub(h.window) > time.Second {
				h.window, h.control, h.progress = now, 0, 0
			}
			h.control++
			if h.control > controlPerSecond+h.progress {
				return false
			}
		}
	}
	return true
}
