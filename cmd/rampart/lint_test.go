package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateWarnings(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // warning lines, in order
	}{
		{
			name: "clean",
			yaml: `
upstreams:
  a: {targets: [{address: "127.0.0.1:1"}], failover: b}
  b: {targets: [{address: "127.0.0.1:2"}]}
routes:
  - {name: one, match: {path: {prefix: /x/}}, upstream: a}
  - {name: two, match: {path: {prefix: /x/}, methods: [GET]}, upstream: a}
  - {name: three, match: {path: {prefix: /x/}, hosts: [a.example.com]}, upstream: a}
`,
		},
		{
			name: "shadowed and unused",
			yaml: `
upstreams:
  a: {targets: [{address: "127.0.0.1:1"}]}
  spare: {targets: [{address: "127.0.0.1:2"}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: a}
  - {name: same, match: {}, upstream: a}
  - {name: gets, match: {path: {exact: /e}, methods: [GET, POST]}, upstream: a}
  - {name: get, match: {path: {exact: /e}, methods: [get]}, upstream: a}
  - {name: hosts, match: {hosts: [A.example.com], headers: {x-a: "1"}}, upstream: a}
  - {name: hosts2, match: {hosts: [a.example.com], headers: {X-A: "1"}}, upstream: a}
`,
			want: []string{
				`:4:3: warning: upstreams.spare: upstream "spare" is not used by any route, listener or failover`,
				`:7:5: warning: routes[1]: route "same" can never match: route "all" (routes[0])`,
				`:9:5: warning: routes[3]: route "get" can never match: route "gets" (routes[2])`,
				`:11:5: warning: routes[5]: route "hosts2" can never match: route "hosts" (routes[4])`,
			},
		},
		{
			name: "catch-all with regex and template routes is clean",
			yaml: `
upstreams:
  a: {targets: [{address: "127.0.0.1:1"}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: a}
  - {name: item, match: {path: {regex: "^/items/[0-9]+$"}}, upstream: a}
  - {name: user, match: {path: {template: "/u/{id}"}}, upstream: a}
  - {name: shorter, match: {path: {prefix: /items}}, upstream: a}
  - {name: post-only, match: {path: {prefix: /u/}, methods: [POST]}, upstream: a}
  - {name: on-host, match: {path: {prefix: /v/}, hosts: [a.example.com]}, upstream: a}
  - {name: v, match: {path: {regex: "/v/.*"}}, upstream: a}
  - {name: header, match: {path: {prefix: /w/}, headers: {X-A: "1"}}, upstream: a}
  - {name: w, match: {path: {template: "/w/{x}"}}, upstream: a}
`,
		},
		{
			name: "outranked by a prefix as long as the literal",
			yaml: `
upstreams:
  a: {targets: [{address: "127.0.0.1:1"}]}
routes:
  - {name: item, match: {path: {regex: "^/items/[0-9]+$"}, methods: [GET]}, upstream: a}
  - {name: items, match: {path: {prefix: /items/}}, upstream: a}
  - {name: any, match: {path: {regex: "/.*"}, hosts: [a.example.com]}, upstream: a}
  - {name: all, match: {headers: {X-A: "1"}}, upstream: a}
  - {name: all-a, match: {path: {template: "/{*rest}"}, headers: {X-A: "1", X-B: "2"}}, upstream: a}
  - {name: user, match: {path: {template: "/u/{id}"}, hosts: [b.example.com]}, upstream: a}
  - {name: users, match: {path: {prefix: /u/}, hosts: [B.example.com], methods: [GET]}, upstream: a}
`,
			want: []string{
				`:5:5: warning: routes[0]: route "item" can never win: route "items" (routes[1]) matches every request it would, and its prefix "/items/" is as long as this route's literal prefix`,
				`:9:5: warning: routes[4]: route "all-a" can never win: route "all" (routes[3])`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.yaml")
			os.WriteFile(path, []byte("listeners: [{name: p, address: \"127.0.0.1:0\"}]"+tc.yaml), 0o600)
			var out, errb bytes.Buffer
			if code := run([]string{"validate", "-c", path}, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if lines[len(lines)-1] != "ok" {
				t.Errorf("last line %q, want ok", lines[len(lines)-1])
			}
			got := lines[:len(lines)-1]
			if len(got) != len(tc.want) {
				t.Fatalf("warnings:\n%s\nwant %d", strings.Join(got, "\n"), len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], path) || !strings.Contains(got[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
