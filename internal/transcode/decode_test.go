package transcode

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/rampart-gw/rampart/internal/transcode/transcodetest"
)

const testProto = `syntax = "proto3";
package t.v1;
import "google/api/annotations.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/timestamp.proto";
enum Color { COLOR_UNSPECIFIED = 0; RED = 1; }
message Inner { string name = 1; repeated int64 nums = 2; }
message Req {
  string id = 1; int32 n = 2; uint64 u = 3; bool b = 4; double d = 5; bytes raw = 6; Color color = 7;
  repeated string tags = 8; Inner inner = 9; map<string, string> labels = 10;
  google.protobuf.StringValue note = 11; google.protobuf.Timestamp at = 12; float f = 13; sint32 s = 14;
}
service S {
  rpc Whole(Req) returns (Req) { option (google.api.http) = { post: "/v1/whole/{id}" body: "*" }; }
  rpc Field(Req) returns (Req) { option (google.api.http) = { put: "/v1/field/{inner.name}" body: "tags" }; }
  rpc Query(Req) returns (Req) { option (google.api.http) = { get: "/v1/query/{id}" }; }
  rpc Stream(Req) returns (stream Req) { option (google.api.http) = { get: "/v1/stream" }; }
}
`

func testHandler(t testing.TB) *Handler {
	data, err := transcodetest.Build(map[string]string{"t.proto": testProto}, "t.proto")
	if err != nil {
		t.Fatal(err)
	}
	set, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	bs, probs := Bindings(set, []string{"t.v1.S"}, nil)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return &Handler{Bindings: bs, Set: set}
}

// decode builds the request message of method path body as the handler
// would, and returns it as JSON.
func decode(t testing.TB, h *Handler, method, target, body string) (string, bool, error) {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	b, caps := h.match(method, r.URL.EscapedPath())
	if b == nil {
		t.Fatalf("%s %s: no binding", method, target)
	}
	msg, ndjson, err := h.request(r, b, caps)
	if err != nil {
		return "", false, err
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(js), ndjson, nil
}

func TestRequestMessage(t *testing.T) {
	h := testHandler(t)
	cases := []struct{ method, target, body, want, err string }{
		{"POST", "/v1/whole/p", `{"id":"body","n":3,"inner":{"name":"x"}}`, `{"id":"p","n":3,"inner":{"name":"x"}}`, ""},
		{"POST", "/v1/whole/p", ``, `{"id":"p"}`, ""},
		{"POST", "/v1/whole/p?n=9", `{}`, `{"id":"p"}`, ""}, // body "*": the query is not read
		{"POST", "/v1/whole/p", `{"n":`, "", "invalid JSON body"},
		{"POST", "/v1/whole/p", `[1]`, "", "invalid JSON body"},
		{"PUT", "/v1/field/nm?n=2", `["a","b"]`, `{"n":2,"tags":["a","b"],"inner":{"name":"nm"}}`, ""},
		{"PUT", "/v1/field/nm", `{"a":1}`, "", "invalid JSON body for field tags"},
		{"GET", "/v1/query/q?n=-4&u=5&b=true&d=1.5&raw=aGk&color=RED&tags=x&tags=y&inner.nums=1&inner.nums=2&note=hi&at=2026-01-02T03:04:05Z&f=2.5&s=-1",
			"", `{"id":"q","n":-4,"u":"5","b":true,"d":1.5,"raw":"aGk=","color":"RED","tags":["x","y"],"inner":{"nums":["1","2"]},"note":"hi","at":"2026-01-02T03:04:05Z","f":2.5,"s":-1}`, ""},
		{"GET", "/v1/query/q?color=1", "", `{"id":"q","color":"RED"}`, ""},
		{"GET", "/v1/query/q?id=other", "", `{"id":"q"}`, ""}, // the path wins
		{"GET", "/v1/query/q?n=x", "", "", "is not an int32"},
		{"GET", "/v1/query/q?n=99999999999", "", "", "is not an int32"},
		{"GET", "/v1/query/q?color=BLUE", "", "", "is not a value of enum"},
		{"GET", "/v1/query/q?inner=x", "", "", "is a message or map"},
		{"GET", "/v1/query/q?labels=x", "", "", "is a message or map"},
		{"GET", "/v1/query/q?nope=1", "", "", "has no field"},
		{"GET", "/v1/query/q?inner.nope=1", "", "", "has no field"},
		{"GET", "/v1/query/q?%zz", "", "", "malformed query"},
	}
	for _, c := range cases {
		got, _, err := decode(t, h, c.method, c.target, c.body)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s %s %s: error %v, want %q", c.method, c.target, c.body, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s %s %s: %v", c.method, c.target, c.body, err)
		case c.err == "":
			jsonEqual(t, got, c.want)
		}
	}
	if _, nd, _ := decode(t, h, "GET", "/v1/stream?stream=ndjson", ""); !nd {
		t.Error("?stream=ndjson on a streaming method is not ndjson")
	}
	h.DiscardUnknown = true
	if got, _, err := decode(t, h, "GET", "/v1/query/q?nope=1", ""); err != nil || got != `{"id":"q"}` {
		t.Errorf("discard_unknown: %s %v", got, err)
	}
}

// jsonEqual compares two JSON texts as values.
func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("%q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got %s, want %s", got, want)
	}
}

// FuzzDecode: whatever the body and query, building the request message
// never panics, and a message that was built encodes.
func FuzzDecode(f *testing.F) {
	h := testHandler(f)
	f.Add(`{"id":"x","n":1,"inner":{"nums":[1,"2"]},"labels":{"a":"b"},"at":"2026-01-02T03:04:05Z"}`, "n=1&tags=a")
	f.Add(`["a"]`, "inner.nums=3&color=RED")
	f.Add(`{"note":null,"raw":"aGk="}`, "at=bad&note=x")
	f.Fuzz(func(t *testing.T, body, query string) {
		for _, target := range []string{"/v1/whole/p", "/v1/field/n", "/v1/query/q"} {
			method := map[string]string{"/v1/whole/p": "POST", "/v1/field/n": "PUT", "/v1/query/q": "GET"}[target]
			r := httptest.NewRequest(method, target, strings.NewReader(body))
			r.URL.RawQuery = query
			b, caps := h.match(method, r.URL.EscapedPath())
			msg, _, err := h.request(r, b, caps)
			if err != nil {
				continue
			}
			if _, err := proto.Marshal(msg); err != nil {
				t.Errorf("%s: built message does not encode: %v", target, err)
			}
		}
	})
}
