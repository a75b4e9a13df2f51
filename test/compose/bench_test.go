package compose

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// BenchmarkAggregate measures the cost of the fan-out and merge: an
// aggregate of three instant backends against one proxied call of the
// same backend, through the same gateway (bounded: run with -benchtime
// 2000x or so).
func BenchmarkAggregate(b *testing.B) {
	be := backends(b, nil)
	g := gwtest.Start(b, gwtest.Head+fmt.Sprintf(`
upstreams:
  users: {targets: [{address: %[1]q}]}
  orders: {targets: [{address: %[1]q}]}
  prefs: {targets: [{address: %[1]q}]}
routes:
  - name: agg
    match: {path: {template: "/agg/{id}"}}
    aggregate:
      backends:
        - {upstream: users, path: "/users/{id}", group: user}
        - {upstream: orders, path: "/orders?user={id}", group: orders, allow: [id, total]}
        - {upstream: prefs, path: "/prefs", group: prefs}
  - name: one
    match: {path: {prefix: /users/}}
    upstream: users
`, be))
	c := gwtest.Client(b, 10*time.Second)
	for _, bc := range []struct{ name, path string }{{"proxy-one", "/users/1"}, {"aggregate-three", "/agg/1"}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := c.Get(g.URL + bc.path)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
