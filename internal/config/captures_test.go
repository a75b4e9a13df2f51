package config

import (
	"errors"
	"slices"
	"testing"
)

// capBase is a route with a template match, for the capture rules; the
// route's keys are appended (line 8 onwards).
const capBase = `listeners:
  - address: "127.0.0.1:8080"
upstreams:
  app: {targets: [{address: "127.0.0.1:9001"}]}
  hashed: {targets: [{address: "127.0.0.1:9002"}], balancer: ring_hash, hash_key: "param:id"}
routes:
  - match: {path: {template: "/u/{id}/{*rest}"}}
`

func TestCaptureRules(t *testing.T) {
	tests := []struct {
		name, route, want string // want: "" for valid, else the error line after "t.yaml:"
	}{
		{"rewrite path", "    upstream: app\n    rewrite: {path: \"/v1/users/{id}/{rest}\"}\n", ""},
		{"rewrite path star", "    upstream: app\n    rewrite: {path: \"/v1/{*rest}\"}\n", ""},
		{"rewrite unknown", "    upstream: app\n    rewrite: {path: \"/v1/{user}\"}\n",
			"9:21: routes[0].rewrite.path: placeholder {user}: the route's match.path captures only id, rest"},
		{"rewrite both", "    upstream: app\n    rewrite: {prefix: /a/, path: /b}\n",
			"9:34: routes[0].rewrite.path: rewrite has both prefix and path; use one"},
		{"rewrite brace", "    upstream: app\n    rewrite: {path: \"/v1/{id\"}\n",
			"9:21: routes[0].rewrite.path: \"/v1/{id\": unclosed \"{\""},
		{"rewrite query", "    upstream: app\n    rewrite: {path: \"/v1?x=1\"}\n",
			"9:21: routes[0].rewrite.path: path must not hold a query or fragment (the request's query is kept)"},
		{"rewrite strip", "    upstream: app\n    strip_prefix: true\n    rewrite: {path: /x}\n",
			"9:19: routes[0].strip_prefix: strip_prefix does nothing with rewrite.path, which replaces the whole path"},
		{"aggregate ok", "    aggregate: {backends: [{upstream: app, path: \"/users/{id}?page={query.page}\"}]}\n", ""},
		{"aggregate unknown", "    aggregate: {backends: [{upstream: app, path: \"/users/{uid}\"}]}\n",
			"8:50: routes[0].aggregate.backends[0].path: placeholder {uid}: the route's match.path captures only id, rest"},
		{"aggregate group twice", "    aggregate: {backends: [{upstream: app, path: /a, group: g}, {upstream: app, path: /b, group: g}]}\n",
			"8:98: routes[0].aggregate.backends[1].group: group \"g\" is already used by routes[0].aggregate.backends[0]"},
		{"aggregate allow", "    aggregate: {backends: [{upstream: app, path: /a, allow: [a., b]}]}\n",
			"8:62: routes[0].aggregate.backends[0].allow[0]: invalid field path \"a.\" (want name or dotted.path)"},
		{"aggregate timeout", "    aggregate: {backends: [{upstream: app, path: /a, timeout: -1s}]}\n",
			"8:63: routes[0].aggregate.backends[0].timeout: negative duration \"-1s\""},
		{"hash param ok", "    upstream: hashed\n", ""},
		{"step ok", "    aggregate: {backends: [{upstream: app, path: /a, group: a}, {upstream: app, path: \"/b/{resp.a.x.y}?q={resp.a.z}\"}]}\n", ""},
		{"step later group", "    aggregate: {backends: [{upstream: app, path: \"/b/{resp.a.x}\"}, {upstream: app, path: /a, group: a}]}\n",
			"8:50: routes[0].aggregate.backends[0].path: placeholder {resp.a.x}: no backend before this one has group \"a\""},
		{"step bad", "    aggregate: {backends: [{upstream: app, path: \"/b/{resp.}\"}]}\n",
			"8:50: routes[0].aggregate.backends[0].path: \"/b/{resp.}\": invalid placeholder {resp.} (want {resp.GROUP.field})"},
		{"resp in rewrite", "    upstream: app\n    rewrite: {path: \"/v1/{resp.a}\"}\n",
			"9:21: routes[0].rewrite.path: \"/v1/{resp.a}\": invalid placeholder {resp.a} (want {name} or {query.NAME})"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("t.yaml", []byte(capBase+tt.route))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("LoadBytes = %v, want Errors with %q", err, tt.want)
			}
			for _, e := range errs {
				if e.Error() == "t.yaml:"+tt.want {
					return
				}
			}
			t.Errorf("missing error line\nwant: t.yaml:%s\ngot:\n%v", tt.want, err)
		})
	}
}

// TestCaptureRulesOtherMatches: regex named groups supply captures, and a
// prefix match supplies none.
func TestCaptureRulesOtherMatches(t *testing.T) {
	const head = "listeners:\n  - address: \"127.0.0.1:8080\"\nupstreams:\n  app: {targets: [{address: \"127.0.0.1:9001\"}]}\n" +
		"  hashed: {targets: [{address: \"127.0.0.1:9002\"}], balancer: maglev, hash_key: \"param:id\"}\nroutes:\n"
	tests := []struct {
		name, route, want string
	}{
		{"regex group", "  - {match: {path: {regex: \"^/p/(?P<id>[0-9]+)$\"}}, upstream: app, rewrite: {path: \"/x/{id}\"}}\n", ""},
		{"regex no group", "  - {match: {path: {regex: \"^/p/([0-9]+)$\"}}, upstream: app, rewrite: {path: \"/x/{id}\"}}\n",
			"7:78: routes[0].rewrite.path: placeholder {id}: the route's match.path has no captures (a template {name} or a regex (?P<name>...))"},
		{"prefix", "  - {match: {path: {prefix: /p/}}, upstream: app, rewrite: {path: \"/x/{id}\"}}\n",
			"7:67: routes[0].rewrite.path: placeholder {id}: captures need match.path.template or a regex with (?P<name>...) groups"},
		{"hash param missing", "  - {match: {path: {prefix: /p/}}, upstream: hashed}\n",
			"7:46: routes[0].upstream: upstream \"hashed\" hashes by capture \"id\" (hash_key param:id): captures need match.path.template or a regex with (?P<name>...) groups"},
		{"hash param bad", "  - {upstream: app}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("t.yaml", []byte(head+tt.route))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var errs Errors
			errors.As(err, &errs)
			for _, e := range errs {
				if e.Error() == "t.yaml:"+tt.want {
					return
				}
			}
			t.Errorf("missing error line\nwant: t.yaml:%s\ngot:\n%v", tt.want, err)
		})
	}
}

func TestPathParams(t *testing.T) {
	tests := []struct {
		p    PathMatch
		want []string
	}{
		{PathMatch{Template: "/u/{id}/x/{*rest}"}, []string{"id", "rest"}},
		{PathMatch{Regex: "^/u/(?P<id>[0-9]+)/(?P<b>.*)$"}, []string{"id", "b"}},
		{PathMatch{Regex: "^/u/([0-9]+)$"}, nil},
		{PathMatch{Prefix: "/u/"}, nil},
		{PathMatch{Template: "bad"}, nil},
	}
	for _, tt := range tests {
		if got := PathParams(tt.p); !slices.Equal(got, tt.want) {
			t.Errorf("PathParams(%+v) = %v, want %v", tt.p, got, tt.want)
		}
	}
}
