package config

import (
	"strings"
	"testing"
)

// grpcBase is base with an h2c upstream and a grpc_json route.
const grpcBase = `listeners:
  - address: "127.0.0.1:8080"
upstreams:
  app: {protocol: h2c, targets: [{address: "127.0.0.1:9001"}]}
  h1: {targets: [{address: "127.0.0.1:9002"}]}
routes:
  - upstream: app
    grpc_json:
      descriptor_set: shop.pb
      services: [shop.v1.Shop]
      mappings:
        - {method: get, path: "/v1/ping/{id}", rpc: shop.v1.Plain/Ping, body: "*", response_body: id}
`

// TestGRPCJSON checks the grpc_json keys Validate owns (compile checks the
// descriptor set and the templates against it).
func TestGRPCJSON(t *testing.T) {
	c, err := LoadBytes("t.yaml", []byte(grpcBase))
	if err != nil {
		t.Fatalf("valid grpc_json refused: %v", err)
	}
	if g := c.Routes[0].GRPCJSON; g == nil || g.DescriptorSet != "shop.pb" || len(g.Mappings) != 1 || g.Mappings[0].RPC != "shop.v1.Plain/Ping" {
		t.Fatalf("grpc_json decoded as %+v", c.Routes[0].GRPCJSON)
	}
	tests := []struct{ name, old, new, want string }{
		{"http1 upstream", "  - upstream: app", "  - upstream: h1", `9:7: routes[0].grpc_json: grpc_json needs an upstream that speaks HTTP/2: upstream "h1" has protocol "http1" (use h2c, or tls)`},
		{"split", "  - upstream: app", "  - split: [{upstream: app, weight: 1}]", "9:7: routes[0].grpc_json: grpc_json needs upstream (not split or aggregate)"},
		{"no descriptor", "descriptor_set: shop.pb", "descriptor_set: \"\"", "9:23: routes[0].grpc_json.descriptor_set: descriptor_set is required"},
		{"nothing to serve", "      services: [shop.v1.Shop]\n      mappings:\n        - {method: get, path: \"/v1/ping/{id}\", rpc: shop.v1.Plain/Ping, body: \"*\", response_body: id}\n", "", "9:7: routes[0].grpc_json: grpc_json needs services or mappings"},
		{"bad service", "[shop.v1.Shop]", "[shop.v1.Shop, \"a b\"]", `10:32: routes[0].grpc_json.services[1]: invalid service name "a b" (want pkg.Service)`},
		{"duplicate service", "[shop.v1.Shop]", "[shop.v1.Shop, shop.v1.Shop]", `10:32: routes[0].grpc_json.services[1]: duplicate service "shop.v1.Shop" (also services[0])`},
		{"bad method", "method: get", "method: HEAD", `12:20: routes[0].grpc_json.mappings[0].method: invalid method "HEAD" (want GET, POST, PUT, PATCH or DELETE)`},
		{"relative path", `path: "/v1/ping/{id}"`, `path: "v1"`, `12:31: routes[0].grpc_json.mappings[0].path: path must start with "/"`},
		{"bad rpc", "rpc: shop.v1.Plain/Ping", "rpc: Ping", `12:53: routes[0].grpc_json.mappings[0].rpc: invalid rpc "Ping" (want pkg.Service/Method)`},
		{"bad body", `body: "*"`, `body: "a.b"`, `12:79: routes[0].grpc_json.mappings[0].body: invalid body "a.b" (want "*", a field name, or nothing)`},
		{"bad response_body", "response_body: id", "response_body: \"*\"", `12:99: routes[0].grpc_json.mappings[0].response_body: invalid response_body "*" (want a field name)`},
		{"negative max", "descriptor_set: shop.pb", "descriptor_set: shop.pb\n      max_message_bytes: -1", "10:26: routes[0].grpc_json.max_message_bytes: must not be negative"},
		{"with mirror", "  - upstream: app", "  - upstream: app\n    mirror: {upstream: app}", "8:13: routes[0].mirror: mirror does not work with grpc_json"},
		{"with strip_prefix", "  - upstream: app", "  - upstream: app\n    match: {path: {prefix: /v1/}}\n    strip_prefix: true", "9:19: routes[0].strip_prefix: strip_prefix does not work with grpc_json (the gRPC method names the path)"},
		{"unknown key", "descriptor_set: shop.pb", "descriptor_set: shop.pb\n      use_json_names: true", `10:7: routes[0].grpc_json: unknown key "use_json_names"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(grpcBase, tt.old, tt.new, 1)
			if doc == grpcBase {
				t.Fatal("replacement did not apply")
			}
			_, err := LoadBytes("t.yaml", []byte(doc))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, "t.yaml:"+tt.want) {
					return
				}
			}
			t.Errorf("missing error line\nwant: t.yaml:%s\ngot:\n%v", tt.want, err)
		})
	}
}
