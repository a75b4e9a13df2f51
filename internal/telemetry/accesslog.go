package telemetry

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// AccessLog writes one JSON line per request. The line is encoded by hand
// (through log/slog a line cost about 2.3 µs and 3 allocations, this
// encoder a tenth of that and none: BenchmarkAccessLogEncode; issue 6) on
// the request's goroutine and appended, under a mutex held for the copy
// alone, to a batch buffer that one writer goroutine swaps for an empty one
// and writes in one Write, every FlushInterval or as soon as WakeBytes have
// gathered: a request neither writes nor wakes anyone (waking the writer
// for each line cost a sequential round trip 10-20 µs, a futex wake and a
// write each; BenchmarkGatewayAccessLog). The request path never waits for the
// writer: when the batch is full (a stalled disk or pipe) the line is
// dropped and counted (rampart_access_log_dropped_total).
// TestAccessLogMatchesSlog keeps the encoding equal to slog's JSONHandler
// byte for byte: any line is valid JSON.
type AccessLog struct {
	path    string // as configured: stdout, stderr or the file ("" for a Writer)
	file    bool   // path is a file, reopened by Reopen
	limit   int    // the most bytes the batch may hold
	mu      sync.Mutex
	batch   []byte        // lines waiting for the writer, guarded by mu
	wake    chan struct{} // one token: the batch has lines
	ctrl    chan ctrlReq
	done    chan struct{} // closed when the writer goroutine ends
	closed  atomic.Bool
	dropped prometheus.Counter // nil: not exported
	nDrop   atomic.Uint64

	once     sync.Once
	closeErr error

	// The writer goroutine's own.
	spare  []byte // the batch being written
	w      io.Writer
	closer io.Closer
}

// DefaultAccessLogBuffer is how many bytes of lines an access log holds
// for its writer before it drops lines: 2 MiB, some 5000 lines. While the
// writer writes one batch the next fills, so the log's memory is at most
// twice this.
const DefaultAccessLogBuffer = 2 << 20

// FlushInterval is the longest a line waits before it is written, and
// WakeBytes the batch size that has it written at once.
const (
	FlushInterval = 100 * time.Millisecond
	WakeBytes     = 64 << 10
)

// closeTimeout bounds how long Close waits for a stalled writer.
const closeTimeout = 5 * time.Second

// AccessLogConfig configures an access log.
type AccessLogConfig struct {
	// Path is stdout, stderr, off (or "") for none, or a file opened for
	// appending (and reopened by Reopen).
	Path string
	// Writer, when set, is written instead of Path (tests); it is closed
	// by Close if it is an io.Closer.
	Writer io.Writer
	// Buffer is how many bytes of lines may wait for the writer. Default
	// DefaultAccessLogBuffer.
	Buffer int
	// Dropped counts the lines dropped because the buffer was full (nil:
	// not exported; Dropped() counts them either way).
	Dropped prometheus.Counter
}

type ctrlOp uint8

const (
	opFlush ctrlOp = iota
	opReopen
	opClose
)

type ctrlReq struct {
	op    ctrlOp
	reply chan error
}

// OpenAccessLog opens the access log cfg describes and starts its writer.
// It returns nil for off.
func OpenAccessLog(cfg AccessLogConfig) (*AccessLog, error) {
	c, _ := cfg.Writer.(io.Closer)
	return openAccessLog(cfg, c)
}

func openAccessLog(cfg AccessLogConfig, closer io.Closer) (*AccessLog, error) {
	a := &AccessLog{dropped: cfg.Dropped}
	switch {
	case cfg.Writer != nil:
		a.w, a.closer = cfg.Writer, closer
	case cfg.Path == "off" || cfg.Path == "":
		return nil, nil
	case cfg.Path == "stdout":
		a.w = os.Stdout
	case cfg.Path == "stderr":
		a.w = os.Stderr
	default:
		f, err := openLogFile(cfg.Path)
		if err != nil {
			return nil, err
		}
		a.w, a.closer, a.file = f, f, true
	}
	if cfg.Writer == nil {
		a.path = cfg.Path
	}
	a.limit = cfg.Buffer
	if a.limit <= 0 {
		a.limit = DefaultAccessLogBuffer
	}
	a.batch = make([]byte, 0, min(a.limit, 64<<10))
	a.spare = make([]byte, 0, min(a.limit, 64<<10))
	a.wake = make(chan struct{}, 1)
	a.ctrl = make(chan ctrlReq)
	a.done = make(chan struct{})
	go a.run()
	return a, nil
}

// NewAccessLog writes JSON lines to w; closer (may be nil) is closed by
// Close. It is OpenAccessLog with a Writer and the default buffer.
func NewAccessLog(w io.Writer, closer io.Closer) *AccessLog {
	a, _ := openAccessLog(AccessLogConfig{Writer: w}, closer)
	return a
}

func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open access log: %w", err)
	}
	return f, nil
}

// Path is where the log writes, as configured: stdout, stderr or a file
// ("" for a Writer).
func (a *AccessLog) Path() string {
	if a == nil {
		return ""
	}
	return a.path
}

// Log writes e as one line, soon. It is safe for concurrent use and never
// blocks on the writer; a nil AccessLog logs nothing.
func (a *AccessLog) Log(e *Entry) {
	if a == nil {
		return
	}
	if a.closed.Load() {
		a.drop()
		return
	}
	// Encoded on the stack: only a line over 1 KiB allocates.
	var buf [1024]byte
	line := appendEntry(buf[:0], time.Now(), e)
	a.mu.Lock()
	if len(a.batch)+len(line) > a.limit {
		a.mu.Unlock()
		a.drop()
		return
	}
	a.batch = append(a.batch, line...)
	full := len(a.batch) >= WakeBytes
	a.mu.Unlock()
	if full {
		select {
		case a.wake <- struct{}{}:
		default: // the writer is woken already
		}
	}
}

func (a *AccessLog) drop() {
	a.nDrop.Add(1)
	if a.dropped != nil {
		a.dropped.Inc()
	}
}

// Dropped is the number of lines dropped because the buffer was full (or
// logged after Close).
func (a *AccessLog) Dropped() uint64 {
	if a == nil {
		return 0
	}
	return a.nDrop.Load()
}

// run is the writer goroutine.
func (a *AccessLog) run() {
	defer close(a.done)
	defer func() {
		if p := recover(); p != nil {
			// A writer that panics loses the log, never the gateway: from
			// now on every line is dropped and counted.
			a.closed.Store(true)
			fmt.Fprintf(os.Stderr, "rampart: access log writer panicked; lines are dropped from now on: %v\n", p)
		}
	}()
	tick := time.NewTicker(FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			a.write(false)
		case <-a.wake:
			a.write(false)
		case req := <-a.ctrl:
			a.write(req.op == opClose)
			var err error
			switch req.op {
			case opReopen:
				err = a.reopen()
			case opClose:
				if a.closer != nil {
					err = a.closer.Close()
				}
			}
			req.reply <- err
			if req.op == opClose {
				return
			}
		}
	}
}

// write swaps the batch for the spare and writes it, whole lines in one
// Write. The final write leaves no room, so that a line logged as Close
// runs is dropped and counted rather than lost.
func (a *AccessLog) write(final bool) {
	a.mu.Lock()
	b := a.batch
	a.batch = a.spare[:0]
	if final {
		a.limit = -1
	}
	a.mu.Unlock()
	if len(b) > 0 {
		a.w.Write(b) // as slog: a failed write loses the lines, nothing else
	}
	// A burst may have grown b (up to the limit): it is kept, so that
	// the next burst does not grow it again.
	a.spare = b[:0]
}

// reopen opens the log's file again (after logrotate renamed it); when
// that fails the old file stays in use.
func (a *AccessLog) reopen() error {
	if !a.file {
		return nil
	}
	f, err := openLogFile(a.path)
	if err != nil {
		return err
	}
	if a.closer != nil {
		a.closer.Close()
	}
	a.w, a.closer = f, f
	return nil
}

// do asks the writer for op and waits for its answer, at most
// closeTimeout (a writer stalled in a write does not answer).
func (a *AccessLog) do(op ctrlOp) error {
	req := ctrlReq{op: op, reply: make(chan error, 1)}
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case a.ctrl <- req:
	case <-a.done:
		return errLogClosed
	case <-t.C:
		return errLogStalled
	}
	select {
	case err := <-req.reply:
		return err
	case <-t.C:
		return errLogStalled
	}
}

var (
	errLogClosed  = errors.New("access log closed")
	errLogStalled = errors.New("access log writer stalled")
)

// Flush waits until every line logged before it is written.
func (a *AccessLog) Flush() error {
	if a == nil {
		return nil
	}
	return a.do(opFlush)
}

// Reopen writes what is waiting, then reopens the log's file by its path,
// so that a file renamed by logrotate is left alone and a new one is
// created (SIGUSR1). Logs that are not files do nothing.
func (a *AccessLog) Reopen() error {
	if a == nil || !a.file {
		return nil
	}
	return a.do(opReopen)
}

// Close writes every waiting line, closes the file, if any, and stops the
// writer. Lines logged after Close are dropped. It waits at most
// closeTimeout for a stalled writer.
func (a *AccessLog) Close() error {
	if a == nil {
		return nil
	}
	a.once.Do(func() {
		a.closed.Store(true)
		a.closeErr = a.do(opClose)
	})
	return a.closeErr
}

// Entry is what one access log line records.
type Entry struct {
	RequestID string
	// TraceID and SpanID are the request's SERVER span (all zero without
	// tracing; then they are left out).
	TraceID [16]byte
	SpanID  [8]byte
	// ClientIP is the client as the listener's trusted_proxies resolve it.
	ClientIP   string
	RemoteAddr string
	Consumer   string
	Method     string
	Host       string
	Path       string
	Proto      string
	Route      string
	Upstream   string
	Target     string
	Status     int
	// Code is the error code of a gateway-made error ("" otherwise).
	Code string
	// RefusedBy is "guard" for a request the framing guard answered
	// itself, with its Reason; both are left out when "".
	RefusedBy string
	Reason    string
	BytesIn   int64
	BytesOut  int64
	Duration  time.Duration
	// UpstreamDuration is the time from the first upstream attempt's
	// start to the last one's response head.
	UpstreamDuration time.Duration
	Attempts         int
	// RejectedBy is the name of the route policy that refused the request
	// (left out when "").
	RejectedBy string
	// WAFRules are the WAF rules that matched and WAFScore their anomaly
	// score (left out when none matched).
	WAFRules []int
	WAFScore int
	// TLSVersion (crypto/tls's VersionTLS13, ...) and SNI are the TLS
	// connection's; a TLSVersion of 0 (not TLS) leaves both out.
	TLSVersion uint16
	SNI        string
	UserAgent  string
	// GRPCStatus is a gRPC call's status code as decimal digits ("14"),
	// logged as the number grpc_status; "" (not gRPC) leaves it out.
	GRPCStatus string
}

// appendEntry appends e's line, stamped t, as slog's JSONHandler writes
// it for a record with the attributes in this order.
func appendEntry(b []byte, t time.Time, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","msg":"access","request_id":`...)
	b = appendString(b, e.RequestID)
	if e.TraceID != ([16]byte{}) {
		b = append(b, `,"trace_id":"`...)
		b = appendHex(b, e.TraceID[:])
		b = append(b, '"')
	}
	if e.SpanID != ([8]byte{}) {
		b = append(b, `,"span_id":"`...)
		b = appendHex(b, e.SpanID[:])
		b = append(b, '"')
	}
	b = append(b, `,"client_ip":`...)
	b = appendString(b, e.ClientIP)
	b = append(b, `,"remote_addr":`...)
	b = appendString(b, e.RemoteAddr)
	b = append(b, `,"consumer":`...)
	b = appendString(b, e.Consumer)
	b = append(b, `,"method":`...)
	b = appendString(b, e.Method)
	b = append(b, `,"host":`...)
	b = appendString(b, e.Host)
	b = append(b, `,"path":`...)
	b = appendString(b, e.Path)
	b = append(b, `,"proto":`...)
	b = appendString(b, e.Proto)
	b = append(b, `,"route":`...)
	b = appendString(b, e.Route)
	b = append(b, `,"upstream":`...)
	b = appendString(b, e.Upstream)
	b = append(b, `,"target":`...)
	b = appendString(b, e.Target)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"code":`...)
	b = appendString(b, e.Code)
	if e.RefusedBy != "" {
		b = append(b, `,"refused_by":`...)
		b = appendString(b, e.RefusedBy)
		b = append(b, `,"reason":`...)
		b = appendString(b, e.Reason)
	}
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.BytesOut, 10)
	b = append(b, `,"duration":`...)
	b = appendSeconds(b, e.Duration)
	b = append(b, `,"upstream_duration":`...)
	b = appendSeconds(b, e.UpstreamDuration)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(e.Attempts), 10)
	if e.RejectedBy != "" {
		b = append(b, `,"rejected_by":`...)
		b = appendString(b, e.RejectedBy)
	}
	if len(e.WAFRules) > 0 {
		b = append(b, `,"waf_rules":[`...)
		for i, id := range e.WAFRules {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(id), 10)
		}
		b = append(b, `],"waf_score":`...)
		b = strconv.AppendInt(b, int64(e.WAFScore), 10)
	}
	if e.TLSVersion != 0 {
		b = append(b, `,"tls_version":`...)
		b = appendString(b, tlsVersion(e.TLSVersion))
		b = append(b, `,"sni":`...)
		b = appendString(b, e.SNI)
	}
	b = append(b, `,"user_agent":`...)
	b = appendString(b, e.UserAgent)
	if e.GRPCStatus != "" {
		if n, err := strconv.Atoi(e.GRPCStatus); err == nil {
			b = append(b, `,"grpc_status":`...)
			b = strconv.AppendInt(b, int64(n), 10)
		}
	}
	return append(b, "}\n"...)
}

// tlsVersion names a TLS version as crypto/tls does ("TLS 1.3"), without
// allocating for the known ones.
func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLS 1.3"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS10:
		return "TLS 1.0"
	}
	return tls.VersionName(v)
}

// appendHex appends p in lower-case hex.
func appendHex(b []byte, p []byte) []byte {
	for _, c := range p {
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}

// appendSeconds appends d in seconds, to the microsecond, as appendFloat
// would format float64(d.Microseconds())/1e6, but by integer arithmetic:
// the float's shortest form is that decimal (at most 15 significant
// digits), and writing it directly costs a fraction of strconv's shortest
// float formatting.
func appendSeconds(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us <= -1e15 || us >= 1e15 {
		return appendFloat(b, float64(us)/1e6)
	}
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1e6, 10)
	frac := us % 1e6
	if frac == 0 {
		return b
	}
	var digits [7]byte
	digits[0] = '.'
	for i := 6; i > 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 7
	for digits[n-1] == '0' {
		n--
	}
	return append(b, digits[:n]...)
}

// appendFloat formats f as encoding/json does (which slog uses for
// floats): %f, or %e with a one-digit negative exponent kept short
// outside [1e-6, 1e21).
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a quoted JSON string, escaped as slog's
// JSONHandler escapes it: quote, backslash and control bytes (\n, \r, \t
// or \u00XX), invalid UTF-8 as U+FFFD, U+2028 and U+2029 as \u2028 and
// \u2029; everything else as is.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			// The replacement character itself, as slog writes it with
			// encoding/json v2 in the Go this module builds with (with
			// v1 it wrote the escape \ufffd; the test would notice).
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
