package grpc

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/rampart-gw/rampart/internal/transcode"
	"github.com/rampart-gw/rampart/internal/transcode/transcodetest"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// shopProto is the transcoding tests' service; %s is GetBook's path
// (changed by the reload test).
const shopProto = `syntax = "proto3";
package shop.v1;
import "google/api/annotations.proto";

message Author { string name = 1; }
message Book {
  string id = 1;
  string title = 2;
  int32 pages = 3;
  repeated string tags = 4;
  Author author = 5;
}
message GetBookRequest { string shelf = 1; string book_id = 2; bool full = 3; }
message CreateBookRequest { string shelf = 1; Book book = 2; repeated string labels = 3; }
message UpdateBookRequest { string shelf = 1; Book book = 2; }
message Filter { string prefix = 1; }
message ListBooksRequest { string shelf = 1; int32 count = 2; Filter filter = 3; }

service Shop {
  rpc GetBook(GetBookRequest) returns (Book) { option (google.api.http) = { get: "%s" }; }
  rpc CreateBook(CreateBookRequest) returns (Book) {
    option (google.api.http) = { post: "/v1/{shelf=shelves/*}/books" body: "book" };
  }
  rpc UpdateBook(UpdateBookRequest) returns (Book) {
    option (google.api.http) = { patch: "/v1/shelves/{shelf}/books/{book.id}" body: "book" };
  }
  rpc ListBooks(ListBooksRequest) returns (stream Book) {
    option (google.api.http) = { get: "/v1/shelves/{shelf}/books" };
  }
  rpc Echo(Book) returns (Book) { option (google.api.http) = { post: "/v1/echo" body: "*" }; }
}

// Plain has no annotations: served through an explicit mapping.
service Plain { rpc Ping(GetBookRequest) returns (Book); }
`

// shopSet builds the descriptor set with GetBook at getPath.
func shopSet(t testing.TB, getPath string) []byte {
	t.Helper()
	b, err := transcodetest.Build(map[string]string{"shop.proto": fmt.Sprintf(shopProto, getPath)}, "shop.proto")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// shop is the grpc-go server of shop.v1.Shop and shop.v1.Plain, written
// against dynamicpb messages and hand-built service descriptions.
type shop struct{ set *transcode.Set }

func (s *shop) method(name string) protoreflect.MethodDescriptor {
	md, err := s.set.Method(name)
	if err != nil {
		panic(err)
	}
	return md
}

func field(m *dynamicpb.Message, name string) protoreflect.Value {
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(name)))
}

func setStr(m protoreflect.Message, name, v string) {
	m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(name)), protoreflect.ValueOfString(v))
}

func (s *shop) unary(rpc string, f func(in *dynamicpb.Message, out *dynamicpb.Message) error) grpc.MethodDesc {
	return s.unaryCtx(rpc, func(_ context.Context, in, out *dynamicpb.Message) error { return f(in, out) })
}

func (s *shop) unaryCtx(rpc string, f func(ctx context.Context, in *dynamicpb.Message, out *dynamicpb.Message) error) grpc.MethodDesc {
	md := s.method(rpc)
	return grpc.MethodDesc{MethodName: string(md.Name()), Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		in := dynamicpb.NewMessage(md.Input())
		if err := dec(in); err != nil {
			return nil, err
		}
		out := dynamicpb.NewMessage(md.Output())
		if err := f(ctx, in, out); err != nil {
			return nil, err
		}
		return out, nil
	}}
}

func (s *shop) descs() []*grpc.ServiceDesc {
	getBook := s.unary("shop.v1.Shop/GetBook", func(in, out *dynamicpb.Message) error {
		id := field(in, "book_id").String()
		switch id {
		case "missing":
			st, _ := status.New(codes.NotFound, "book missing").WithDetails(&errdetails.ResourceInfo{ResourceType: "book", ResourceName: id})
			return st.Err()
		case "bad":
			return status.Error(codes.InvalidArgument, "bad id")
		case "down":
			return status.Error(codes.Unavailable, "try later")
		}
		setStr(out, "id", id)
		setStr(out, "title", fmt.Sprintf("shelf=%s full=%v", field(in, "shelf").String(), field(in, "full").Bool()))
		return nil
	})
	create := s.unary("shop.v1.Shop/CreateBook", func(in, out *dynamicpb.Message) error {
		book := field(in, "book").Message()
		var labels []string
		l := field(in, "labels").List()
		for i := 0; i < l.Len(); i++ {
			labels = append(labels, l.Get(i).String())
		}
		out.Set(out.Descriptor().Fields().ByName("author"), book.Get(book.Descriptor().Fields().ByName("author")))
		setStr(out, "id", "new")
		setStr(out, "title", book.Get(book.Descriptor().Fields().ByName("title")).String()+"|"+strings.Join(labels, ",")+"|"+field(in, "shelf").String())
		return nil
	})
	update := s.unary("shop.v1.Shop/UpdateBook", func(in, out *dynamicpb.Message) error {
		book := field(in, "book").Message()
		setStr(out, "id", book.Get(book.Descriptor().Fields().ByName("id")).String())
		setStr(out, "title", field(in, "shelf").String()+":"+book.Get(book.Descriptor().Fields().ByName("title")).String())
		return nil
	})
	echo := s.unary("shop.v1.Shop/Echo", func(in, out *dynamicpb.Message) error {
		in.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool { out.Set(fd, v); return true })
		return nil
	})
	ping := s.unaryCtx("shop.v1.Plain/Ping", func(ctx context.Context, in, out *dynamicpb.Message) error {
		id := "pong:" + field(in, "book_id").String()
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("x-who"); len(v) > 0 {
			id += "|" + strings.Join(v, ",")
		}
		if id == "pong:slow" {
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
		setStr(out, "id", id)
		return nil
	})
	list := s.method("shop.v1.Shop/ListBooks")
	listBooks := grpc.StreamDesc{StreamName: "ListBooks", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
		in := dynamicpb.NewMessage(list.Input())
		if err := ss.RecvMsg(in); err != nil {
			return err
		}
		prefix := field(in, "filter").Message().Get(list.Input().Fields().ByName("filter").Message().Fields().ByName("prefix")).String()
		if prefix == "none" {
			return status.Error(codes.PermissionDenied, "not your shelf")
		}
		n := int(field(in, "count").Int())
		for i := 0; i < n; i++ {
			out := dynamicpb.NewMessage(list.Output())
			setStr(out, "id", fmt.Sprintf("%s%d", prefix, i))
			setStr(out, "title", field(in, "shelf").String())
			if err := ss.SendMsg(out); err != nil {
				return err
			}
		}
		if prefix == "fail" {
			return status.Error(codes.Unavailable, "stream broke")
		}
		return nil
	}}
	return []*grpc.ServiceDesc{
		{ServiceName: "shop.v1.Shop", HandlerType: (*any)(nil), Metadata: "shop.proto",
			Methods: []grpc.MethodDesc{getBook, create, update, echo}, Streams: []grpc.StreamDesc{listBooks}},
		{ServiceName: "shop.v1.Plain", HandlerType: (*any)(nil), Metadata: "shop.proto", Methods: []grpc.MethodDesc{ping}},
	}
}

// startShop writes the descriptor set to a file and starts the server.
func startShop(t testing.TB) (addr, descPath string) {
	t.Helper()
	data := shopSet(t, "/v1/shelves/{shelf}/books/{book_id}")
	descPath = filepath.Join(t.TempDir(), "shop.pb")
	if err := os.WriteFile(descPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := transcode.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	for _, d := range (&shop{set: set}).descs() {
		srv.RegisterService(d, nil)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), descPath
}

func transcodeDoc(addr, desc, extra string) string {
	return gwtest.Head + fmt.Sprintf(`upstreams:
  shop: {protocol: h2c, targets: [{address: %q}]}
routes:
  - name: rest
    match: {path: {prefix: /}}
    upstream: shop
    timeout: 5s
    grpc_json:
      descriptor_set: %q
      services: [shop.v1.Shop]
      mappings:
        - {method: GET, path: "/v1/ping/{book_id}", rpc: shop.v1.Plain/Ping}
        - {method: GET, path: "/v1/ping/{book_id}/id", rpc: shop.v1.Plain/Ping, response_body: id}
%s`, addr, desc, extra)
}

// call makes a request and returns the status, content type and body.
func call(t *testing.T, method, url, body string, hdr ...string) (int, string, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := gwClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// sameJSON compares two JSON texts as values.
func sameJSON(t *testing.T, what, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Errorf("%s: answer is not JSON: %v: %q", what, err, got)
		return
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("%s: got %s, want %s", what, gb, wb)
	}
}

// TestTranscodeRoundTrip: path variables (nested ones, multi-segment
// ones), query parameters (repeated, nested) and the body (a field, the
// whole message) reach the gRPC method, and the answer comes back as JSON.
func TestTranscodeRoundTrip(t *testing.T) {
	addr, desc := startShop(t)
	g := gwtest.Start(t, transcodeDoc(addr, desc, ""))
	cases := []struct {
		name, method, path, body, want string
	}{
		{"path and query", "GET", "/v1/shelves/s1/books/b%2F1?full=true", "", `{"id":"b/1","title":"shelf=s1 full=true"}`},
		{"body field, repeated query, multi-segment variable", "POST", "/v1/shelves/s1/books?labels=a&labels=b",
			`{"title":"T","author":{"name":"N"}}`, `{"id":"new","title":"T|a,b|shelves/s1","author":{"name":"N"}}`},
		{"nested path field", "PATCH", "/v1/shelves/s2/books/b9", `{"title":"X"}`, `{"id":"b9","title":"s2:X"}`},
		{"whole body, proto names accepted", "POST", "/v1/echo", `{"id":"e","pages":3,"tags":["x","y"],"author":{"name":"A"}}`,
			`{"id":"e","pages":3,"tags":["x","y"],"author":{"name":"A"}}`},
		{"explicit mapping", "GET", "/v1/ping/p1", "", `{"id":"pong:p1"}`},
		{"response_body", "GET", "/v1/ping/p2/id", "", `"pong:p2"`},
		{"nested query", "GET", "/v1/shelves/s3/books?count=2&filter.prefix=p", "", `[{"id":"p0","title":"s3"},{"id":"p1","title":"s3"}]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, ct, body := call(t, c.method, g.URL+c.path, c.body)
			if st != 200 || ct != "application/json" {
				t.Fatalf("status %d, content-type %q, body %s", st, ct, body)
			}
			sameJSON(t, c.name, body, c.want)
		})
	}
	// A gRPC client's own call on the same route is proxied as it is.
	cc, err := grpc.NewClient(g.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	set, _ := transcode.Load(desc)
	md, _ := set.Method("shop.v1.Plain/Ping")
	in, out := dynamicpb.NewMessage(md.Input()), dynamicpb.NewMessage(md.Output())
	setStr(in, "book_id", "native")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cc.Invoke(ctx, "/shop.v1.Plain/Ping", in, out); err != nil {
		t.Fatalf("native gRPC call: %v", err)
	}
	if got := field(out, "id").String(); got != "pong:native" {
		t.Errorf("native gRPC call answered id %q", got)
	}
}

// TestTranscodeMetadataAndTimeout: request headers reach the method as
// metadata (Grpc-Metadata-NAME as NAME), and a unary call slower than the
// route's timeout gives 504.
func TestTranscodeMetadataAndTimeout(t *testing.T) {
	addr, desc := startShop(t)
	g := gwtest.Start(t, strings.Replace(transcodeDoc(addr, desc, ""), "    timeout: 5s", "    timeout: 300ms", 1))
	for _, h := range []string{"X-Who", "Grpc-Metadata-X-Who"} {
		st, _, body := call(t, "GET", g.URL+"/v1/ping/m", "", h, "me")
		if st != 200 {
			t.Fatalf("%s: status %d: %s", h, st, body)
		}
		sameJSON(t, h, body, `{"id":"pong:m|me"}`)
	}
	start := time.Now()
	st, _, body := call(t, "GET", g.URL+"/v1/ping/slow", "")
	if st != 504 || !strings.Contains(body, "upstream_timeout") {
		t.Errorf("slow call: status %d, body %s; want 504 upstream_timeout", st, body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow call took %v with a 300ms timeout", d)
	}
}

// TestTranscodeOptions: use_proto_names and emit_unpopulated shape the
// answer.
func TestTranscodeOptions(t *testing.T) {
	addr, desc := startShop(t)
	g := gwtest.Start(t, strings.Replace(transcodeDoc(addr, desc, ""), "      services:", "      use_proto_names: true\n      emit_unpopulated: true\n      services:", 1))
	st, _, body := call(t, "GET", g.URL+"/v1/ping/x", "")
	if st != 200 {
		t.Fatalf("status %d: %s", st, body)
	}
	sameJSON(t, "options", body, `{"id":"pong:x","title":"","pages":0,"tags":[],"author":null}`)
}

// TestTranscodeErrors: gRPC statuses become HTTP statuses with a
// google.rpc.Status body (details included); requests the transcoder
// cannot map or decode get the gateway's JSON errors.
func TestTranscodeErrors(t *testing.T) {
	addr, desc := startShop(t)
	g := gwtest.Start(t, transcodeDoc(addr, desc, ""))
	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string // the JSON body, or the gateway error code
	}{
		{"not found with details", "GET", "/v1/shelves/s/books/missing", "", 404,
			`{"code":5,"message":"book missing","details":[{"@type":"type.googleapis.com/google.rpc.ResourceInfo","resourceType":"book","resourceName":"missing"}]}`},
		{"invalid argument", "GET", "/v1/shelves/s/books/bad", "", 400, `{"code":3,"message":"bad id","details":[]}`},
		{"unavailable", "GET", "/v1/shelves/s/books/down", "", 503, `{"code":14,"message":"try later","details":[]}`},
		{"invalid JSON", "POST", "/v1/echo", `{"id":`, 400, "bad_request"},
		{"wrong JSON type", "POST", "/v1/echo", `{"pages":"many"}`, 400, "bad_request"},
		{"unknown JSON field", "POST", "/v1/echo", `{"nope":1}`, 400, "bad_request"},
		{"unknown query parameter", "GET", "/v1/shelves/s/books/b?nope=1", "", 400, "bad_request"},
		{"bad query value", "GET", "/v1/shelves/s/books/b?full=maybe", "", 400, "bad_request"},
		{"unknown path", "GET", "/v1/nothing", "", 404, "route_not_found"},
		{"unmapped method", "DELETE", "/v1/shelves/s/books/b", "", 404, "route_not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, ct, body := call(t, c.method, g.URL+c.path, c.body)
			if st != c.status || ct != "application/json" {
				t.Fatalf("status %d (want %d), content-type %q, body %s", st, c.status, ct, body)
			}
			if strings.HasPrefix(c.want, "{") {
				// protojson leaves out an empty details list.
				sameJSON(t, c.name, body, strings.Replace(c.want, `,"details":[]`, "", 1))
				return
			}
			var e struct {
				Error struct {
					Status int    `json:"status"`
					Code   string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != c.want || e.Error.Status != c.status {
				t.Errorf("body %s: want the gateway error %d %s", body, c.status, c.want)
			}
		})
	}
}

// TestTranscodeStreaming: a server-streaming method answers a JSON array,
// or newline-delimited JSON with ?stream=ndjson, each message flushed as
// it comes; a status before the first message is the HTTP status, one
// after it ends ndjson with an error line.
func TestTranscodeStreaming(t *testing.T) {
	addr, desc := startShop(t)
	g := gwtest.Start(t, transcodeDoc(addr, desc, ""))

	st, _, body := call(t, "GET", g.URL+"/v1/shelves/s/books?count=3", "")
	if st != 200 {
		t.Fatalf("array: status %d: %s", st, body)
	}
	sameJSON(t, "array", body, `[{"id":"0","title":"s"},{"id":"1","title":"s"},{"id":"2","title":"s"}]`)

	st, _, body = call(t, "GET", g.URL+"/v1/shelves/s/books?count=0", "")
	if st != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("empty stream: status %d, body %q", st, body)
	}

	// ndjson, read line by line as the messages arrive.
	resp, err := gwClient().Get(g.URL + "/v1/shelves/s/books?count=3&stream=ndjson&filter.prefix=n")
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
		t.Fatalf("ndjson: status %d, content-type %q", resp.StatusCode, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	resp.Body.Close()
	if len(lines) != 3 {
		t.Fatalf("ndjson: %d lines, want 3: %q", len(lines), lines)
	}
	for i, l := range lines {
		sameJSON(t, "ndjson line", l, fmt.Sprintf(`{"id":"n%d","title":"s"}`, i))
	}
	if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
		t.Errorf("ndjson: trailer Grpc-Status %q, want 0", got)
	}

	// A status before any message: its HTTP status.
	st, _, body = call(t, "GET", g.URL+"/v1/shelves/s/books?count=2&filter.prefix=none", "")
	if st != 403 {
		t.Errorf("failing stream: status %d, want 403: %s", st, body)
	}
	// A status after messages: the ndjson stream's last line.
	st, _, body = call(t, "GET", g.URL+"/v1/shelves/s/books?count=2&filter.prefix=fail&stream=ndjson", "")
	lines = strings.Split(strings.TrimSpace(body), "\n")
	if st != 200 || len(lines) != 3 {
		t.Fatalf("broken ndjson stream: status %d, body %q", st, body)
	}
	sameJSON(t, "error line", lines[2], `{"error":{"code":14,"message":"stream broke"}}`)
	// ... and an array that is never closed.
	resp, err = gwClient().Get(g.URL + "/v1/shelves/s/books?count=2&filter.prefix=fail")
	if err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil && json.Valid(b) {
			t.Errorf("broken array stream gave a complete JSON body %q", b)
		}
	}
}

// TestTranscodeTruncatedAnswer: an upstream whose gRPC message is cut
// short by the end of its stream gives 502, not a hang or a 500; one
// that answers something other than gRPC gives 502 too.
func TestTranscodeTruncatedAnswer(t *testing.T) {
	_, desc := startShop(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/shop.v1.Plain/Ping", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		var head [5]byte
		binary.BigEndian.PutUint32(head[1:], 100)
		w.Write(head[:])
		w.Write([]byte("only ten b")) // 10 of the 100 bytes announced
	})
	mux.HandleFunc("/shop.v1.Shop/GetBook", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>not grpc</html>"))
	})
	srv := &http.Server{Handler: mux, Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g := gwtest.Start(t, transcodeDoc(ln.Addr().String(), desc, ""))
	for _, path := range []string{"/v1/ping/x", "/v1/shelves/s/books/b"} {
		start := time.Now()
		st, _, body := call(t, "GET", g.URL+path, "")
		if st != 502 || !strings.Contains(body, "bad_upstream_response") {
			t.Errorf("%s: status %d, body %s; want 502 bad_upstream_response", path, st, body)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: took %v", path, d)
		}
	}
}

// TestTranscodeReload: the descriptor set is read again on reload, so a
// changed file changes the mapping; a garbage file or a missing service is
// refused with the key's position, and the previous config keeps serving.
func TestTranscodeReload(t *testing.T) {
	addr, desc := startShop(t)
	doc := transcodeDoc(addr, desc, "")
	g := gwtest.Start(t, doc)
	if st, _, body := call(t, "GET", g.URL+"/v1/shelves/s/books/b", ""); st != 200 {
		t.Fatalf("before reload: %d %s", st, body)
	}
	if err := os.WriteFile(desc, shopSet(t, "/v2/books/{book_id}"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.Reload(t, doc)
	if st, _, body := call(t, "GET", g.URL+"/v2/books/b", ""); st != 200 {
		t.Errorf("new path after reload: %d %s", st, body)
	}
	if st, _, _ := call(t, "GET", g.URL+"/v1/shelves/s/books/b", ""); st != 404 {
		t.Errorf("old path after reload: %d, want 404", st)
	}

	// Refused reloads, each positioned at its key.
	garbage := filepath.Join(t.TempDir(), "garbage.pb")
	os.WriteFile(garbage, []byte("\xff\xff\xff not a descriptor set"), 0o600)
	for _, c := range []struct{ name, doc, want string }{
		{"garbage", transcodeDoc(addr, garbage, ""), ":17:23: routes[0].grpc_json.descriptor_set: read descriptor_set"},
		{"missing file", transcodeDoc(addr, desc+".nope", ""), ":17:23: routes[0].grpc_json.descriptor_set: read descriptor_set"},
		{"missing service", strings.Replace(doc, "[shop.v1.Shop]", "[shop.v1.Shop, shop.v1.Nope]", 1),
			":18:32: routes[0].grpc_json.services[1]: service shop.v1.Nope is not in the descriptor set (it holds shop.v1.Shop, shop.v1.Plain)"},
		{"unknown rpc", strings.Replace(doc, "shop.v1.Plain/Ping", "shop.v1.Plain/Pong", 1),
			"routes[0].grpc_json.mappings[0].rpc: service shop.v1.Plain has no method Pong"},
		{"bad template", strings.Replace(doc, "/v1/ping/{book_id}", "/v1/ping/{book_id", 1),
			"routes[0].grpc_json.mappings[0].path: path \"/v1/ping/{book_id\": unclosed variable"},
		{"unknown path field", strings.Replace(doc, "/v1/ping/{book_id}", "/v1/ping/{nope}", 1),
			"routes[0].grpc_json.mappings[0].path: path \"/v1/ping/{nope}\": message shop.v1.GetBookRequest has no field \"nope\""},
	} {
		g.Write(t, c.doc)
		err := g.App.Reload()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: reload error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if st, _, body := call(t, "GET", g.URL+"/v2/books/b", ""); st != 200 {
		t.Errorf("after refused reloads: %d %s", st, body)
	}
}
