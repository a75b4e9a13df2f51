package outlier

import (
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// The zero-value guard gives config's defaults: config is their only home
// (issue 16). Before, a zero MaxEjectionPercent meant 10 % here and 50 %
// in config, and a zero ConsecutiveConnectFailures no threshold here and
// 5 in the docs.
func TestZeroConfigTakesConfigDefaults(t *testing.T) {
	c, err := config.Parse("t.yaml", []byte("upstreams:\n  a:\n    targets: [{address: \"127.0.0.1:1\"}]\n    health_check: {passive: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Upstreams["a"].HealthCheck.Passive
	zero := New(Config{}, Deps{})
	fromConfig := New(Config{Consecutive5xx: p.Consecutive5xx, ConsecutiveConnectFailures: p.ConsecutiveConnectFailures,
		Interval: p.Interval.D(), BaseEjectionTime: p.BaseEjectionTime.D(), MaxEjectionTime: p.MaxEjectionTime.D(),
		MaxEjectionPercent: p.MaxEjectionPercent}, Deps{})
	type eff struct {
		max5xx, maxConn int64
		interval, base  any
		maxEject        any
		percent         int
	}
	get := func(d *Detector) eff {
		return eff{d.max5xx, d.maxConn, d.interval, d.base, d.maxEject, d.percent}
	}
	if z, f := get(zero), get(fromConfig); z != f {
		t.Errorf("zero Config gives %+v, config's defaults %+v", z, f)
	}
}
