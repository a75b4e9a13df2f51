package cluster

import (
	"testing"

	"github.com/rampart-gw/rampart/internal/cluster/outlier"
	"github.com/rampart-gw/rampart/internal/config"
)

// The passive health check does what config says, defaults included:
// config is the only home of its defaults (issue 16). Before, an explicit
// max_ejection_percent: 0 ejected at outlier's own default of 10 %, and
// consecutive_connect_failures, documented as defaulting to 5, had no
// threshold at all.
func TestPassiveHealthFollowsConfig(t *testing.T) {
	tests := []struct {
		name    string
		passive string
		reports []outlier.Result
		ejected bool
	}{
		{"defaults: five 5xx eject", "{}", rep(outlier.ServerError, 5), true},
		{"defaults: four 5xx do not", "{}", rep(outlier.ServerError, 4), false},
		{"max_ejection_percent 0 ejects none", "{max_ejection_percent: 0}", rep(outlier.ServerError, 10), false},
		{"connect failures default to 5", "{consecutive_5xx: 10}", rep(outlier.ConnectFailure, 5), true},
		{"connect failures 0 uses the default", "{consecutive_5xx: 10, consecutive_connect_failures: 0}", rep(outlier.ConnectFailure, 5), true},
		{"connect failures 4 of 5", "{consecutive_5xx: 10}", rep(outlier.ConnectFailure, 4), false},
		{"connect failures set", "{consecutive_5xx: 10, consecutive_connect_failures: 2}", rep(outlier.ConnectFailure, 2), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "upstreams:\n  a:\n    targets: [{address: \"127.0.0.1:1\"}]\n    health_check: {passive: " + tc.passive + "}\n"
			c, err := config.Parse("t.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			u := buildUp(t, c.Upstreams["a"])
			for _, r := range tc.reports {
				u.Report("127.0.0.1:1", r)
			}
			d := u.st.outlier.Load()
			if d == nil {
				t.Fatal("no outlier detector")
			}
			if got := d.Ejected("127.0.0.1:1"); got != tc.ejected {
				t.Fatalf("ejected = %v, want %v", got, tc.ejected)
			}
		})
	}
}

func rep(r outlier.Result, n int) []outlier.Result {
	out := make([]outlier.Result, n)
	for i := range out {
		out[i] = r
	}
	return out
}
