package listener_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file is the raw HTTP/2 client of the differential test
// (h2diff_test.go): it writes exactly the frames a case asks for, with the
// Framer and an HPACK encoder that validate nothing, keeps to the server's
// flow-control windows when it sends DATA, returns every window it is given,
// answers SETTINGS and PING, and records per stream what came back.

// h2Wait bounds every wait of the raw client: long enough for a loaded
// machine, short enough that a stream a server never answers does not hold
// the test for long.
const h2Wait = 5 * time.Second

// h2stream is what the client received on one stream.
type h2stream struct {
	Interim []int       // 1xx statuses, in order
	Status  int         // the final status (0: none)
	Header  http.Header // the final response's fields, normalised (normHeader)
	Body    string      // summarised (summary)
	Trailer http.Header
	Reset   string // the server's RST_STREAM error code ("" none)
	End     bool   // END_STREAM seen
}

// rawH2 is one raw client connection.
type rawH2 struct {
	c   net.Conn
	fr  *http2.Framer
	wmu sync.Mutex // guards fr's writes and enc
	enc *hpack.Encoder
	buf bytes.Buffer

	mu        sync.Mutex
	changed   chan struct{} // closed (and replaced) on every change
	settings  map[http2.SettingID]uint32
	connWin   int64 // what the client may still send on the connection
	initWin   int64 // the server's SETTINGS_INITIAL_WINDOW_SIZE
	win       map[uint32]int64
	maxFrame  int
	streams   map[uint32]*h2stream
	bodies    map[uint32]*bytes.Buffer
	order     []uint32 // streams the client opened, in order
	goaway    string
	closed    bool
	pingAcks  [][8]byte
	nextID    uint32
	clientErr string        // what stopped the client sending (finish: ClientErr)
	done      chan struct{} // the reader ended
}

// dialRaw opens a connection to addr (h2c with prior knowledge, or h2
// through ALPN when useTLS), sends the preface and an empty SETTINGS and
// starts the reader.
func dialRaw(t *testing.T, addr string, useTLS bool) *rawH2 {
	t.Helper()
	var c net.Conn
	var err error
	if useTLS {
		var tc *tls.Conn
		tc, err = tls.DialWithDialer(&net.Dialer{Timeout: h2Wait}, "tcp", addr,
			&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err == nil {
			if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
				tc.Close()
				t.Fatalf("ALPN negotiated %q, want h2", p)
			}
			c = tc
		}
	} else {
		c, err = net.DialTimeout("tcp", addr, h2Wait)
	}
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(4 * h2Wait))
	h := &rawH2{
		c: c, changed: make(chan struct{}), settings: map[http2.SettingID]uint32{},
		connWin: 65535, initWin: 65535, win: map[uint32]int64{}, maxFrame: 16384,
		streams: map[uint32]*h2stream{}, bodies: map[uint32]*bytes.Buffer{},
		nextID: 1, done: make(chan struct{}),
	}
	h.fr = http2.NewFramer(c, c)
	h.fr.AllowIllegalWrites = true
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.fr.MaxHeaderListSize = 1 << 20
	h.enc = hpack.NewEncoder(&h.buf)
	t.Cleanup(func() { h.c.Close(); <-h.done })
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	go h.read()
	return h
}

func (h *rawH2) notify() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// until waits for cond (called with h.mu held) for at most d.
func (h *rawH2) until(d time.Duration, cond func() bool) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		h.mu.Lock()
		ok := cond()
		ch := h.changed
		h.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

func (h *rawH2) stream(id uint32) *h2stream {
	s := h.streams[id]
	if s == nil {
		s = &h2stream{}
		h.streams[id] = s
		h.bodies[id] = &bytes.Buffer{}
	}
	return s
}

func (h *rawH2) read() {
	defer close(h.done)
	for {
		f, err := h.fr.ReadFrame()
		var reply func(fr *http2.Framer)
		h.mu.Lock()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A response the framer refuses (it never should).
				h.stream(se.StreamID).Reset = "client: " + se.Error()
				h.notify()
				h.mu.Unlock()
				continue
			}
			h.closed = true
			h.notify()
			h.mu.Unlock()
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				break
			}
			f.ForeachSetting(func(s http2.Setting) error {
				h.settings[s.ID] = s.Val
				switch s.ID {
				case http2.SettingInitialWindowSize:
					d := int64(s.Val) - h.initWin
					h.initWin = int64(s.Val)
					for id := range h.win {
						h.win[id] += d
					}
				case http2.SettingMaxFrameSize:
					h.maxFrame = int(s.Val)
				}
				return nil
			})
			reply = func(fr *http2.Framer) { fr.WriteSettingsAck() }
		case *http2.PingFrame:
			if f.IsAck() {
				h.pingAcks = append(h.pingAcks, f.Data)
				break
			}
			data := f.Data
			reply = func(fr *http2.Framer) { fr.WritePing(true, data) }
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				h.connWin += int64(f.Increment)
			} else {
				h.win[f.StreamID] += int64(f.Increment)
			}
		case *http2.MetaHeadersFrame:
			s := h.stream(f.StreamID)
			if s.Status == 0 {
				code, _ := strconv.Atoi(f.PseudoValue("status"))
				if code >= 100 && code < 200 {
					s.Interim = append(s.Interim, code)
				} else {
					s.Status, s.Header = code, fieldsHeader(f.RegularFields())
				}
			} else {
				s.Trailer = fieldsHeader(f.RegularFields())
			}
			s.End = s.End || f.StreamEnded()
		case *http2.DataFrame:
			s := h.stream(f.StreamID)
			h.bodies[f.StreamID].Write(f.Data())
			s.End = s.End || f.StreamEnded()
			if n := f.Header().Length; n > 0 {
				id, end := f.StreamID, s.End
				reply = func(fr *http2.Framer) {
					fr.WriteWindowUpdate(0, n)
					if !end {
						fr.WriteWindowUpdate(id, n)
					}
				}
			}
		case *http2.RSTStreamFrame:
			// The first reset is the answer; a later one (STREAM_CLOSED
			// for frames the client sent before it learnt of the first)
			// depends on timing.
			if s := h.stream(f.StreamID); s.Reset == "" {
				s.Reset = f.ErrCode.String()
			}
		case *http2.GoAwayFrame:
			if h.goaway != "" {
				h.goaway += "; "
			}
			h.goaway += fmt.Sprintf("%v last=%d", f.ErrCode, f.LastStreamID)
		}
		h.notify()
		h.mu.Unlock()
		if reply != nil {
			h.wmu.Lock()
			reply(h.fr)
			h.wmu.Unlock()
		}
	}
}

// id returns the next client stream id.
func (h *rawH2) id() uint32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.nextID
	h.nextID += 2
	return id
}

// hdrOpt shapes a HEADERS frame.
type hdrOpt struct {
	pad   uint8 // padding length
	split int   // send the block in this many frames (HEADERS + CONTINUATION)
}

// headers sends a header block of the name/value pairs fields on stream
// id, unvalidated, in frames of at most the server's frame size.
func (h *rawH2) headers(id uint32, end bool, opt hdrOpt, fields ...string) {
	h.mu.Lock()
	if _, ok := h.win[id]; !ok && id%2 == 1 {
		h.win[id] = h.initWin
		h.order = append(h.order, id)
	}
	h.stream(id)
	room := h.maxFrame - int(opt.pad) - 1
	h.mu.Unlock()
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.buf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		h.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	blk := slices.Clone(h.buf.Bytes())
	n := max(opt.split, (len(blk)+room-1)/room, 1)
	size := (len(blk) + n - 1) / n
	var frags [][]byte
	for len(blk) > size {
		frags = append(frags, blk[:size])
		blk = blk[size:]
	}
	frags = append(frags, blk)
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frags[0], EndStream: end,
		EndHeaders: len(frags) == 1, PadLength: opt.pad})
	for i, fr := range frags[1:] {
		h.fr.WriteContinuation(id, i == len(frags)-2, fr)
	}
}

// request opens a stream with a request's pseudo-header fields and extra
// fields; the body, if any, follows with data.
func (h *rawH2) request(method, path string, end bool, extra ...string) uint32 {
	id := h.id()
	h.headers(id, end, hdrOpt{}, reqFields(method, path, extra...)...)
	return id
}

func reqFields(method, path string, extra ...string) []string {
	return append([]string{":method", method, ":scheme", "http", ":authority", "gw.test", ":path", path}, extra...)
}

// data sends b on stream id in frames of at most frame bytes (and the
// server's frame size) with pad bytes of padding each, waiting for flow
// control credit; end sets END_STREAM on the last frame (an empty DATA
// frame when b is empty). It reports what stopped it.
func (h *rawH2) data(id uint32, end bool, b []byte, frame int, pad uint8) error {
	for {
		n := min(len(b), frame)
		cost := int64(n)
		if pad > 0 {
			cost += int64(pad) + 1
		}
		var stop error
		ok := h.until(h2Wait, func() bool {
			s := h.streams[id]
			switch {
			case h.closed:
				stop = errors.New("connection closed")
			case s != nil && s.Reset != "":
				stop = errors.New("stream reset")
			case cost > 0 && (h.connWin < cost || h.win[id] < cost):
				return false
			}
			if stop == nil {
				h.connWin -= cost
				h.win[id] -= cost
			}
			return true
		})
		if !ok {
			return errStalled
		}
		if stop != nil {
			return stop
		}
		last := n == len(b)
		h.wmu.Lock()
		var err error
		if pad > 0 {
			err = h.fr.WriteDataPadded(id, end && last, b[:n], make([]byte, pad))
		} else {
			err = h.fr.WriteData(id, end && last, b[:n])
		}
		h.wmu.Unlock()
		if err != nil {
			return errors.New("write failed")
		}
		b = b[n:]
		if last {
			return nil
		}
	}
}

// errStalled is data's error when the server grants no flow-control
// credit within h2Wait.
var errStalled = errors.New("flow-control window not opened")

// do runs raw writes under the write lock.
func (h *rawH2) do(f func(fr *http2.Framer)) {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	f(h.fr)
}

// finished reports whether stream id is answered or reset (h.mu held).
func (h *rawH2) finished(id uint32) bool {
	s := h.streams[id]
	return s != nil && (s.End || s.Reset != "")
}

// await waits until each stream in ids is answered or reset, or the
// connection is closed; it reports whether all finished.
func (h *rawH2) await(ids ...uint32) bool {
	return h.until(h2Wait, func() bool {
		if h.closed {
			return true
		}
		for _, id := range ids {
			if !h.finished(id) {
				return false
			}
		}
		return true
	})
}

// awaitClose waits until the server closes the connection.
func (h *rawH2) awaitClose(d time.Duration) bool {
	return h.until(d, func() bool { return h.closed })
}

// h2outcome is everything the raw differential test compares.
type h2outcome struct {
	Streams map[uint32]h2stream
	// Unfinished are streams the client opened that were neither
	// answered nor reset by the end of the case.
	Unfinished []uint32
	GoAway     string // the server's GOAWAYs: code and last stream id of each
	Closed     bool   // the server closed the connection
	Open       bool   // a new stream after the case was served
	PingAcks   int
	ClientErr  string // what stopped the client sending, if anything
	Settings   map[string]uint32
	Upstream   []upSeen
}

// finish waits for the opened streams, probes the connection with a new
// stream unless it is closed or going away, and returns the outcome.
func (h *rawH2) finish(probe bool) h2outcome {
	h.mu.Lock()
	ids := slices.Clone(h.order)
	h.mu.Unlock()
	h.await(ids...)
	var out h2outcome
	h.mu.Lock()
	alive := !h.closed && h.goaway == ""
	h.mu.Unlock()
	if probe && alive {
		// Give a connection error time to arrive before probing.
		h.until(50*time.Millisecond, func() bool { return h.closed })
		id := h.request("GET", "/probe", true)
		h.await(id)
		h.mu.Lock()
		s := h.streams[id]
		out.Open = s.Status == 200 && h.bodies[id].String() == "probe"
		delete(h.streams, id)
		h.order = slices.DeleteFunc(h.order, func(x uint32) bool { return x == id })
		h.mu.Unlock()
	}
	// After a GOAWAY the server closes the connection once its streams
	// are done (net/http: at once, or after a second for an error);
	// waiting for it makes Closed a property of the server, not of timing.
	h.mu.Lock()
	goingAway := h.goaway != ""
	h.mu.Unlock()
	if goingAway {
		h.awaitClose(3 * time.Second)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out.Streams = map[uint32]h2stream{}
	for id, s := range h.streams {
		v := *s
		v.Body = summary(h.bodies[id].Bytes())
		if v.End && v.Status != 0 && v.Reset == http2.ErrCodeNo.String() {
			// RST_STREAM NO_ERROR after a complete response only asks
			// the client to stop sending the rest of its body (RFC 9113
			// §8.1); whether and when a server sends it is its choice.
			v.Reset = ""
		}
		out.Streams[id] = v
	}
	for _, id := range h.order {
		if !h.finished(id) {
			out.Unfinished = append(out.Unfinished, id)
		}
	}
	out.GoAway, out.Closed, out.PingAcks = h.goaway, h.closed, len(h.pingAcks)
	out.ClientErr = h.clientErr
	return out
}

// fieldsHeader turns response fields into a header, normalised.
func fieldsHeader(fields []hpack.HeaderField) http.Header {
	h := http.Header{}
	for _, f := range fields {
		h.Add(f.Name, f.Value)
	}
	return normHeader(h)
}

// normHeader removes what differs between any two runs, not between the
// servers:
//   - Date: the clock (the upstream's, passed on, or the server's);
//   - Trailer: kept, but its names sorted (their order is a map's);
//   - X-Request-Id: random per request (the gateway's and the guard's);
//   - Traceparent, Tracestate: random trace and span ids, if tracing adds
//     them.
//
// Every other field is compared.
func normHeader(h http.Header) http.Header {
	h.Del("Date")
	for k, vv := range h {
		for i, v := range vv {
			if len(v) > 256 {
				vv[i] = summary([]byte(v)) // compared by size and hash
			}
		}
		h[k] = vv
	}
	if vv := h.Values("Trailer"); len(vv) > 0 {
		// The announcement's order means nothing (the gateway writes it
		// from a map).
		var names []string
		for _, v := range vv {
			for _, n := range strings.Split(v, ",") {
				names = append(names, strings.TrimSpace(n))
			}
		}
		slices.Sort(names)
		h.Set("Trailer", strings.Join(names, ", "))
	}
	for _, k := range []string{"X-Request-Id", "Traceparent", "Tracestate"} {
		if len(h.Values(k)) > 0 {
			h.Set(k, "(random)")
		}
	}
	return h
}

// summary shows a short body as it is and a long one by size and hash,
// with request ids (32 hex digits) masked.
func summary(b []byte) string {
	if len(b) <= 256 {
		return requestIDs.ReplaceAllString(string(b), "(random)")
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%d bytes sha256:%x", len(b), sum[:8])
}

// pattern is n bytes of a repeating printable pattern.
func pattern(n int) []byte {
	const p = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		b[i] = p[i%len(p)]
	}
	return b
}

func repeat(s string, n int) string { return strings.Repeat(s, n) }
