package route

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/spool"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Shadow sends one mirrored copy of a request to the shadow upstream and
// discards the answer, returning its status or the error
// (proxy.Proxy.Shadow). The request is the copy's own.
type Shadow interface {
	Shadow(r *http.Request) (status int, err error)
}

// Shadows is the state of one route's mirror that outlives a snapshot
// (internal/registry): the copies in flight, bounded together across
// reloads, and the context that owns their goroutines, cancelled when no
// snapshot mirrors that route to that upstream any more (or at exit).
type Shadows struct {
	ctx      context.Context
	cancel   context.CancelFunc
	inFlight atomic.Int64
}

// NewShadows returns the state of a mirror with nothing in flight.
func NewShadows() *Shadows {
	ctx, cancel := context.WithCancel(context.Background())
	return &Shadows{ctx: ctx, cancel: cancel}
}

// Close ends the copies in flight.
func (s *Shadows) Close() { s.cancel() }

// InFlight returns the copies being sent.
func (s *Shadows) InFlight() int64 { return s.inFlight.Load() }

// acquire takes an in-flight slot when fewer than limit are taken.
func (s *Shadows) acquire(limit int64) bool {
	if s.inFlight.Add(1) > limit {
		s.inFlight.Add(-1)
		return false
	}
	return true
}

func (s *Shadows) release() { s.inFlight.Add(-1) }

// Mirror copies a share of the requests it serves to a shadow upstream,
// fire-and-forget, and serves every request with Next: the shadow's
// answer, errors and latency never reach the client. A copy is dropped,
// never queued, when MaxInFlight copies are being sent or its body is over
// MaxBody (and then counted). The body is teed as Next reads it: a copy
// is sent once the body has been read to its end, and a body that the
// route buffers (request_buffering) is shared with the copy, not copied
// (see Tee). Requests asking for a protocol upgrade are not mirrored.
//
// Mirror sits inside the route's cache (a fresh hit is not mirrored) and
// around the choice of upstream (split, failover).
type Mirror struct {
	Next   http.Handler
	Shadow Shadow
	// State holds the copies in flight; NewMirror makes one when nil.
	State *Shadows
	// Route and Upstream label the metrics and the logs.
	Route, Upstream string
	// Percent is the share of requests copied, 0-100.
	Percent float64
	// MaxInFlight bounds the copies being sent; MaxBody the body a copy
	// carries, in bytes.
	MaxInFlight int64
	MaxBody     int64
	// Timeout bounds each copy's whole exchange with the shadow.
	Timeout time.Duration
	// Metrics, when set, receives the mirror series.
	Metrics *telemetry.Metrics
	Log     *slog.Logger

	counts [4]prometheus.Counter // by result: sent, error, dropped_in_flight, dropped_body
}

const (
	resultSent = iota
	resultError
	resultDroppedInFlight
	resultDroppedBody
)

var resultNames = [...]string{telemetry.MirrorSent, telemetry.MirrorError, telemetry.MirrorDroppedInFlight, telemetry.MirrorDroppedBody}

// NewMirror returns m ready to serve: its counters resolved and a state
// of its own when m.State is nil.
func NewMirror(m Mirror) *Mirror {
	if m.State == nil {
		m.State = NewShadows()
	}
	if m.Log == nil {
		m.Log = slog.Default()
	}
	if m.Metrics != nil {
		for i, name := range resultNames {
			m.counts[i] = m.Metrics.Mirror.Requests.WithLabelValues(m.Route, m.Upstream, name)
		}
	}
	return &m
}

func (m *Mirror) count(result int) {
	if c := m.counts[result]; c != nil {
		c.Inc()
	}
}

func (m *Mirror) sample() bool {
	switch {
	case m.Percent >= 100:
		return true
	case m.Percent <= 0:
		return false
	}
	return rand.Float64()*100 < m.Percent
}

func (m *Mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !m.sample() || len(r.Header["Upgrade"]) > 0 {
		m.Next.ServeHTTP(w, r)
		return
	}
	if !m.State.acquire(m.MaxInFlight) {
		m.count(resultDroppedInFlight)
		m.Next.ServeHTTP(w, r)
		return
	}
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	if hasBody && r.ContentLength > m.MaxBody {
		m.State.release()
		m.count(resultDroppedBody)
		m.Next.ServeHTTP(w, r)
		return
	}
	// The copy's headers are taken before Next edits r's for forwarding.
	j := m.newJob(r)
	if !hasBody {
		m.launch(j)
		m.Next.ServeHTTP(w, r)
		return
	}
	t := &Tee{src: r.Body, m: m, j: j, want: r.ContentLength}
	if r.ContentLength > 0 {
		t.buf = make([]byte, 0, r.ContentLength)
	}
	in := *r
	in.Body = t
	defer t.end() // also when Next panics (an aborted response): the slot is given back
	m.Next.ServeHTTP(w, &in)
}

// job is one copy to send.
type job struct {
	req *http.Request
	ex  exchange.Exchange // the copy's own: the request's must not be shared
	// body is the copy's body, size its length; held, when set, is the
	// route's buffered body the copy shares (released after the call).
	body io.Reader
	size int64
	held *spool.Body
}

func (m *Mirror) newJob(r *http.Request) *job {
	h := r.Header.Clone()
	delete(h, "Trailer") // the copy is sent with its Content-Length
	j := &job{req: &http.Request{
		Method:     r.Method,
		URL:        &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Proto:      r.Proto,
		ProtoMajor: r.ProtoMajor,
		ProtoMinor: r.ProtoMinor,
		Header:     h,
		Host:       r.Host,
		RemoteAddr: r.RemoteAddr,
		TLS:        r.TLS,
	}}
	if ex := exchange.From(r.Context()); ex != nil {
		j.ex.RequestID, j.ex.ClientIP, j.ex.PeerTrusted = ex.RequestID, ex.ClientIP, ex.PeerTrusted
		j.ex.Route = ex.Route
		j.ex.Trace = ex.Trace // the copy's CLIENT span is a child of the request's SERVER span
	}
	return j
}

// launch starts the copy's call; its goroutine is owned by m.State, whose
// context (and the timeout) ends it.
func (m *Mirror) launch(j *job) {
	go m.run(j)
}

func (m *Mirror) run(j *job) {
	defer m.State.release()
	if j.held != nil {
		defer j.held.Release()
	}
	defer func() {
		if v := recover(); v != nil {
			m.Log.Error("mirror: panic sending a copy", "route", m.Route, "upstream", m.Upstream, "panic", v)
			m.count(resultError)
		}
	}()
	ctx, cancel := context.WithTimeout(m.State.ctx, m.Timeout)
	defer cancel()
	c := &exchange.Context{Context: ctx, Exchange: j.ex}
	req := j.req.WithContext(c)
	if j.body != nil {
		req.Body = io.NopCloser(j.body)
		req.ContentLength = j.size
	} else {
		req.Body = http.NoBody
	}
	status, err := m.Shadow.Shadow(req)
	if err != nil {
		m.count(resultError)
		m.Log.Debug("mirror: copy failed", "route", m.Route, "upstream", m.Upstream, "err", err)
		return
	}
	m.count(resultSent)
	if m.Metrics != nil {
		m.Metrics.Mirror.Responses.WithLabelValues(m.Route, m.Upstream, m.Metrics.Code(status)).Inc()
	}
}

// Tee is a mirrored request's body: it passes the body through to the
// route and keeps a copy, up to the mirror's max_body_bytes, which is sent
// to the shadow once the body has been read to its end (or to its
// Content-Length). A body over the limit, or one the route did not read
// to its end, drops the copy.
//
// When the route buffers the body (request_buffering), the proxy Pauses
// the tee before reading the body into its buffer, and hands it the
// buffer (Spooled): a complete buffered body is shared with the copy, not
// copied again.
type Tee struct {
	src io.ReadCloser
	m   *Mirror
	j   *job

	mu     sync.Mutex
	buf    []byte
	want   int64 // the Content-Length, -1 when unknown
	paused bool
	done   bool // sent or dropped
}

func (t *Tee) Read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	t.mu.Lock()
	if !t.done && !t.paused {
		switch {
		case int64(len(t.buf))+int64(n) > t.m.MaxBody:
			t.drop()
		case n > 0:
			t.buf = append(t.buf, p[:n]...)
		}
		switch {
		case t.done:
		case err == io.EOF || (t.want >= 0 && int64(len(t.buf)) == t.want):
			t.j.body, t.j.size = bytes.NewReader(t.buf), int64(len(t.buf))
			t.send()
		case err != nil:
			t.drop() // the client's body broke off
		}
	}
	t.mu.Unlock()
	return n, err
}

// Close closes the request's body.
func (t *Tee) Close() error { return t.src.Close() }

// TooLarge reports whether the request's body ran over the listener's
// limit (exchange.BodyTooLarge).
func (t *Tee) TooLarge() bool {
	b, ok := t.src.(interface{ TooLarge() bool })
	return ok && b.TooLarge()
}

// Pause stops copying: what is read until Spooled goes into the route's
// buffer.
func (t *Tee) Pause() {
	t.mu.Lock()
	t.paused = true
	t.mu.Unlock()
}

// Spooled hands the tee the route's buffered body. A complete one is
// shared with the copy (kept until the copy's call ends). Of an
// incomplete one (auto, beyond body_buffer_bytes: the rest streams) the
// buffered part is copied, and the rest is teed as it streams.
func (t *Tee) Spooled(b *spool.Body) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	t.paused = false
	if b.Len() > t.m.MaxBody {
		t.drop()
		return
	}
	if b.Complete() {
		b.Retain()
		rd, _ := b.Open()
		t.j.held, t.j.body, t.j.size = b, rd, b.Len()
		t.send()
		return
	}
	rd, _ := b.Open()
	t.buf = make([]byte, b.Len())
	if _, err := io.ReadFull(rd, t.buf); err != nil {
		t.drop()
	}
}

// end is called once the route has served the request: a copy whose
// body was not read to its end is dropped.
func (t *Tee) end() {
	t.mu.Lock()
	if !t.done {
		t.drop()
	}
	t.mu.Unlock()
}

func (t *Tee) send() {
	t.done = true
	t.buf = nil
	t.m.launch(t.j)
}

func (t *Tee) drop() {
	t.done = true
	t.buf = nil
	t.m.State.release()
	t.m.count(resultDroppedBody)
}

var _ io.ReadCloser = (*Tee)(nil)

// ShadowHost is the Host a mirrored copy is sent with: the request's with
// "-shadow" appended to the host name, before the port (Envoy's rule):
// "api.example.com:8080" becomes "api.example.com-shadow:8080".
func ShadowHost(host string) string {
	if host == "" {
		return ""
	}
	port := ""
	if i := lastColon(host); i >= 0 {
		if _, err := strconv.ParseUint(host[i+1:], 10, 16); err == nil || i == len(host)-1 {
			host, port = host[:i], host[i:]
		}
	}
	return host + "-shadow" + port
}

// lastColon returns the index of the colon that starts host's port, or -1:
// in a bracketed IPv6 literal only a colon after the "]" counts.
func lastColon(host string) int {
	for i := len(host) - 1; i >= 0; i-- {
		switch host[i] {
		case ':':
			return i
		case ']':
			return -1
		}
	}
	return -1
}
