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
  - {name: r, match: {path: {prefix: /}}, upstream: u, policies: [rl2, rl, keys, c, k2, auth]}
policies:
  rl2: {type: rate_limit, key: claim:sub, rate: 1/s}
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
		`t.yaml:6:67: routes[0].policies[0]: policy "rl2" reads key claim:sub from a verified token: list a jwt policy before it on this route`,
		`t.yaml:13:12: policies.rl.store: store redis needs cluster.redis (where Redis is)`,
		`t.yaml:16:13: policies.keys.header: invalid header name "bad header"`,
		`t.yaml:19:21: policies.c.allow_origins[0]: invalid origin "https://a.example/": an origin has no path, query or user (want scheme://host[:port])`,
		`t.yaml:21:16: policies.auth.type: jwt needs a key source: jwks_url, jwks_file, keys, secret or secret_file`,
		`t.yaml:23:26: consumers[0].api_keys[0]: sha256 key must be 64 hex digits, got 2 characters`,
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
