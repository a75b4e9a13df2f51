package compile

import (
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// TestCaptureUse: a headers policy's placeholders must be supplied by every
// route listing it, and only routes whose settings use captures extract
// them.
func TestCaptureUse(t *testing.T) {
	const doc = `listeners: [{address: "127.0.0.1:0"}]
upstreams:
  app: {targets: [{address: "127.0.0.1:9"}]}
  hashed: {targets: [{address: "127.0.0.1:9"}], balancer: maglev, hash_key: "param:id"}
policies:
  user: {type: headers, request: {set: {X-User: "u-{id}"}}}
  plain: {type: headers, request: {set: {X-Json: '{"a":1}'}}}
routes:
  - {name: tpl, match: {path: {template: "/u/{id}"}}, upstream: app, policies: [user]}
  - {name: tpl-unused, match: {path: {template: "/v/{id}"}}, upstream: app, policies: [plain]}
  - {name: rewrite, match: {path: {regex: "^/r/(?P<id>[0-9]+)$"}}, upstream: app, rewrite: {path: "/x/{id}"}}
  - {name: hashed, match: {path: {template: "/h/{id}"}}, upstream: hashed}
  - {name: agg, match: {path: {template: "/a/{id}"}}, aggregate: {backends: [{upstream: app, path: "/x/{id}"}]}}
  - {name: prefix, match: {path: {prefix: /}}, upstream: app}
`
	cfg, err := config.LoadBytes("c.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Build(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"tpl": true, "tpl-unused": false, "rewrite": true, "hashed": true, "agg": true, "prefix": false}
	for _, r := range snap.Routes {
		if r.Params != want[r.Name] {
			t.Errorf("route %s: Params = %v, want %v", r.Name, r.Params, want[r.Name])
		}
	}

	bad := strings.Replace(doc, "{name: prefix, match: {path: {prefix: /}}, upstream: app}", "{name: prefix, match: {path: {prefix: /}}, upstream: app, policies: [user]}", 1)
	cfg, err = config.LoadBytes("c.yaml", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(cfg, Deps{})
	const msg = `c.yaml:14:74: routes[5].policies[0]: policy "user" uses capture {id}, which this route's match.path does not supply (captures: none)`
	if err == nil || !strings.Contains(err.Error(), msg) {
		t.Errorf("Build = %v, want %q", err, msg)
	}
}
