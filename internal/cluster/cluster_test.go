package cluster

import (
	"slices"
	"testing"

	"github.com/rampart-gw/rampart/internal/cluster/balancer"
	"github.com/rampart-gw/rampart/internal/cluster/outlier"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/registry"
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

// acquired builds the upstream name from cfg as a snapshot of its own,
// acquires its claims from reg and, when active, activates it.
func acquired(t *testing.T, reg *registry.Registry, name string, cfg *config.Upstream, active bool) (*Upstream, *registry.Claims) {
	t.Helper()
	claims := &registry.Claims{}
	u, err := Build(name, cfg, BuildOptions{}, claims)
	if err != nil {
		t.Fatal(err)
	}
	claims.Acquire(reg)
	if active {
		u.Activate()
	}
	return u, claims
}

func TestBuildKeepsStateAcrossReloads(t *testing.T) {
	reg := registry.New()
	defer reg.Close()
	cfg := upstreamCfg("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4")
	u1, c1 := acquired(t, reg, "users", cfg, true)
	u1.Targets[0].InFlight.Add(5)
	u1.Report("127.0.0.1:2", outlier.ServerError) // ejects: threshold 1

	u2, c2 := acquired(t, reg, "users", upstreamCfg("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"), true)
	c1.Release()
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

	// Retiring the last snapshot that has the upstream forgets its pool,
	// state and targets.
	c2.Release()
	if keys := reg.Keys(); len(keys) != 0 {
		t.Fatalf("left %v", keys)
	}
}

// A staged candidate shares the upstream's live state with the active
// config: an ejection made after staging reaches its balancer too.
func TestStagedCandidateFollowsHealth(t *testing.T) {
	reg := registry.New()
	defer reg.Close()
	active, _ := acquired(t, reg, "users", upstreamCfg("127.0.0.1:1", "127.0.0.1:2"), true)
	cand, _ := acquired(t, reg, "users", upstreamCfg("127.0.0.1:1", "127.0.0.1:2"), false)
	cand.Pick(nil) // its balancer exists before the change
	active.Report("127.0.0.1:2", outlier.ServerError)
	for i := 0; i < 20; i++ {
		if cand.Pick(nil).Addr == "127.0.0.1:2" {
			t.Fatal("the staged candidate picked a target ejected after staging")
		}
	}
	// And the other way round: what the candidate's traffic finds reaches
	// the active config.
	cand.Report("127.0.0.1:1", outlier.ServerError)
	if !active.State("127.0.0.1:1").Ejected || !active.NoHealthy() {
		t.Fatalf("active config missed the candidate's ejection: %+v", active.State("127.0.0.1:1"))
	}
}

// A candidate with other settings for a shared upstream does not change
// the active config's state; releasing it (a rollback) needs no recompile.
func TestCandidateSettingsWaitForPromotion(t *testing.T) {
	reg := registry.New()
	defer reg.Close()
	cfg := upstreamCfg("127.0.0.1:1")
	cfg.CircuitBreaker = &config.CircuitBreaker{MaxRequests: 7}
	active, ac := acquired(t, reg, "u", cfg, true)
	staged := upstreamCfg("127.0.0.1:1")
	staged.CircuitBreaker = &config.CircuitBreaker{MaxRequests: 1}
	cand, cc := acquired(t, reg, "u", staged, false)
	if active.Breaker().Stats().Requests.Max != 7 {
		t.Fatalf("staging changed the live breaker: %+v", active.Breaker().Stats())
	}
	cc.Release() // rollback
	if active.Breaker().Stats().Requests.Max != 7 || reg.Refs(stateKey("u")) != 1 {
		t.Fatal("rollback changed the active state")
	}
	// Promotion applies the candidate's settings.
	cand, cc = acquired(t, reg, "u", staged, false)
	cand.Activate()
	ac.Release()
	if active.Breaker().Stats().Requests.Max != 1 {
		t.Fatalf("promotion did not apply the candidate's breaker: %+v", active.Breaker().Stats())
	}
	cc.Release()
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
			reg := registry.New()
			defer reg.Close()
			cfg := upstreamCfg("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4")
			cfg.HealthCheck.PanicThreshold = tc.panicT
			u, _ := acquired(t, reg, "u", cfg, true)
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
	cfg := upstreamCfg("127.0.0.1:1", "127.0.0.1:2")
	cfg.Balancer, cfg.HashKey = "ring_hash", "path"
	u, err := Build("u", cfg, BuildOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.st.close()
	first := u.Pick(nil)
	other := u.PickOther(nil, []*balancer.Target{first})
	if other == nil || other == first {
		t.Fatalf("PickOther returned %v after %v", other, first)
	}
	if again := u.PickOther(nil, []*balancer.Target{first, other}); again == nil {
		t.Fatal("PickOther with every target tried returned nil")
	}
}

func TestBuildIsPure(t *testing.T) {
	reg := registry.New()
	defer reg.Close()
	cfg := upstreamCfg("127.0.0.1:1")
	cfg.CircuitBreaker = &config.CircuitBreaker{MaxRequests: 7}
	u, _ := acquired(t, reg, "u", cfg, true)
	before := reg.Keys()

	staged := upstreamCfg("127.0.0.1:1", "127.0.0.1:9")
	staged.CircuitBreaker = &config.CircuitBreaker{MaxRequests: 1}
	claims := &registry.Claims{}
	if _, err := Build("u", staged, BuildOptions{}, claims); err != nil {
		t.Fatal(err)
	}
	// Never acquired: nothing is shared, nothing changed.
	if u.Breaker().Stats().Requests.Max != 7 || !slices.Equal(reg.Keys(), before) {
		t.Fatalf("a build changed shared state: %+v %v", u.Breaker().Stats(), reg.Keys())
	}
	if len(claims.Keys()) != 4 { // two targets, the state, the pool
		t.Fatalf("claims %v", claims.Keys())
	}
}

func ptr[T any](v T) *T { return &v }
