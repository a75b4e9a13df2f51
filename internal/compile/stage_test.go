package compile

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
)

// A gateway-made error written while a route policy runs names that
// policy (by its config name) as the request's RejectedBy; an error of
// the route's own handler (here: the upstream is unreachable) names none.
func TestRejectedByNamesThePolicy(t *testing.T) {
	cfg, err := config.LoadBytes("stage.yaml", []byte(`
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams:
  down: {targets: [{address: "127.0.0.1:1"}]}
policies:
  keys: {type: api_key, header: X-API-Key}
  one-per-minute: {type: rate_limit, key: consumer, rate: 1/m, burst: 1}
consumers:
  - {name: alice, api_keys: [secret]}
routes:
  - name: r
    match: {path: {prefix: /}}
    upstream: down
    policies: [keys, one-per-minute]
`))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Build(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	snap.Acquire(nil)
	defer snap.Release()
	h := snap.Routes[0].Handler
	for _, tc := range []struct {
		name, key  string
		status     int
		rejectedBy string
	}{
		{"no key", "", 401, "keys"},
		{"first request passes the policies", "secret", 502, ""},
		{"second is over the limit", "secret", 429, "one-per-minute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &exchange.Context{Context: context.Background()}
			r := httptest.NewRequest("GET", "/x", nil).WithContext(c)
			if tc.key != "" {
				r.Header.Set("X-API-Key", tc.key)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if got := c.Exchange.RejectedBy; got != tc.rejectedBy {
				t.Errorf("RejectedBy = %q, want %q", got, tc.rejectedBy)
			}
		})
	}
}
