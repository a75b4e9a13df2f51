package cluster

import (
	"testing"

	"github.com/rampart-gw/rampart/internal/cluster/balancer"
	"github.com/rampart-gw/rampart/internal/cluster/outlier"
	"github.com/rampart-gw/rampart/internal/config"
)

func upstreamCfg(addrs ...string) *config.Upstream {
	u := &config.Upstream{Balancer: "round_robin", HealthCheck: &config.HealthCheck{
		Passive: &config.PassiveHealth{Consecutive5xx: 1, MaxEjectionPercent: 100, BaseEjectionTime: config.Duration(1 << 40)},
	}}
	for _, a := range addrs {
		u.Targets = append(u.Targets, config.Target{Address: a, Weight: 1})
	}
	return u
}

func TestBuildKeepsStateAcrossReloads(t *testing.T) {
	m := NewManager(Deps{})
	defer m.Close()
	cfg := upstreamCfg("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4")
	u1, err := m.Build("users", cfg, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Activate(map[string]*Upstream{"users": u1})
	u1.Targets[0].InFlight.Add(5)
	u1.Report("127.0.0.1:2", outlier.ServerError) // ejects: threshold 1

	u2, err := m.Build("users", upstreamCfg("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Activate(map[string]*Upstream{"users": u2})
	if u2.Targets[0] != u1.Targets[0] || u2.Targets[0].InFlight.Load() != 5 {
		t.Fatal("target state was not carried over")
	}
	if u2.pool != u1.pool {
		t.Fatal("connection pool was not carried over")
	}
	if st := u2.State("127.0.0.1:2"); !st.Ejected {
		t.Fatalf("ejection lost across reload: %+v", st)
	}
	for i := 0; i < 30; i++ {
		if u2.Pick(nil).Addr == "127.0.0.1:2" {
			t.Fatal("ejected target picked")
		}
	}

	// Removing the upstream forgets its pool and state.
	m.Activate(map[string]*Upstream{})
	if len(m.pools) != 0 || len(m.states) != 0 || len(m.targets) != 0 {
		t.Fatalf("left pools %d states %d targets %d", len(m.pools), len(m.states), len(m.targets))
	}
}

func TestPanicThresholdAndNoHealthy(t *testing.T) {
	tests := []struct {
		name      string
		panicT    *int
		eject     int
		wantPanic bool
		wantNone  bool
	}{
		{"all healthy", nil, 0, false, false},
		{"half ejected is not below 50%", nil, 2, false, false},
		{"three of four ejected panics", nil, 3, true, false},
		{"all ejected panics and has no healthy", nil, 4, true, true},
		{"panic disabled", ptr(0), 3, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewManager(Deps{})
			defer m.Close()
			cfg := upstreamCfg("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4")
			cfg.HealthCheck.PanicThreshold = tc.panicT
			u, err := m.Build("u", cfg, BuildOptions{})
			if err != nil {
				t.Fatal(err)
			}
			m.Activate(map[string]*Upstream{"u": u})
			for i := 0; i < tc.eject; i++ {
				u.Report(u.Targets[i].Addr, outlier.ServerError)
			}
			if u.Panic() != tc.wantPanic || u.NoHealthy() != tc.wantNone {
				t.Fatalf("panic %v none %v", u.Panic(), u.NoHealthy())
			}
			picked := map[string]bool{}
			for i := 0; i < 40; i++ {
				if tg := u.Pick(nil); tg != nil {
					picked[tg.Addr] = true
				}
			}
			switch {
			case tc.wantPanic && len(picked) != 4:
				t.Fatalf("panic mode picked %v, want all four", picked)
			case !tc.wantPanic && len(picked) != 4-tc.eject:
				t.Fatalf("picked %v, want the %d healthy", picked, 4-tc.eject)
			}
		})
	}
}

func TestPickOther(t *testing.T) {
	m := NewManager(Deps{})
	defer m.Close()
	cfg := upstreamCfg("127.0.0.1:1", "127.0.0.1:2")
	cfg.Balancer, cfg.HashKey = "ring_hash", "path"
	u, err := m.Build("u", cfg, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := u.Pick(nil)
	other := u.PickOther(nil, []*balancer.Target{first})
	if other == nil || other == first {
		t.Fatalf("PickOther returned %v after %v", other, first)
	}
	if again := u.PickOther(nil, []*balancer.Target{first, other}); again == nil {
		t.Fatal("PickOther with every target tried returned nil")
	}
}

func TestRefusedBuildChangesNothing(t *testing.T) {
	m := NewManager(Deps{})
	defer m.Close()
	cfg := upstreamCfg("127.0.0.1:1")
	cfg.CircuitBreaker = &config.CircuitBreaker{MaxRequests: 7}
	u, _ := m.Build("u", cfg, BuildOptions{})
	m.Activate(map[string]*Upstream{"u": u})
	before := u.Breaker()

	staged := upstreamCfg("127.0.0.1:1")
	staged.CircuitBreaker = &config.CircuitBreaker{MaxRequests: 1}
	if _, err := m.Build("u", staged, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	// Never activated: the live breaker is untouched.
	if u.Breaker() != before || before.Stats().Requests.Max != 7 {
		t.Fatalf("staged build changed the live breaker: %+v", u.Breaker().Stats())
	}
}

func ptr[T any](v T) *T { return &v }
