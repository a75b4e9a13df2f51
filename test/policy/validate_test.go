package policy

import (
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/compile"
	"github.com/rampart-gw/rampart/internal/config"
)

// TestConfigProblems checks what `rampart validate` reports for broken
// policies: every problem once, positioned, and no consequential "unknown
// policy" errors for the routes that name them.
func TestConfigProblems(t *testing.T) {
	doc := `listeners:
  - {name: public, address: "127.0.0.1:0"}
upstreams:
  u: {targets: [{address: "127.0.0.1:9"}]}
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: u, policies: [rl, keys, c, k2, auth]}
policies:
  rl:
    type: rate_limit
    key: [ip, claim:sub]
    rate: 10/s
    store: redis
  keys:
    type: api_key
    header: "bad header"
  c:
    type: cors
    allow_origins: ["https://a.example/"]
  k2: {type: api_key}
  auth: {type: jwt}
consumers:
  - {name: a, api_keys: ["sha256:zz"]}
`
	want := []string{
		`t.yaml:10:15: policies.rl.key[1]: key "claim:sub" needs the jwt policy, which is not available in this release`,
		`t.yaml:12:12: policies.rl.store: store redis needs cluster.redis (where Redis is)`,
		`t.yaml:15:13: policies.keys.header: invalid header name "bad header"`,
		`t.yaml:18:21: policies.c.allow_origins[0]: invalid origin "https://a.example/": an origin has no path, query or user (want scheme://host[:port])`,
		`t.yaml:20:16: policies.auth.type: policy type "jwt" is not available in this release`,
		`t.yaml:22:26: consumers[0].api_keys[0]: sha256 key must be 64 hex digits, got 2 characters`,
	}
	cfg, err := config.LoadBytes("t.yaml", []byte(doc))
	if err == nil {
		_, err = compile.Build(cfg, compile.Deps{Log: discardLog()})
	}
	if err == nil {
		t.Fatal("config accepted")
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", err, strings.Join(want, "\n"))
	}
}
