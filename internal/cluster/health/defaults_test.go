package health

import (
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// The zero-value guard gives config's defaults: config is their only home.
func TestZeroConfigTakesConfigDefaults(t *testing.T) {
	c, err := config.Parse("t.yaml", []byte("upstreams:\n  a:\n    targets: [{address: \"127.0.0.1:1\"}]\n    health_check: {active: {path: /h}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Upstreams["a"].HealthCheck.Active
	got := Config{Path: "/h"}.withDefaults()
	if got.Interval != a.Interval.D() || got.Timeout != a.Timeout.D() || got.HealthyThreshold != a.HealthyThreshold || got.UnhealthyThreshold != a.UnhealthyThreshold {
		t.Errorf("zero Config gives %v/%v/%d/%d, config's defaults are %v/%v/%d/%d", got.Interval, got.Timeout, got.HealthyThreshold, got.UnhealthyThreshold,
			a.Interval, a.Timeout, a.HealthyThreshold, a.UnhealthyThreshold)
	}
}
