// Package transcode serves REST/JSON requests from gRPC methods (a route's
// grpc_json, docs/grpc.md#transcoding): a request is matched against the
// bindings of the route's descriptor set (google.api.http annotations and
// explicit mappings), its path variables, query parameters and JSON body
// become the method's request message (dynamicpb, protojson), and the
// message goes to the route's upstream as a gRPC call through
// cluster.Upstream.Do, so balancing, health, breakers and retries apply.
// The answer's messages come back as JSON (one object, or a JSON array or
// newline-delimited JSON for a server-streaming method); a gRPC status
// other than OK becomes its HTTP status with a google.rpc.Status body.
package transcode

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/route"
)

// Binding is one REST method and path template bound to a gRPC method.
type Binding struct {
	HTTPMethod string
	Template   *Template
	Method     protoreflect.MethodDescriptor
	// Path is the gRPC call's path, "/pkg.Service/Method".
	Path string
	// Body is "*", a field's name, or "" (no body).
	Body          string
	bodyField     protoreflect.FieldDescriptor
	responseField protoreflect.FieldDescriptor
	// pathFields are the fields of Template's variables, in order.
	pathFields [][]protoreflect.FieldDescriptor
}

// Handler transcodes the requests of one route.
type Handler struct {
	Route    string
	Upstream *cluster.Upstream
	// Policy is the route's call policy (timeout, retries).
	Policy   cluster.Policy
	Bindings []*Binding
	Set      *Set
	// Next serves requests that are gRPC calls already (content-type
	// application/grpc*): the route's proxy. Nil: they are refused as
	// unmapped.
	Next http.Handler
	// UseProtoNames, EmitUnpopulated and DiscardUnknown are the protojson
	// options (grpc_json keys of the same names).
	UseProtoNames, EmitUnpopulated, DiscardUnknown bool
	// MaxMessageBytes bounds one message of an answer.
	MaxMessageBytes int64
	Log             *slog.Logger
}

// match returns the binding for method and escaped path, and its
// captures: among the bindings that match, the one with the most literal
// segments, then without "**", then the first.
func (h *Handler) match(method, escaped string) (*Binding, []Capture) {
	var best *Binding
	var caps []Capture
	for _, b := range h.Bindings {
		if b.HTTPMethod != method {
			continue
		}
		if best != nil && !better(b.Template, best.Template) {
			continue
		}
		if c, ok := b.Template.Match(escaped); ok {
			best, caps = b, c
		}
	}
	return best, caps
}

// better says whether a ranks above b.
func better(a, b *Template) bool {
	if a.literals != b.literals {
		return a.literals > b.literals
	}
	return !a.rest && b.rest
}

// badRequest is a request the transcoder cannot turn into a message.
func badRequest(format string, args ...any) error {
	return &route.Refusal{Status: http.StatusBadRequest, Code: "bad_request", Msg: fmt.Sprintf(format, args...)}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if exchange.IsGRPC(r) && h.Next != nil {
		h.Next.ServeHTTP(w, r) // a gRPC client's own call: proxied as it is
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	b, caps := h.match(method, r.URL.EscapedPath())
	if b == nil {
		route.Fail(w, r, &route.Refusal{Status: http.StatusNotFound, Code: "route_not_found",
			Msg: "no gRPC method is mapped to " + r.Method + " " + r.URL.Path})
		return
	}
	msg, ndjson, err := h.request(r, b, caps)
	if err != nil {
		route.Fail(w, r, err)
		return
	}
	frame, err := proto.Marshal(msg)
	if err != nil {
		route.Fail(w, r, badRequest("encoding the request message: %v", err))
		return
	}
	h.call(w, r, b, frame, ndjson)
}

// request builds the request message of b from r: the query parameters
// (unless the body is the whole message), then the body, then the path
// variables, each later one winning. ndjson says a server-streaming answer
// is asked for as newline-delimited JSON.
func (h *Handler) request(r *http.Request, b *Binding, caps []Capture) (*dynamicpb.Message, bool, error) {
	in := b.Method.Input()
	msg := dynamicpb.NewMessage(in)
	ndjson := false
	if b.Body != "*" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, false, badRequest("malformed query: %v", err)
		}
		for key, vals := range q {
			if b.Method.IsStreamingServer() && key == "stream" {
				// The gateway's own parameter for a server-streaming
				// method: ?stream=ndjson.
				ndjson = len(vals) > 0 && vals[len(vals)-1] == "ndjson"
				continue
			}
			if err := h.setQuery(msg, b, key, vals); err != nil {
				return nil, false, err
			}
		}
	}
	if b.Method.IsStreamingServer() && strings.Contains(r.Header.Get("Accept"), "application/x-ndjson") {
		ndjson = true
	}
	if b.Body != "" {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			if errors.Is(err, exchange.ErrBodyTooLarge) || exchange.BodyTooLarge(r) {
				return nil, false, exchange.ErrBodyTooLarge
			}
			if r.Context().Err() != nil {
				return nil, false, &route.Refusal{Status: cluster.StatusClientClosed, Code: "client_closed_request", Msg: "the client went away", Err: err}
			}
			return nil, false, &route.Refusal{Status: http.StatusBadRequest, Code: "bad_request", Msg: "the request body could not be read", Err: err}
		}
		if err := h.decodeBody(msg, b, data); err != nil {
			return nil, false, err
		}
	}
	for i, c := range caps {
		if err := setField(msg, b.pathFields[i], []string{c.Value}); err != nil {
			return nil, false, badRequest("path parameter %s: %v", strings.Join(c.Field, "."), err)
		}
	}
	return msg, ndjson, nil
}

// decodeBody sets the fields of msg that a JSON body carries for b: the
// whole message for body "*", one field for body "field". An empty body
// sets nothing.
func (h *Handler) decodeBody(msg *dynamicpb.Message, b *Binding, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	opts := protojson.UnmarshalOptions{DiscardUnknown: h.DiscardUnknown, Resolver: anyResolver{h.Set.Types}}
	if b.bodyField == nil {
		tmp := dynamicpb.NewMessage(msg.Descriptor())
		if err := opts.Unmarshal(data, tmp); err != nil {
			return badRequest("invalid JSON body for %s: %v", msg.Descriptor().FullName(), err)
		}
		proto.Merge(msg, tmp)
		return nil
	}
	// The field's value, whatever its kind, decoded as the one field of
	// an object of the request's type.
	var buf bytes.Buffer
	buf.WriteString(`{"`)
	buf.WriteString(string(b.bodyField.Name()))
	buf.WriteString(`":`)
	buf.Write(data)
	buf.WriteString("}")
	tmp := dynamicpb.NewMessage(msg.Descriptor())
	if err := opts.Unmarshal(buf.Bytes(), tmp); err != nil {
		return badRequest("invalid JSON body for field %s of %s: %v", b.bodyField.Name(), msg.Descriptor().FullName(), err)
	}
	msg.Set(b.bodyField, tmp.Get(b.bodyField))
	return nil
}

// setQuery sets the field a query parameter names (a dotted path of proto
// or JSON names).
func (h *Handler) setQuery(msg *dynamicpb.Message, b *Binding, key string, vals []string) error {
	fds, err := fieldPath(msg.Descriptor(), strings.Split(key, "."))
	if err != nil {
		if h.DiscardUnknown {
			return nil
		}
		return badRequest("query parameter %q: %v", key, err)
	}
	if b.bodyField != nil && fds[0] == b.bodyField {
		return nil // the body sets it
	}
	last := fds[len(fds)-1]
	if (last.Kind() == protoreflect.MessageKind && !wrapper(last)) || last.IsMap() {
		return badRequest("query parameter %q: field %s is a message or map, which a query parameter cannot set", key, last.FullName())
	}
	if err := setField(msg, fds, vals); err != nil {
		return badRequest("query parameter %q: %v", key, err)
	}
	return nil
}

// setField sets the field at path fds in msg from text values: a repeated
// field gets them all, a singular one the last.
func setField(msg protoreflect.Message, fds []protoreflect.FieldDescriptor, vals []string) error {
	for _, fd := range fds[:len(fds)-1] {
		msg = msg.Mutable(fd).Message()
	}
	fd := fds[len(fds)-1]
	if len(vals) == 0 {
		return nil
	}
	if fd.IsList() {
		l := msg.Mutable(fd).List()
		for _, s := range vals {
			v, err := scalar(msg, fd, s)
			if err != nil {
				return err
			}
			l.Append(v)
		}
		return nil
	}
	v, err := scalar(msg, fd, vals[len(vals)-1])
	if err != nil {
		return err
	}
	msg.Set(fd, v)
	return nil
}

// scalar parses s as a value of fd's kind.
func scalar(parent protoreflect.Message, fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(s), nil
	case protoreflect.BoolKind:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not a bool", s)
		}
		return protoreflect.ValueOfBool(v), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not an int32", s)
		}
		return protoreflect.ValueOfInt32(int32(v)), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not an int64", s)
		}
		return protoreflect.ValueOfInt64(v), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not a uint32", s)
		}
		return protoreflect.ValueOfUint32(uint32(v)), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not a uint64", s)
		}
		return protoreflect.ValueOfUint64(v), nil
	case protoreflect.FloatKind:
		v, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not a float", s)
		}
		return protoreflect.ValueOfFloat32(float32(v)), nil
	case protoreflect.DoubleKind:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not a double", s)
		}
		return protoreflect.ValueOfFloat64(v), nil
	case protoreflect.BytesKind:
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if v, err := enc.DecodeString(s); err == nil {
				return protoreflect.ValueOfBytes(v), nil
			}
		}
		return protoreflect.Value{}, fmt.Errorf("%q is not base64", s)
	case protoreflect.EnumKind:
		ed := fd.Enum()
		if v := ed.Values().ByName(protoreflect.Name(s)); v != nil {
			return protoreflect.ValueOfEnum(v.Number()), nil
		}
		if n, err := strconv.ParseInt(s, 10, 32); err == nil {
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
		}
		return protoreflect.Value{}, fmt.Errorf("%q is not a value of enum %s", s, ed.FullName())
	case protoreflect.MessageKind:
		// A wrapper, Timestamp, Duration or FieldMask: its JSON form is
		// the text as a JSON string (numbers too: protojson accepts
		// quoted ones), or the bare literal for a BoolValue.
		m := parent.NewField(fd).Message()
		js, _ := json.Marshal(s)
		if fd.Message().FullName() == "google.protobuf.BoolValue" {
			js = []byte(s)
		}
		if err := protojson.Unmarshal(js, m.Interface()); err != nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not a %s", s, fd.Message().FullName())
		}
		return protoreflect.ValueOfMessage(m), nil
	}
	return protoreflect.Value{}, fmt.Errorf("field %s cannot be set from text", fd.FullName())
}

// reqHeaders are not sent on as gRPC metadata: the body's framing, the
// content negotiation the gateway answers itself, and hop-by-hop fields.
var reqHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Content-Length": true, "Content-Type": true,
	"Content-Encoding": true, "Expect": true, "Accept": true, "Accept-Encoding": true, "Host": true,
}

// call makes the gRPC call and answers with its result.
func (h *Handler) call(w http.ResponseWriter, r *http.Request, b *Binding, msg []byte, ndjson bool) {
	ctx := r.Context()
	pol := h.Policy
	unary := !b.Method.IsStreamingServer()
	if unary && pol.Timeout > 0 {
		// A unary call ends within the route's timeout, answer included;
		// the upstream learns the budget from grpc-timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pol.Timeout)
		defer cancel()
	}
	frame := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(msg)))
	copy(frame[5:], msg)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.Path, bytes.NewReader(frame))
	if err != nil {
		route.Fail(w, r, err)
		return
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(frame)), nil }
	req.RemoteAddr = r.RemoteAddr
	req.Host = ""
	hdr := make(http.Header, len(r.Header)+4)
	for k, vv := range r.Header {
		if reqHeaders[k] {
			continue
		}
		if rest, ok := strings.CutPrefix(k, "Grpc-Metadata-"); ok && rest != "" {
			hdr[rest] = vv
			continue
		}
		if strings.HasPrefix(k, "Grpc-") {
			continue // reserved for the gRPC protocol itself
		}
		hdr[k] = vv
	}
	hdr["Content-Type"] = []string{"application/grpc"}
	hdr["Te"] = []string{"trailers"}
	hdr["Grpc-Accept-Encoding"] = []string{"identity"}
	if unary && pol.Timeout > 0 {
		hdr["Grpc-Timeout"] = []string{exchange.FormatGRPCTimeout(pol.Timeout)} // the budget left, per attempt (Upstream.Do)
	}
	if ex := exchange.From(r.Context()); ex != nil && ex.ClientIP != "" {
		hdr["X-Forwarded-For"] = []string{ex.ClientIP}
	}
	req.Header = hdr
	req.ContentLength = int64(len(frame))
	// An upstream without a healthy target, or whose circuit is open,
	// hands the call to its failover chain, as a proxied route does.
	up := h.Upstream
	for hops := 0; up.Failover != nil && hops < 4 && (up.NoHealthy() || up.CircuitOpen()); hops++ {
		up = up.Failover
	}
	resp, err := up.Do(req, &pol)
	if err != nil {
		route.Fail(w, r, deadlineError(ctx, err, pol.Timeout))
		return
	}
	defer resp.Body.Close()
	h.respond(w, r, ctx, b, resp, ndjson, pol.Timeout)
}

// deadlineError is err, or an upstream timeout when the call's own
// deadline cut it short (the cluster calls a done context a
// cancellation, which gets no answer).
func deadlineError(ctx context.Context, err error, d time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		var e *cluster.Error
		if errors.As(err, &e) && e.Kind == cluster.Canceled {
			return &cluster.Error{Kind: cluster.Timeout, Status: http.StatusGatewayTimeout, Code: "upstream_timeout",
				Msg: "upstream did not answer within the route's timeout (" + d.String() + ")", Upstream: e.Upstream, Err: err}
		}
	}
	return err
}

// badAnswer is an upstream answer that is not a well-formed gRPC
// response.
func badAnswer(up, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &cluster.Error{Kind: cluster.BadResponse, Status: http.StatusBadGateway, Code: "bad_upstream_response",
		Msg: "invalid gRPC response from upstream: " + msg, Upstream: up, Err: errors.New(msg)}
}

// errTruncated is a message cut short by the end of the stream.
var errTruncated = errors.New("truncated gRPC message")

// readMessage reads one length-prefixed message; io.EOF at a message
// boundary is the end of the stream.
func (h *Handler) readMessage(rd io.Reader, buf []byte) ([]byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(rd, head[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, errTruncated
		}
		return nil, err
	}
	if head[0] != 0 {
		return nil, errors.New("compressed gRPC message (the gateway asked for identity)")
	}
	n := binary.BigEndian.Uint32(head[1:])
	limit := h.MaxMessageBytes
	if limit <= 0 {
		limit = config.DefaultGRPCMaxMessageBytes
	}
	if int64(n) > limit {
		return nil, fmt.Errorf("gRPC message of %d bytes exceeds max_message_bytes (%d)", n, limit)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(rd, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, errTruncated
		}
		return nil, err
	}
	return buf, nil
}

// respHeaders of the upstream's answer are not passed on to the client.
var respHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Trailer": true, "Transfer-Encoding": true,
	"Connection": true, "Keep-Alive": true, "Te": true, "Upgrade": true, "Content-Encoding": true,
}

// respond reads the upstream's gRPC answer and writes it as JSON.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, ctx context.Context, b *Binding, resp *http.Response, ndjson bool, timeout time.Duration) {
	up := h.Upstream.Name
	if resp.StatusCode != http.StatusOK {
		route.Fail(w, r, badAnswer(up, "HTTP status %d", resp.StatusCode))
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/grpc") {
		route.Fail(w, r, badAnswer(up, "content-type %q", ct))
		return
	}
	// A trailers-only answer: the status is in the head.
	// A server-streaming call's trailers-only OK is an empty stream.
	if st := resp.Header.Get("Grpc-Status"); st != "" && (st != "0" || !b.Method.IsStreamingServer()) {
		h.status(w, r, resp.Header)
		return
	}
	for k, vv := range resp.Header {
		if !respHeaders[k] && !strings.HasPrefix(k, "Grpc-") {
			w.Header()[k] = vv
		}
	}
	mo := protojson.MarshalOptions{UseProtoNames: h.UseProtoNames, EmitUnpopulated: h.EmitUnpopulated, Resolver: anyResolver{h.Set.Types}}
	out := dynamicpb.NewMessage(b.Method.Output())
	encode := func(data []byte) ([]byte, error) {
		out.Reset()
		if err := (proto.UnmarshalOptions{Resolver: anyResolver{h.Set.Types}}).Unmarshal(data, out); err != nil {
			return nil, err
		}
		return h.encode(mo, b, out)
	}
	readErr := func(err error) error {
		switch {
		case errors.Is(err, errTruncated):
			return badAnswer(up, "%v", err)
		case r.Context().Err() != nil:
			return &route.Refusal{Status: cluster.StatusClientClosed, Code: "client_closed_request", Msg: "the client went away", Err: err}
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return &cluster.Error{Kind: cluster.Timeout, Status: http.StatusGatewayTimeout, Code: "upstream_timeout",
				Msg: "upstream did not answer within the route's timeout (" + timeout.String() + ")", Upstream: up, Err: err}
		}
		return badAnswer(up, "%v", err)
	}

	if !b.Method.IsStreamingServer() {
		data, err := h.readMessage(resp.Body, nil)
		if err == io.EOF {
			// No message: the status must say why.
			if resp.Trailer.Get("Grpc-Status") == "" {
				route.Fail(w, r, badAnswer(up, "the stream ended without a message or a grpc-status"))
				return
			}
			if resp.Trailer.Get("Grpc-Status") == "0" {
				route.Fail(w, r, badAnswer(up, "a unary call answered OK without a message"))
				return
			}
			h.status(w, r, resp.Trailer)
			return
		}
		if err != nil {
			route.Fail(w, r, readErr(err))
			return
		}
		js, err := encode(data)
		if err != nil {
			route.Fail(w, r, badAnswer(up, "decoding the %s answer: %v", b.Method.Output().FullName(), err))
			return
		}
		if _, err := h.readMessage(resp.Body, nil); err != io.EOF {
			if err == nil {
				err = errors.New("a unary call answered more than one message")
			}
			route.Fail(w, r, readErr(err))
			return
		}
		if st := resp.Trailer.Get("Grpc-Status"); st != "0" {
			if st == "" {
				route.Fail(w, r, badAnswer(up, "the stream ended without a grpc-status"))
				return
			}
			h.status(w, r, resp.Trailer)
			return
		}
		h.record(r, "0")
		js = append(js, '\n')
		wh := w.Header()
		wh.Set("Content-Type", "application/json")
		wh.Set("Content-Length", strconv.Itoa(len(js)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(js)
		}
		return
	}
	h.stream(w, r, b, resp, ndjson, encode, readErr)
}

// stream answers a server-streaming call: a JSON array, or one JSON value
// per line with ndjson, flushed after every message. The head waits for
// the first message, so that a call that fails before any gets its HTTP
// status; a failure after it ends ndjson with a line
// {"error": google.rpc.Status} and aborts an array (which stays
// unterminated, never mistaken for a whole one). Both end with the
// Grpc-Status and Grpc-Message trailers.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, b *Binding, resp *http.Response, ndjson bool,
	encode func([]byte) ([]byte, error), readErr func(error) error) {
	up := h.Upstream.Name
	rc := http.NewResponseController(w)
	started := false
	start := func() {
		started = true
		wh := w.Header()
		if ndjson {
			wh.Set("Content-Type", "application/x-ndjson")
		} else {
			wh.Set("Content-Type", "application/json")
		}
		wh.Set("X-Content-Type-Options", "nosniff")
		wh["Trailer"] = []string{"Grpc-Status, Grpc-Message"}
		w.WriteHeader(http.StatusOK)
		if !ndjson {
			w.Write([]byte("["))
		}
	}
	// fail ends a started stream with err (a gateway-made failure).
	fail := func(err error) {
		if ex := exchange.From(r.Context()); ex != nil {
			ex.Code = "response_aborted"
		}
		h.log().Warn("transcoded stream failed", "route", h.Route, "upstream", up, "error", err)
		if ndjson {
			st := &status.Status{Code: exchange.GRPCInternal, Message: err.Error()}
			var ce *cluster.Error
			if errors.As(err, &ce) {
				st.Code = int32(exchange.GRPCCode(ce.Status, ce.Code))
				st.Message = ce.Msg
			}
			h.errorLine(w, st)
			w.Header().Set("Grpc-Status", strconv.Itoa(int(st.Code)))
			return
		}
		panic(http.ErrAbortHandler)
	}
	var buf []byte
	n := 0
	for {
		data, err := h.readMessage(resp.Body, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			if !started {
				route.Fail(w, r, readErr(err))
				return
			}
			fail(readErr(err))
			return
		}
		buf = data[:0]
		js, err := encode(data)
		if err != nil {
			err = badAnswer(up, "decoding a %s message: %v", b.Method.Output().FullName(), err)
			if !started {
				route.Fail(w, r, err)
				return
			}
			fail(err)
			return
		}
		if !started {
			start()
		}
		if ndjson {
			js = append(js, '\n')
		} else if n > 0 {
			w.Write([]byte(","))
		}
		if _, err := w.Write(js); err != nil {
			return // the client went away: closing the body ends the call
		}
		rc.Flush()
		n++
	}
	st := resp.Trailer.Get("Grpc-Status")
	if st == "" && n == 0 {
		st = resp.Header.Get("Grpc-Status") // trailers-only
	}
	if st == "" {
		err := badAnswer(up, "the stream ended without a grpc-status")
		if !started {
			route.Fail(w, r, err)
			return
		}
		fail(err)
		return
	}
	if st != "0" && !started {
		h.status(w, r, resp.Trailer)
		return
	}
	if !started {
		start()
	}
	h.record(r, exchange.GRPCStatusOf(st))
	if st != "0" {
		s := h.statusOf(resp.Trailer)
		if ndjson {
			h.errorLine(w, s)
		} else {
			// An array cannot carry the error: it stays unterminated
			// and the connection is aborted.
			panic(http.ErrAbortHandler)
		}
	} else if !ndjson {
		w.Write([]byte("]\n"))
	}
	w.Header().Set("Grpc-Status", st)
	if m := resp.Trailer.Get("Grpc-Message"); m != "" {
		w.Header().Set("Grpc-Message", m)
	}
}

// errorLine writes an ndjson stream's last line, {"error": STATUS}.
func (h *Handler) errorLine(w http.ResponseWriter, st *status.Status) {
	js := h.statusJSON(st)
	line := make([]byte, 0, len(js)+12)
	line = append(line, `{"error":`...)
	line = append(line, js...)
	line = append(line, "}\n"...)
	w.Write(line)
}

// encode writes an answer message as JSON, or its response_body field.
func (h *Handler) encode(mo protojson.MarshalOptions, b *Binding, m *dynamicpb.Message) ([]byte, error) {
	fd := b.responseField
	if fd == nil {
		return mo.Marshal(m)
	}
	if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
		return mo.Marshal(m.Get(fd).Message().Interface())
	}
	// Any other kind: the field alone in a message of the same type,
	// always emitted, and its value cut out of the object.
	one := dynamicpb.NewMessage(m.Descriptor())
	if m.Has(fd) {
		one.Set(fd, m.Get(fd))
	}
	mo.EmitUnpopulated = true
	js, err := mo.Marshal(one)
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(js, &obj); err != nil {
		return nil, err
	}
	name := fd.JSONName()
	if mo.UseProtoNames {
		name = string(fd.Name())
	}
	v, ok := obj[name]
	if !ok {
		return []byte("null"), nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, v); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// record notes a transcoded call's gRPC status on the exchange, for the
// access log.
func (h *Handler) record(r *http.Request, code string) {
	if ex := exchange.From(r.Context()); ex != nil && code != "" {
		ex.GRPCStatus = code
	}
}

// statusOf reads a gRPC status from a head or trailers: grpc-status,
// the percent-decoded grpc-message, and the details of
// grpc-status-details-bin when it holds a google.rpc.Status.
func (h *Handler) statusOf(md http.Header) *status.Status {
	code, err := strconv.Atoi(md.Get("Grpc-Status"))
	if err != nil || code < 0 {
		code = exchange.GRPCUnknown
	}
	msg := md.Get("Grpc-Message")
	if m, err := url.PathUnescape(msg); err == nil {
		msg = m
	}
	st := &status.Status{Code: int32(code), Message: msg}
	if bin := md.Get("Grpc-Status-Details-Bin"); bin != "" {
		var raw []byte
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.StdEncoding} {
			if raw, err = enc.DecodeString(bin); err == nil {
				break
			}
		}
		var det status.Status
		if err == nil && proto.Unmarshal(raw, &det) == nil {
			st.Details = det.Details
		}
	}
	return st
}

// statusJSON writes st as google.rpc.Status JSON; details whose types
// are unknown (neither in the descriptor set nor google.rpc's) are left
// out.
func (h *Handler) statusJSON(st *status.Status) []byte {
	mo := protojson.MarshalOptions{UseProtoNames: h.UseProtoNames, Resolver: anyResolver{h.Set.Types}}
	js, err := mo.Marshal(st)
	if err != nil {
		keep := make([]*anypb.Any, 0, len(st.Details))
		for _, d := range st.Details {
			if _, err := mo.Marshal(d); err == nil {
				keep = append(keep, d)
			}
		}
		st = &status.Status{Code: st.Code, Message: st.Message, Details: keep}
		if js, err = mo.Marshal(st); err != nil {
			js, _ = protojson.Marshal(&status.Status{Code: st.Code, Message: st.Message})
		}
	}
	return js
}

// status answers a gRPC status as its HTTP status with a google.rpc.Status
// JSON body (an OK status that carries no message is a bad answer).
func (h *Handler) status(w http.ResponseWriter, r *http.Request, md http.Header) {
	st := h.statusOf(md)
	if st.Code == 0 {
		route.Fail(w, r, badAnswer(h.Upstream.Name, "OK without a message"))
		return
	}
	h.record(r, exchange.GRPCCodeName(int(st.Code)))
	js := append(h.statusJSON(st), '\n')
	wh := w.Header()
	wh.Set("Content-Type", "application/json")
	wh.Set("Content-Length", strconv.Itoa(len(js)))
	wh.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(HTTPStatus(int(st.Code)))
	if r.Method != http.MethodHead {
		w.Write(js)
	}
}

// HTTPStatus maps a gRPC status code to the HTTP status a REST client
// gets (google.rpc.Code's documented mapping, as grpc-gateway and Envoy's
// transcoder use it).
func HTTPStatus(code int) int {
	switch code {
	case 0:
		return http.StatusOK
	case 1: // CANCELLED
		return cluster.StatusClientClosed
	case 2: // UNKNOWN
		return http.StatusInternalServerError
	case 3: // INVALID_ARGUMENT
		return http.StatusBadRequest
	case 4: // DEADLINE_EXCEEDED
		return http.StatusGatewayTimeout
	case 5: // NOT_FOUND
		return http.StatusNotFound
	case 6: // ALREADY_EXISTS
		return http.StatusConflict
	case 7: // PERMISSION_DENIED
		return http.StatusForbidden
	case 8: // RESOURCE_EXHAUSTED
		return http.StatusTooManyRequests
	case 9: // FAILED_PRECONDITION
		return http.StatusBadRequest
	case 10: // ABORTED
		return http.StatusConflict
	case 11: // OUT_OF_RANGE
		return http.StatusBadRequest
	case 12: // UNIMPLEMENTED
		return http.StatusNotImplemented
	case 13: // INTERNAL
		return http.StatusInternalServerError
	case 14: // UNAVAILABLE
		return http.StatusServiceUnavailable
	case 15: // DATA_LOSS
		return http.StatusInternalServerError
	case 16: // UNAUTHENTICATED
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
