package guard

import (
	"bufio"
	"context"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/rampart-gw/rampart/internal/exchange"
)

type connKey struct{}

// ConnContext is the http.Server ConnContext hook that lets Handler find
// the guarded connection of a request.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if g, ok := c.(*Conn); ok {
		return context.WithValue(ctx, connKey{}, g)
	}
	return ctx
}

// Handler answers what the guard refused, applies the per-connection rules
// that need the response (request cap, upgrades, failed bodies) and the
// rules that hold for HTTP/2 too (CONNECT, TRACE, underscore and h2c
// upgrade headers), then calls next.
func Handler(next http.Handler, cfg *Config) http.Handler {
	return &handler{next: next, cfg: cfg}
}

type handler struct {
	next http.Handler
	cfg  *Config
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g, _ := r.Context().Value(connKey{}).(*Conn)
	if r.Method == rejectMethod {
		why := rReserved
		if g != nil && strings.HasPrefix(r.URL.Path, "/") {
			if n, err := strconv.Atoi(r.URL.Path[1:]); err == nil && n > 0 && n < int(nReasons) {
				why = reason(n)
			}
		}
		h.refuse(w, r, why)
		return
	}
	switch r.Method {
	case http.MethodConnect:
		h.refuseAs(w, r, rConnect, r.ProtoMajor >= 2)
		return
	case http.MethodTrace:
		h.refuseAs(w, r, rTrace, r.ProtoMajor >= 2)
		return
	}
	// Underscores in names are dropped, as NGINX (underscores_in_headers
	// off) does: X_Forwarded_For must not alias X-Forwarded-For once a CGI
	// or WSGI application maps both to HTTP_X_FORWARDED_FOR.
	for k := range r.Header {
		if strings.IndexByte(k, '_') >= 0 {
			delete(r.Header, k)
		}
	}
	hadUpgrade := len(r.Header["Upgrade"]) > 0
	if hadUpgrade {
		stripH2C(r)
	}
	if r.ProtoMajor != 1 || g == nil {
		h.serveH2(w, r)
		return
	}
	if n := g.served.Add(1); h.cfg.MaxRequests > 0 && n >= int64(h.cfg.MaxRequests) {
		w.Header().Set("Connection", "close")
	}
	if len(r.TransferEncoding) == 0 && !hadUpgrade {
		h.next.ServeHTTP(w, r)
		return
	}
	gw := &guardWriter{ResponseWriter: w, g: g, failed: &g.failed, why: rChunked}
	h.next.ServeHTTP(gw, r)
	if !gw.wrote && !gw.hijacked && g.failed.Load() {
		// The handler gave up on the failed body without answering (a
		// client that went away is answered with nothing: route.Render).
		h.refuse(w, r, rChunked)
	}
	if hadUpgrade && !gw.hijacked {
		// The guard holds the connection's input until it knows whether
		// the protocol switched (see Conn, stUpgrade).
		g.upgrade.Store(upDone)
	}
}

// serveH2 applies what net/http's HTTP/2 server does not check itself: a
// well-formed :authority, and a body that ends as declared (a content-length
// that disagrees with the DATA frames fails the body read; the response is
// then replaced by 400, as for a malformed chunked body in HTTP/1.1). It
// also serves HTTP/1.1 requests that reached the handler without the guard
// (the fast path, which checks heads itself).
//
// On HTTP/2 a refusal is a stream's answer, never the connection's: it
// carries no "Connection: close", which net/http's HTTP/2 server turns into
// a GOAWAY for every stream on the connection. A stream the client reset
// also fails its body read; its response goes nowhere.
func (h *handler) serveH2(w http.ResponseWriter, r *http.Request) {
	stream := r.ProtoMajor >= 2 // HTTP/2 and HTTP/3: a refusal answers the stream
	if stream && !validHost([]byte(r.Host)) {
		h.refuseAs(w, r, rHost, stream)
		return
	}
	if r.Body == nil || r.Body == http.NoBody {
		h.next.ServeHTTP(w, r)
		return
	}
	b := &watchedBody{rc: r.Body}
	r.Body = b
	gw := &guardWriter{ResponseWriter: w, failed: &b.failed, why: rBodyIncomplete, stream: stream}
	h.next.ServeHTTP(gw, r)
	if !gw.wrote && !gw.hijacked && b.failed.Load() {
		h.refuseAs(w, r, rBodyIncomplete, stream)
	}
}

// watchedBody records a failed body read.
type watchedBody struct {
	rc     io.ReadCloser
	failed atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

func (b *watchedBody) Close() error { return b.rc.Close() }

// stripH2C removes an h2c upgrade offer: the guard never lets a request
// switch to HTTP/2 mid-connection (RFC 9113 removed the mechanism), and it
// must not be forwarded to an upstream that might accept it.
func stripH2C(r *http.Request) {
	vv := r.Header["Upgrade"]
	keep := vv[:0:0]
	for _, v := range vv {
		var kept []string
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p != "" && !strings.EqualFold(p, "h2c") {
				kept = append(kept, p)
			}
		}
		if len(kept) > 0 {
			keep = append(keep, strings.Join(kept, ", "))
		}
	}
	if len(keep) == len(vv) && len(vv) > 0 && keep[0] == vv[0] {
		return
	}
	if len(keep) == 0 {
		delete(r.Header, "Upgrade")
		delete(r.Header, "Http2-Settings")
		var conn []string
		for _, v := range r.Header["Connection"] {
			for _, p := range strings.Split(v, ",") {
				p = strings.TrimSpace(p)
				if p != "" && !strings.EqualFold(p, "upgrade") && !strings.EqualFold(p, "http2-settings") {
					conn = append(conn, p)
				}
			}
		}
		if len(conn) == 0 {
			delete(r.Header, "Connection")
		} else {
			r.Header["Connection"] = []string{strings.Join(conn, ", ")}
		}
		return
	}
	r.Header["Upgrade"] = keep
	delete(r.Header, "Http2-Settings")
}

// refuse answers why's verdict, closes the connection after it, and
// reports it through Config.OnRefuse.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, why reason) {
	h.refuseAs(w, r, why, false)
}

// refuseAs is refuse; for an HTTP/2 stream it keeps the connection.
func (h *handler) refuseAs(w http.ResponseWriter, r *http.Request, why reason, stream bool) {
	id := newRequestID()
	refuse(w, why, stream, id)
	if h.cfg.OnRefuse != nil {
		v := why.verdict()
		rf := Refusal{Request: r, Status: v.status, Code: v.code, Reason: v.msg, RequestID: id}
		if r.Method != rejectMethod {
			rf.Method, rf.Host, rf.Path = r.Method, r.Host, r.URL.Path
		}
		h.cfg.OnRefuse(rf)
	}
}

// Refusal is a request the guard answered itself, as Config.OnRefuse is
// told of it.
type Refusal struct {
	// Request is the refused request. For a refused head it is the
	// stand-in the guard handed net/http: only its connection's details
	// (RemoteAddr, TLS, Context) are the client's.
	Request *http.Request
	// Method, Host and Path are the request's; "" for a refused head,
	// whose parts were not read.
	Method, Host, Path string
	Status             int
	// Code is the error code and Reason the message of the JSON error.
	Code, Reason string
	// RequestID is the ID in the answer's X-Request-Id and error body.
	RequestID string
}

func refuse(w http.ResponseWriter, why reason, stream bool, id string) {
	v := why.verdict()
	if !stream {
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("X-Request-Id", id)
	if v.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
	}
	exchange.WriteError(w, v.status, v.code, v.msg, id)
}

func newRequestID() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		x := rand.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return hex.EncodeToString(b[:])
}

// guardWriter replaces the response of a request whose body turned out
// malformed (a chunked body; on HTTP/2, one that disagrees with its
// content-length) with a 400, and tells the guard about hijacks.
type guardWriter struct {
	http.ResponseWriter
	g        *Conn // nil for HTTP/2
	failed   *atomic.Bool
	why      reason // the verdict for a failed body
	stream   bool   // an HTTP/2 stream: refusals keep the connection
	replaced bool
	wrote    bool
	hijacked bool
}

func (w *guardWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wrote = true
	if w.failed.Load() {
		w.replaced = true
		h := w.ResponseWriter.Header()
		for k := range h {
			delete(h, k)
		}
		refuse(w.ResponseWriter, w.why, w.stream, newRequestID())
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *guardWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *guardWriter) Flush() {
	if w.replaced {
		return
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *guardWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
		if w.g != nil {
			w.g.upgrade.Store(upHijacked)
		}
	}
	return c, brw, err
}

func (w *guardWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
