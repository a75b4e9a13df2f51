package listener_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/rampart-gw/rampart/internal/listener"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// The HTTP/2 differential test. Two gateways run in-process in front of one
// recording HTTP/1.1 upstream, one serving HTTP/2 with net/http's server and
// one with Rampart's own (RAMPART_HTTP2_SERVER, listener.HTTP2NetHTTP and
// listener.HTTP2Rampart). Each case sends the same frames to both, with a
// raw client (h2client_test.go) or with http2.Transport, and the test
// requires the same outcome: per stream the 1xx statuses, the status, the
// response fields (normHeader says which are ignored), the body, the
// trailers and the RST_STREAM code; per connection the GOAWAY codes and last
// stream ids, whether the server closed it and whether a new stream is
// still served afterwards; and what the upstream received (method, target,
// host, fields, length, framing, body, trailers). Where the servers may
// legitimately differ, the case's check says what each must do and its
// adjust maps the allowed answers to one before the comparison.
//
// Not compared, by design: how the response body is cut into DATA frames
// (and their padding), when WINDOW_UPDATEs come, HPACK encoding choices,
// GOAWAY debug data, and SETTINGS other than those the "settings" case
// names.

// h2Servers are the servers compared, by their RAMPART_HTTP2_SERVER names.
var h2Servers = []string{listener.HTTP2NetHTTP, listener.HTTP2Rampart}

var requestIDs = regexp.MustCompile(`[0-9a-f]{32}`)

// upSeen is what the upstream received of one request.
type upSeen struct {
	Method, URI, Host string
	Header            http.Header
	ContentLength     int64
	TransferEncoding  []string
	Body, BodyErr     string
	Trailer           http.Header
}

// upstream is the recording HTTP/1.1 upstream both gateways proxy to.
type upstream struct {
	addr   string
	mu     sync.Mutex
	seen   []upSeen
	active atomic.Int64
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: ln.Addr().String()}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: h2Wait}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/probe" {
		io.WriteString(w, "probe")
		return
	}
	u.active.Add(1)
	defer u.active.Add(-1)
	b, err := io.ReadAll(r.Body)
	s := upSeen{
		Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: normHeader(r.Header.Clone()),
		ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding, Body: summary(b),
	}
	if err != nil {
		s.BodyErr = "body read failed" // the text names the upstream's socket
	}
	if len(r.Trailer) > 0 {
		s.Trailer = r.Trailer.Clone()
	}
	u.mu.Lock()
	u.seen = append(u.seen, s)
	u.mu.Unlock()
	if err != nil {
		return
	}
	q := r.URL.Query()
	h := w.Header()
	switch r.URL.Path {
	case "/echo":
		h.Set("Content-Type", "application/octet-stream")
		w.Write(b)
	case "/size":
		n, _ := strconv.Atoi(q.Get("n"))
		h.Set("Content-Length", strconv.Itoa(n))
		w.Write(pattern(n))
	case "/trailers":
		h.Set("Trailer", "X-Sum, X-Count")
		io.WriteString(w, "body with trailers")
		w.(http.Flusher).Flush()
		h.Set("X-Sum", "abc")
		h.Set("X-Count", "1")
	case "/slow":
		d, _ := time.ParseDuration(q.Get("d"))
		time.Sleep(d)
		io.WriteString(w, "slow")
	case "/stream":
		for i := range 20 {
			fmt.Fprintf(w, "piece %02d;", i)
			w.(http.Flusher).Flush()
			time.Sleep(2 * time.Millisecond)
		}
	case "/status":
		code, _ := strconv.Atoi(q.Get("code"))
		h.Set("Etag", `"v1"`)
		w.WriteHeader(code)
		if code != 204 && code != 304 {
			io.WriteString(w, "status "+q.Get("code"))
		}
	case "/cookies":
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=2")
		h.Add("X-Multi", "one")
		h.Add("X-Multi", "two")
		io.WriteString(w, "cookies")
	default:
		h.Set("Content-Type", "text/plain")
		io.WriteString(w, "ok "+r.RequestURI)
	}
}

// take returns what the upstream received since the last take, once no
// request is in its handler, sorted (streams run concurrently).
func (u *upstream) take() []upSeen {
	deadline := time.Now().Add(h2Wait)
	for quiet := 0; quiet < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		if u.active.Load() == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.seen
	u.seen = nil
	slices.SortStableFunc(out, func(a, b upSeen) int {
		if c := strings.Compare(a.URI, b.URI); c != 0 {
			return c
		}
		return strings.Compare(a.Body, b.Body)
	})
	return out
}

// startGateway runs a gateway whose listener serves HTTP/2 with server,
// proxying everything to up; limits is a YAML flow map ("" for the
// defaults), tlsFiles a certificate and key (nil: plain, h2c).
func startGateway(t *testing.T, server, up, limits string, tlsFiles []string) *gwtest.Gateway {
	t.Helper()
	t.Setenv("RAMPART_HTTP2_SERVER", server) // read when the listener is built
	y := "listeners:\n  - name: public\n    address: \"127.0.0.1:0\"\n"
	if limits != "" {
		y += "    limits: " + limits + "\n"
	}
	if tlsFiles != nil {
		y += "    tls: {certificates: [{cert_file: \"" + tlsFiles[0] + "\", key_file: \"" + tlsFiles[1] + "\"}]}\n"
	}
	y += `admin:
  address: "off"
drain_timeout: 3s
upstreams:
  rec:
    targets: [{address: "` + up + `"}]
routes:
  - name: all
    match: {path: {prefix: /}}
    upstream: rec
    timeout: 5s
observability:
  access_log: {path: "off"}
`
	return gwtest.Start(t, y)
}

// h2case is one case of the raw differential test.
type h2case struct {
	name   string
	limits string // the listener's limits (YAML flow map); "" defaults
	// run sends the case's frames; the runner then waits for every
	// stream it opened and probes the connection.
	run     func(h *rawH2)
	noProbe bool
	// settings compares the server's SETTINGS (see settingNames).
	settings bool
	// check asserts what each server must do, on its own outcome.
	check func(t *testing.T, o h2outcome)
	// adjust maps the answers a case allows to one (the case's comment
	// says why they may differ), on each outcome before the comparison.
	adjust func(o *h2outcome)
}

// settingNames are the SETTINGS the "settings" case compares: the limits
// the listener configures. Others (HEADER_TABLE_SIZE,
// ENABLE_CONNECT_PROTOCOL, ...) are the server's own business.
var settingNames = map[http2.SettingID]string{
	http2.SettingMaxConcurrentStreams: "MAX_CONCURRENT_STREAMS",
	http2.SettingInitialWindowSize:    "INITIAL_WINDOW_SIZE",
	http2.SettingMaxFrameSize:         "MAX_FRAME_SIZE",
	http2.SettingMaxHeaderListSize:    "MAX_HEADER_LIST_SIZE",
}

func get(path string, extra ...string) func(h *rawH2) {
	return func(h *rawH2) { h.request("GET", path, true, extra...) }
}

// post sends body to path in frames of frame bytes; cl adds a matching
// content-length; pad pads each DATA frame.
func post(path string, body []byte, cl bool, frame int, pad uint8) func(h *rawH2) {
	return func(h *rawH2) {
		var extra []string
		if cl {
			extra = []string{"content-length", strconv.Itoa(len(body))}
		}
		id := h.request("POST", path, false, extra...)
		if err := h.data(id, true, body, frame, pad); errors.Is(err, errStalled) {
			// A reset or a closed connection that stopped the upload
			// is the server's answer, compared as such; a window that
			// never opens is a server that stopped reading.
			h.mu.Lock()
			h.clientErr = fmt.Sprintf("stream %d: %v", id, err)
			h.mu.Unlock()
		}
	}
}

// raw sends one header block of exactly fields on stream 1, with
// END_STREAM.
func raw(fields ...string) func(h *rawH2) {
	return func(h *rawH2) { h.headers(h.id(), true, hdrOpt{}, fields...) }
}

// statuses asserts the final status of each stream, in the order opened
// (0: reset).
func statuses(codes ...int) func(t *testing.T, o h2outcome) {
	return func(t *testing.T, o h2outcome) {
		t.Helper()
		for i, c := range codes {
			id := uint32(2*i + 1)
			if got := o.Streams[id].Status; got != c {
				t.Errorf("stream %d: status %d (reset %q), want %d", id, got, o.Streams[id].Reset, c)
			}
		}
		if len(o.Unfinished) > 0 {
			t.Errorf("streams %v neither answered nor reset", o.Unfinished)
		}
	}
}

// both runs checks in turn.
func both(checks ...func(t *testing.T, o h2outcome)) func(t *testing.T, o h2outcome) {
	return func(t *testing.T, o h2outcome) {
		t.Helper()
		for _, c := range checks {
			c(t, o)
		}
	}
}

func upstreamSaw(n int) func(t *testing.T, o h2outcome) {
	return func(t *testing.T, o h2outcome) {
		t.Helper()
		if len(o.Upstream) != n {
			t.Errorf("the upstream received %d requests, want %d: %+v", len(o.Upstream), n, o.Upstream)
		}
	}
}

func stillOpen(t *testing.T, o h2outcome) {
	t.Helper()
	if !o.Open {
		t.Errorf("the connection serves no new stream afterwards (GOAWAY %q, closed %v)", o.GoAway, o.Closed)
	}
}

// connError asserts that the server ended the connection with a GOAWAY of
// code.
func connError(code http2.ErrCode) func(t *testing.T, o h2outcome) {
	return func(t *testing.T, o h2outcome) {
		t.Helper()
		if !strings.HasPrefix(o.GoAway, code.String()+" ") {
			t.Errorf("GOAWAY %q, want %v", o.GoAway, code)
		}
	}
}

// streamReset asserts that stream id was reset with code.
func streamReset(id uint32, code http2.ErrCode) func(t *testing.T, o h2outcome) {
	return func(t *testing.T, o h2outcome) {
		t.Helper()
		if got := o.Streams[id].Reset; got != code.String() {
			t.Errorf("stream %d: reset %q (status %d), want %v", id, got, o.Streams[id].Status, code)
		}
	}
}

// malformed is the check and adjustment of a request RFC 9113 §8.1.1 calls
// malformed. net/http answers some of these with 400 (connection-specific
// fields: the h2spec 8.1.2.2 failure allow-listed in test/conformance) and
// resets others with PROTOCOL_ERROR; the RFC asks for a stream error of
// type PROTOCOL_ERROR, so a server may do either, as long as no upstream
// sees the request and the connection keeps serving. Both are mapped to
// one answer before the comparison.
func malformed() (func(t *testing.T, o h2outcome), func(o *h2outcome)) {
	check := func(t *testing.T, o h2outcome) {
		t.Helper()
		s := o.Streams[1]
		if s.Status != 400 && s.Reset != http2.ErrCodeProtocol.String() {
			t.Errorf("stream 1: status %d reset %q, want 400 or RST_STREAM PROTOCOL_ERROR", s.Status, s.Reset)
		}
		upstreamSaw(0)(t, o)
		stillOpen(t, o)
	}
	adjust := func(o *h2outcome) {
		s := o.Streams[1]
		if s.Status == 400 || s.Reset == http2.ErrCodeProtocol.String() {
			o.Streams[1] = h2stream{Reset: "(malformed: 400 or PROTOCOL_ERROR)"}
		}
	}
	return check, adjust
}

func malformedCase(name string, run func(h *rawH2)) h2case {
	c, a := malformed()
	return h2case{name: name, run: run, check: c, adjust: a}
}

func h2Cases() []h2case {
	big := pattern(1 << 20)
	cases := []h2case{
		{name: "settings", run: get("/"), settings: true, check: statuses(200)},
		{name: "get", run: get("/", "user-agent", "t/1", "accept", "*/*"), check: both(statuses(200), upstreamSaw(1))},
		{name: "get-query", run: get("/q?a=1&b=%20x&c=%2F&d")},
		{name: "get-escaped-path", run: get("/a%20b/%7Euser//x/./y/../z")},
		{name: "get-lowercase-method", run: raw(reqFields("get", "/lower")...)},
		{name: "options-star", run: raw(":method", "OPTIONS", ":scheme", "http", ":authority", "gw.test", ":path", "*")},
		{name: "head", run: func(h *rawH2) { h.request("HEAD", "/size?n=100", true) }, check: statuses(200)},
		{name: "response-0", run: get("/size?n=0")},
		{name: "response-1", run: get("/size?n=1")},
		{name: "response-16k", run: get("/size?n=16384")},
		// 1 MiB through the client's 65,535-byte windows: the server
		// must wait for the client's WINDOW_UPDATEs.
		{name: "response-1m", run: get("/size?n=1048576"), check: statuses(200)},
		{name: "response-streamed", run: get("/stream")},
		{name: "response-404", run: get("/status?code=404")},
		{name: "response-204", run: get("/status?code=204")},
		{name: "response-304", run: get("/status?code=304")},
		{name: "response-multi-value", run: get("/cookies")},
		{name: "post-0-end-headers", run: func(h *rawH2) { h.request("POST", "/echo", true) }},
		{name: "post-0-empty-data", run: post("/echo", nil, false, 1, 0)},
		{name: "post-0-content-length", run: post("/echo", nil, true, 1, 0)},
		{name: "post-1", run: post("/echo", []byte("x"), true, 16384, 0)},
		{name: "post-16k", run: post("/echo", big[:16384], true, 16384, 0)},
		{name: "post-16k-no-length", run: post("/echo", big[:16384], false, 16384, 0)},
		// 1 MiB against the server's 64 KiB stream window: the client
		// sends only what the server's WINDOW_UPDATEs allow.
		{name: "post-1m", run: post("/echo", big, true, 16384, 0), check: both(statuses(200), upstreamSaw(1))},
		{name: "post-1m-no-length", run: post("/echo", big, false, 16384, 0), check: statuses(200)},
		{name: "post-many-frames", run: post("/echo", big[:3500], false, 7, 0), check: statuses(200)},
		{name: "post-padded", run: func(h *rawH2) {
			id := h.id()
			h.headers(id, false, hdrOpt{pad: 200}, reqFields("POST", "/echo", "content-length", "300")...)
			h.data(id, true, big[:300], 100, 255)
		}, check: statuses(200)},
		{name: "continuation", run: func(h *rawH2) {
			h.headers(h.id(), true, hdrOpt{split: 4}, reqFields("GET", "/cont", "x-a", repeat("a", 300), "x-b", "b")...)
		}, check: statuses(200)},
		{name: "continuation-padded", run: func(h *rawH2) {
			h.headers(h.id(), true, hdrOpt{split: 3, pad: 17}, reqFields("GET", "/cont-pad", "x-a", repeat("a", 200))...)
		}, check: statuses(200)},
		{name: "cookies-joined", run: get("/c", "cookie", "a=1", "cookie", "b=2", "cookie", "c=3")},
		{name: "duplicate-fields", run: get("/d", "x-dup", "1", "x-dup", "2", "accept", "a/b", "accept", "c/d")},
		{name: "te-trailers", run: get("/te", "te", "trailers"), check: statuses(200)},
		// :authority wins over host for the request's host (RFC 9113
		// §8.3.1); both servers must pass the same to the gateway.
		{name: "authority-and-host", run: get("/ah", "host", "other.test")},
		{name: "host-without-authority", run: raw(":method", "GET", ":scheme", "http", ":path", "/h", "host", "gw.test")},
		// The guard's limits (its 431 JSON answer) sit below the
		// server's MAX_HEADER_LIST_SIZE (twice max_header_bytes).
		{name: "headers-near-limit", run: get("/near", "x-big", repeat("n", 58000)), check: statuses(200)},
		// The gateway's handler answers 431 with "Connection: close",
		// which net/http's HTTP/2 server turns into a graceful GOAWAY
		// (NO_ERROR) for the connection; a server must do the same with
		// a handler's Connection: close (pinned by the comparison).
		{name: "headers-over-limit", run: get("/over", "x-big", repeat("o", 70000)), check: both(statuses(431), upstreamSaw(0), connError(http2.ErrCodeNo))},
		// max_headers (100) is counted by the HTTP/1.1 parser only: on
		// HTTP/2 today 150 fields reach the upstream. Both servers must
		// agree (the comparison); enforcing it is the guard's business,
		// not the server's.
		{name: "too-many-fields", run: get("/many", func() []string {
			var f []string
			for i := range 150 {
				f = append(f, "x-f"+strconv.Itoa(i), "v")
			}
			return f
		}()...)},
		// Over the server's own MAX_HEADER_LIST_SIZE: net/http reads
		// the whole block and answers 431; RFC 9113 §10.5.1 also allows
		// a stream reset (or, for an HPACK error, a connection error).
		// Either way no upstream sees it. The answer is mapped to one.
		{name: "headers-over-list-size", run: get("/huge", "x-big", repeat("h", 200000)),
			check: func(t *testing.T, o h2outcome) {
				s := o.Streams[1]
				if s.Status != 431 && s.Reset == "" && o.GoAway == "" {
					t.Errorf("stream 1: status %d, reset %q, GOAWAY %q; want 431 or a reset", s.Status, s.Reset, o.GoAway)
				}
				upstreamSaw(0)(t, o)
			},
			adjust: func(o *h2outcome) {
				o.Streams[1] = h2stream{Reset: "(refused: 431 or reset)"}
				o.GoAway, o.Closed, o.Open = "", false, false
			}},
		{name: "trailers-response", run: get("/trailers"), check: func(t *testing.T, o h2outcome) {
			if o.Streams[1].Trailer.Get("X-Sum") != "abc" {
				t.Errorf("trailers %v", o.Streams[1].Trailer)
			}
		}},
		{name: "trailers-request", run: func(h *rawH2) {
			id := h.request("POST", "/echo", false, "te", "trailers")
			h.data(id, false, []byte("abc"), 100, 0)
			h.headers(id, true, hdrOpt{}, "x-trail", "t1", "x-other", "t2")
		}, check: statuses(200)},
		{name: "trailers-request-pseudo", run: func(h *rawH2) {
			id := h.request("POST", "/echo", false)
			h.data(id, false, []byte("abc"), 100, 0)
			h.headers(id, true, hdrOpt{}, ":path", "/x")
		}, check: streamReset(1, http2.ErrCodeProtocol)},
		{name: "trailers-request-no-end-stream", noProbe: true, run: func(h *rawH2) {
			id := h.request("POST", "/echo", false)
			h.data(id, false, []byte("abc"), 100, 0)
			h.headers(id, false, hdrOpt{}, "x-trail", "t1")
		}},
		{name: "expect-100-continue", run: func(h *rawH2) {
			id := h.request("POST", "/echo", false, "content-length", "3", "expect", "100-continue")
			h.until(time.Second, func() bool { return len(h.streams[id].Interim) > 0 })
			h.data(id, true, []byte("abc"), 100, 0)
		}, check: func(t *testing.T, o h2outcome) {
			if s := o.Streams[1]; !slices.Equal(s.Interim, []int{100}) || s.Status != 200 {
				t.Errorf("interim %v status %d, want 100 then 200", s.Interim, s.Status)
			}
		}},
		malformedCase("missing-path", raw(":method", "GET", ":scheme", "http", ":authority", "gw.test")),
		malformedCase("missing-method", raw(":scheme", "http", ":authority", "gw.test", ":path", "/")),
		malformedCase("missing-scheme", raw(":method", "GET", ":authority", "gw.test", ":path", "/")),
		malformedCase("empty-path", raw(reqFields("GET", "")...)),
		malformedCase("duplicate-path", raw(append(reqFields("GET", "/a"), ":path", "/b")...)),
		malformedCase("duplicate-method", raw(":method", "GET", ":method", "POST", ":scheme", "http", ":authority", "gw.test", ":path", "/")),
		malformedCase("unknown-pseudo", raw(reqFields("GET", "/", ":foo", "x")...)),
		malformedCase("response-pseudo-in-request", raw(reqFields("GET", "/", ":status", "200")...)),
		malformedCase("pseudo-after-regular", raw(":method", "GET", "x-a", "1", ":scheme", "http", ":authority", "gw.test", ":path", "/")),
		malformedCase("uppercase-name", raw(reqFields("GET", "/", "X-Upper", "1")...)),
		malformedCase("connection", raw(reqFields("GET", "/", "connection", "keep-alive")...)),
		malformedCase("keep-alive", raw(reqFields("GET", "/", "keep-alive", "timeout=5")...)),
		malformedCase("proxy-connection", raw(reqFields("GET", "/", "proxy-connection", "keep-alive")...)),
		malformedCase("upgrade", raw(reqFields("GET", "/", "upgrade", "websocket")...)),
		malformedCase("transfer-encoding", raw(reqFields("GET", "/", "transfer-encoding", "chunked")...)),
		malformedCase("te-gzip", raw(reqFields("GET", "/", "te", "gzip")...)),
		malformedCase("crlf-in-value", raw(reqFields("GET", "/", "x-a", "b\r\nx-injected: 1")...)),
		malformedCase("nul-in-value", raw(reqFields("GET", "/", "x-a", "b\x00c")...)),
		malformedCase("space-in-name", raw(reqFields("GET", "/", "x a", "1")...)),
		malformedCase("authority-with-space", raw(":method", "GET", ":scheme", "http", ":authority", "gw test", ":path", "/")),
		malformedCase("relative-path", raw(reqFields("GET", "admin")...)),
		{name: "connect", run: raw(":method", "CONNECT", ":authority", "gw.test:443"), check: both(upstreamSaw(0), stillOpen)},
	}
	cases = append(cases,
		h2case{name: "trace", run: raw(reqFields("TRACE", "/t")...), check: both(upstreamSaw(0), stillOpen)},
		// A content-length that the DATA frames contradict (RFC 9113
		// §8.1.1): the body read fails, the upstream never gets a
		// complete request.
		h2case{name: "content-length-more-than-data", run: func(h *rawH2) {
			id := h.request("POST", "/echo", false, "content-length", "10")
			h.data(id, true, []byte("abc"), 100, 0)
		}, check: both(stillOpen, func(t *testing.T, o h2outcome) {
			for _, u := range o.Upstream {
				if u.BodyErr == "" {
					t.Errorf("the upstream received a complete request: %+v", u)
				}
			}
		})},
		h2case{name: "content-length-less-than-data", run: func(h *rawH2) {
			id := h.request("POST", "/echo", false, "content-length", "3")
			h.data(id, true, []byte("abcdefghij"), 100, 0)
		}, check: stillOpen},
		h2case{name: "content-length-with-end-headers", run: func(h *rawH2) {
			h.request("POST", "/echo", true, "content-length", "5")
		}},
		h2case{name: "content-length-invalid", run: raw(reqFields("POST", "/echo", "content-length", "abc")...)},
		h2case{name: "content-length-conflicting", run: func(h *rawH2) {
			id := h.request("POST", "/echo", false, "content-length", "3", "content-length", "4")
			h.data(id, true, []byte("abc"), 100, 0)
		}, check: upstreamSaw(0)},
		h2case{name: "body-too-large", limits: "{max_body_bytes: 1000}", run: post("/echo", big[:2000], true, 16384, 0),
			check: both(statuses(413), upstreamSaw(0))},
		h2case{name: "body-too-large-no-length", limits: "{max_body_bytes: 1000}", run: post("/echo", big[:2000], false, 500, 0)},
		// The client resets its upload mid-body: only that stream ends.
		h2case{name: "rst-mid-body", run: func(h *rawH2) {
			id := h.request("POST", "/echo", false, "content-length", "10")
			h.data(id, false, []byte("abc"), 100, 0)
			time.Sleep(100 * time.Millisecond) // the body is being proxied
			h.do(func(fr *http2.Framer) { fr.WriteRSTStream(id, http2.ErrCodeCancel) })
			h.mu.Lock()
			if s := h.streams[id]; s.Reset == "" {
				s.Reset = "(client reset)"
			}
			h.mu.Unlock()
		}, check: stillOpen},
		h2case{name: "rst-while-waiting", run: func(h *rawH2) {
			id := h.request("GET", "/slow?d=500ms", true)
			time.Sleep(100 * time.Millisecond) // the request is at the upstream
			h.do(func(fr *http2.Framer) { fr.WriteRSTStream(id, http2.ErrCodeCancel) })
			h.mu.Lock()
			if s := h.streams[id]; s.Reset == "" {
				s.Reset = "(client reset)"
			}
			h.mu.Unlock()
		}, check: stillOpen},
		h2case{name: "window-update-stream-overflow", run: func(h *rawH2) {
			id := h.request("GET", "/slow?d=500ms", true)
			time.Sleep(100 * time.Millisecond) // the request is at the upstream
			h.do(func(fr *http2.Framer) { fr.WriteWindowUpdate(id, 1<<31-1) })
		}, check: both(streamReset(1, http2.ErrCodeFlowControl), stillOpen)},
		h2case{name: "window-update-connection-overflow", run: func(h *rawH2) {
			h.request("GET", "/slow?d=500ms", true)
			time.Sleep(100 * time.Millisecond) // the request is at the upstream
			h.do(func(fr *http2.Framer) { fr.WriteWindowUpdate(0, 1<<31-1) })
		}, check: connError(http2.ErrCodeFlowControl)},
		h2case{name: "window-update-stream-zero", run: func(h *rawH2) {
			id := h.request("GET", "/slow?d=500ms", true)
			time.Sleep(100 * time.Millisecond) // the request is at the upstream
			h.do(func(fr *http2.Framer) { fr.WriteWindowUpdate(id, 0) })
		}, check: streamReset(1, http2.ErrCodeProtocol)},
		h2case{name: "window-update-connection-zero", run: func(h *rawH2) {
			h.do(func(fr *http2.Framer) { fr.WriteWindowUpdate(0, 0) })
		}, check: connError(http2.ErrCodeProtocol)},
		// A small client window: the server sends 5,000 bytes in steps
		// the client's WINDOW_UPDATEs allow.
		h2case{name: "small-client-window", run: func(h *rawH2) {
			h.do(func(fr *http2.Framer) { fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000}) })
			h.request("GET", "/size?n=5000", true)
		}, check: statuses(200)},
		// Beyond max_concurrent_streams: RFC 9113 §5.1.2 allows a stream
		// error of PROTOCOL_ERROR or REFUSED_STREAM; net/http sends
		// PROTOCOL_ERROR once the client acknowledged the limit
		// (REFUSED_STREAM before). Both are mapped to one; either way
		// only the streams within the limit reach the upstream.
		h2case{name: "streams-beyond-limit", limits: "{max_concurrent_streams: 3}", run: func(h *rawH2) {
			h.until(time.Second, func() bool { return len(h.settings) > 0 })
			time.Sleep(20 * time.Millisecond) // the SETTINGS ack is out
			for range 5 {
				h.request("GET", "/slow?d=700ms", true)
			}
		}, check: func(t *testing.T, o h2outcome) {
			ok, refused := 0, 0
			for _, s := range o.Streams {
				switch {
				case s.Status == 200:
					ok++
				case s.Reset == http2.ErrCodeRefusedStream.String() || s.Reset == http2.ErrCodeProtocol.String():
					refused++
				}
			}
			if ok != 3 || refused != 2 {
				t.Errorf("%d streams answered, %d refused; want 3 and 2: %+v", ok, refused, o.Streams)
			}
			upstreamSaw(3)(t, o)
			stillOpen(t, o)
		}, adjust: func(o *h2outcome) {
			for id, s := range o.Streams {
				if s.Reset == http2.ErrCodeRefusedStream.String() || s.Reset == http2.ErrCodeProtocol.String() {
					s.Reset = "(refused: REFUSED_STREAM or PROTOCOL_ERROR)"
					o.Streams[id] = s
				}
			}
		}},
		h2case{name: "concurrent-within-limit", run: func(h *rawH2) {
			for i := range 20 {
				h.request("GET", "/c/"+strconv.Itoa(i), true)
			}
		}, check: upstreamSaw(20)},
		h2case{name: "ping", run: func(h *rawH2) {
			h.do(func(fr *http2.Framer) { fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}) })
			h.until(h2Wait, func() bool { return len(h.pingAcks) > 0 })
		}, check: func(t *testing.T, o h2outcome) {
			if o.PingAcks != 1 {
				t.Errorf("%d PING acks, want 1", o.PingAcks)
			}
		}},
		h2case{name: "unknown-frame-ignored", run: func(h *rawH2) {
			id := h.request("POST", "/echo", false)
			h.do(func(fr *http2.Framer) { fr.WriteRawFrame(0xfa, 0, id, []byte("ignore me")) })
			h.data(id, true, []byte("after"), 100, 0)
		}, check: statuses(200)},
		h2case{name: "priority-ignored", run: func(h *rawH2) {
			h.do(func(fr *http2.Framer) {
				fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 10})
			})
			h.request("GET", "/prio", true)
		}},
		h2case{name: "data-on-stream-0", run: func(h *rawH2) {
			h.do(func(fr *http2.Framer) { fr.WriteData(0, false, []byte("x")) })
		}, check: connError(http2.ErrCodeProtocol)},
		h2case{name: "headers-on-even-stream", run: func(h *rawH2) {
			h.headers(2, true, hdrOpt{}, reqFields("GET", "/even")...)
		}, check: connError(http2.ErrCodeProtocol)},
		h2case{name: "headers-on-closed-stream", run: func(h *rawH2) {
			id := h.request("GET", "/first", true)
			h.await(id)
			h.headers(id, true, hdrOpt{}, reqFields("GET", "/again")...)
			h.awaitClose(time.Second)
		}},
		h2case{name: "data-after-end-stream", run: func(h *rawH2) {
			id := h.request("GET", "/slow?d=500ms", true)
			time.Sleep(100 * time.Millisecond) // the request is at the upstream
			h.do(func(fr *http2.Framer) { fr.WriteData(id, true, []byte("late")) })
		}},
		h2case{name: "continuation-interrupted", noProbe: true, run: func(h *rawH2) {
			h.do(func(fr *http2.Framer) {
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x82}, EndStream: true})
				fr.WritePing(false, [8]byte{})
			})
			h.awaitClose(time.Second)
		}, check: connError(http2.ErrCodeProtocol)},
	)
	return cases
}

// runH2Case runs tc against a gateway per server and compares.
func runH2Case(t *testing.T, tc h2case, up *upstream, addrs func(limits string) []string, useTLS bool) {
	t.Helper()
	outs := make([]h2outcome, len(h2Servers))
	for i, server := range h2Servers {
		up.take()
		h := dialRaw(t, addrs(tc.limits)[i], useTLS)
		tc.run(h)
		o := h.finish(!tc.noProbe)
		o.Upstream = up.take()
		if tc.settings {
			h.mu.Lock()
			o.Settings = map[string]uint32{}
			for id, name := range settingNames {
				if v, ok := h.settings[id]; ok {
					o.Settings[name] = v
				}
			}
			h.mu.Unlock()
		}
		if tc.check != nil {
			t.Run(server, func(t *testing.T) { tc.check(t, o) })
		}
		if tc.adjust != nil {
			tc.adjust(&o)
		}
		outs[i] = o
	}
	if !reflect.DeepEqual(outs[0], outs[1]) {
		t.Errorf("%s and %s differ:\n%s", h2Servers[0], h2Servers[1], diffH2(outs[0], outs[1]))
	}
	if testing.Verbose() {
		t.Logf("outcome: %s", showH2(outs[0]))
	}
}

// h2Gateways starts, per limits asked for, one gateway per server (kept
// for the rest of the test) and returns their addresses in h2Servers
// order.
func h2Gateways(t *testing.T, up *upstream, tlsFiles []string) func(limits string) []string {
	gws := map[string][]string{}
	return func(limits string) []string {
		if a, ok := gws[limits]; ok {
			return a
		}
		var a []string
		for _, s := range h2Servers {
			a = append(a, startGateway(t, s, up.addr, limits, tlsFiles).Addr)
		}
		gws[limits] = a
		return a
	}
}

// reportServers logs which server each column really runs: a server that
// is not built in falls back to net/http (listener.Listener.HTTP2Server),
// and the comparison is then net/http against itself.
func reportServers(t *testing.T) {
	t.Helper()
	for _, s := range h2Servers {
		l, err := listener.Listen(listener.Config{Address: "127.0.0.1:0", HTTP2Server: s}, http.NotFoundHandler(), listener.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if got := l.HTTP2Server(); got != s {
			t.Logf("RAMPART_HTTP2_SERVER=%s is served by %s in this build: both columns run %s", s, got, got)
		}
		l.Close()
	}
}

// TestH2Differential runs every raw case over h2c (prior knowledge).
func TestH2Differential(t *testing.T) {
	reportServers(t)
	up := newUpstream(t)
	addrs := h2Gateways(t, up, nil)
	for _, tc := range h2Cases() {
		t.Run(tc.name, func(t *testing.T) { runH2Case(t, tc, up, addrs, false) })
	}
}

// TestH2DifferentialTLS runs part of the raw cases over TLS, HTTP/2
// negotiated through ALPN.
func TestH2DifferentialTLS(t *testing.T) {
	reportServers(t)
	up := newUpstream(t)
	addrs := h2Gateways(t, up, selfSigned(t))
	some := map[string]bool{
		"settings": true, "get": true, "head": true, "response-1m": true, "post-1m": true,
		"post-many-frames": true, "post-padded": true, "continuation": true, "headers-over-limit": true,
		"trailers-response": true, "trailers-request": true, "expect-100-continue": true,
		"uppercase-name": true, "connection": true, "content-length-more-than-data": true,
		"rst-mid-body": true, "window-update-connection-overflow": true, "streams-beyond-limit": true,
		"ping": true, "data-on-stream-0": true,
	}
	n := 0
	for _, tc := range h2Cases() {
		if !some[tc.name] {
			continue
		}
		n++
		t.Run(tc.name, func(t *testing.T) { runH2Case(t, tc, up, addrs, true) })
	}
	if n != len(some) {
		t.Errorf("ran %d cases, listed %d: a name in the list matches no case", n, len(some))
	}
}

// tlsOrH2C names the transport of a subtest.
func tlsOrH2C(useTLS bool) string {
	if useTLS {
		return "tls"
	}
	return "h2c"
}

// trOutcome is what http2.Transport received of one request.
type trOutcome struct {
	Status   int
	Header   http.Header
	Body     string
	Trailer  http.Header
	Err      string
	Upstream []upSeen
}

// TestH2DifferentialTransport sends requests with golang.org/x/net's
// http2.Transport, as a real client would, over h2c and TLS.
func TestH2DifferentialTransport(t *testing.T) {
	reportServers(t)
	up := newUpstream(t)
	files := selfSigned(t)
	big := pattern(1 << 20)
	type trCase struct {
		name string
		req  func(base string) *http.Request
	}
	newReq := func(method, path string, body io.Reader) func(string) *http.Request {
		return func(base string) *http.Request {
			r, _ := http.NewRequest(method, base+path, body)
			return r
		}
	}
	cases := []trCase{
		{"get", newReq("GET", "/tr?x=1", nil)},
		{"head", newReq("HEAD", "/size?n=10", nil)},
		{"get-1m", newReq("GET", "/size?n=1048576", nil)},
		{"post-16k", func(base string) *http.Request {
			return newReq("POST", "/echo", strings.NewReader(string(big[:16384])))(base)
		}},
		{"post-1m", func(base string) *http.Request {
			return newReq("POST", "/echo", strings.NewReader(string(big)))(base)
		}},
		// No length, many small writes: many DATA frames.
		{"post-streamed", func(base string) *http.Request {
			pr, pw := io.Pipe()
			go func() {
				for i := range 100 {
					fmt.Fprintf(pw, "chunk %03d;", i)
				}
				pw.Close()
			}()
			return newReq("POST", "/echo", pr)(base)
		}},
		{"request-trailers", func(base string) *http.Request {
			pr, pw := io.Pipe()
			r := newReq("POST", "/echo", pr)(base)
			r.Trailer = http.Header{"X-Trail": nil}
			go func() {
				io.WriteString(pw, "body then trailers")
				r.Trailer.Set("X-Trail", "t1")
				pw.Close()
			}()
			return r
		}},
		{"response-trailers", newReq("GET", "/trailers", nil)},
		{"response-streamed", newReq("GET", "/stream", nil)},
		{"cookies", func(base string) *http.Request {
			r := newReq("GET", "/ck", nil)(base)
			r.Header.Add("Cookie", "a=1")
			r.Header.Add("Cookie", "b=2")
			return r
		}},
	}
	for _, useTLS := range []bool{false, true} {
		t.Run(tlsOrH2C(useTLS), func(t *testing.T) {
			var tlsFiles []string
			if useTLS {
				tlsFiles = files
			}
			clients := make([]*http.Client, len(h2Servers))
			bases := make([]string, len(h2Servers))
			for i, s := range h2Servers {
				addr := startGateway(t, s, up.addr, "", tlsFiles).Addr
				tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
				bases[i] = "https://" + addr
				if !useTLS {
					tr.AllowHTTP = true
					tr.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
						var d net.Dialer
						return d.DialContext(ctx, network, addr)
					}
					bases[i] = "http://" + addr
				}
				t.Cleanup(tr.CloseIdleConnections)
				clients[i] = &http.Client{Transport: tr, Timeout: h2Wait}
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					outs := make([]trOutcome, len(h2Servers))
					for i := range h2Servers {
						up.take()
						r := tc.req(bases[i])
						r.Host = "gw.test"
						var o trOutcome
						resp, err := clients[i].Do(r)
						if err != nil {
							o.Err = err.Error()
						} else {
							b, err := io.ReadAll(resp.Body)
							resp.Body.Close()
							if err != nil {
								o.Err = err.Error()
							}
							o.Status, o.Header, o.Body = resp.StatusCode, normHeader(resp.Header), summary(b)
							if len(resp.Trailer) > 0 {
								o.Trailer = resp.Trailer
							}
						}
						o.Upstream = up.take()
						if o.Err != "" || o.Status != 200 {
							t.Errorf("%s: status %d, error %q", h2Servers[i], o.Status, o.Err)
						}
						outs[i] = o
					}
					if !reflect.DeepEqual(outs[0], outs[1]) {
						t.Errorf("%s and %s differ:\n  %s: %+v\n  %s: %+v", h2Servers[0], h2Servers[1], h2Servers[0], outs[0], h2Servers[1], outs[1])
					}
				})
			}
		})
	}
}

// TestH2DifferentialShutdown checks GOAWAY on a graceful shutdown with two
// streams in flight: both complete, a stream opened after the GOAWAY is not
// served, and the connection is closed once the streams are done.
func TestH2DifferentialShutdown(t *testing.T) {
	reportServers(t)
	up := newUpstream(t)
	outs := make([]h2outcome, len(h2Servers))
	for i, server := range h2Servers {
		up.take()
		g := startGateway(t, server, up.addr, "", nil)
		h := dialRaw(t, g.Addr, false)
		a := h.request("GET", "/slow?d=800ms", true)
		b := h.request("GET", "/slow?d=800ms&b", true)
		gwtest.WaitFor(t, h2Wait, "both streams at the upstream", func() bool { return up.active.Load() == 2 })
		stopped := make(chan struct{})
		go func() { g.Stop(); close(stopped) }()
		if !h.until(h2Wait, func() bool { return h.goaway != "" }) {
			t.Errorf("%s: no GOAWAY on shutdown", server)
		}
		late := h.request("GET", "/late", true)
		h.await(a, b)
		h.awaitClose(h2Wait)
		<-stopped
		o := h.finish(false)
		o.Upstream = up.take()
		t.Run(server, func(t *testing.T) {
			for _, id := range []uint32{a, b} {
				if s := o.Streams[id]; s.Status != 200 || s.Body != "slow" {
					t.Errorf("in-flight stream %d: status %d body %q reset %q", id, s.Status, s.Body, s.Reset)
				}
			}
			if s := o.Streams[late]; s.Status != 0 {
				t.Errorf("stream %d opened after the GOAWAY was served: %d", late, s.Status)
			}
			if !strings.HasPrefix(o.GoAway, "NO_ERROR ") {
				t.Errorf("GOAWAY %q, want NO_ERROR", o.GoAway)
			}
			if !o.Closed {
				t.Error("connection not closed after the in-flight streams")
			}
			upstreamSaw(2)(t, o)
			t.Logf("outcome: %s", showH2(o))
		})
		outs[i] = o
	}
	if !reflect.DeepEqual(outs[0], outs[1]) {
		t.Errorf("%s and %s differ:\n%s", h2Servers[0], h2Servers[1], diffH2(outs[0], outs[1]))
	}
}

func diffH2(a, b h2outcome) string {
	var sb strings.Builder
	d := func(what string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			fmt.Fprintf(&sb, "  %s:\n    %-8s %+v\n    %-8s %+v\n", what, h2Servers[0]+":", x, h2Servers[1]+":", y)
		}
	}
	ids := map[uint32]bool{}
	for id := range a.Streams {
		ids[id] = true
	}
	for id := range b.Streams {
		ids[id] = true
	}
	for _, id := range slices.Sorted(mapKeys(ids)) {
		d(fmt.Sprintf("stream %d", id), a.Streams[id], b.Streams[id])
	}
	d("unfinished", a.Unfinished, b.Unfinished)
	d("GOAWAY", a.GoAway, b.GoAway)
	d("closed", a.Closed, b.Closed)
	d("open after", a.Open, b.Open)
	d("PING acks", a.PingAcks, b.PingAcks)
	d("client error", a.ClientErr, b.ClientErr)
	d("settings", a.Settings, b.Settings)
	d("upstream count", len(a.Upstream), len(b.Upstream))
	for i := range min(len(a.Upstream), len(b.Upstream)) {
		d(fmt.Sprintf("upstream request %d", i), a.Upstream[i], b.Upstream[i])
	}
	if sb.Len() == 0 {
		return "(no field differs)"
	}
	return sb.String()
}

func showH2(o h2outcome) string {
	var sb strings.Builder
	for _, id := range slices.Sorted(mapKeys(o.Streams)) {
		s := o.Streams[id]
		fmt.Fprintf(&sb, "[stream %d: %d %v reset=%q body=%q trailer=%v interim=%v] ", id, s.Status, s.Header, s.Reset, s.Body, s.Trailer, s.Interim)
	}
	fmt.Fprintf(&sb, "goaway=%q closed=%v open=%v upstream=%+v settings=%v", o.GoAway, o.Closed, o.Open, o.Upstream, o.Settings)
	return sb.String()
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// and returns the certificate and key paths.
func selfSigned(t *testing.T) []string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	cp, kp := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return []string{cp, kp}
}
