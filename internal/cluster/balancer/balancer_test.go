package balancer

import (
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func targets(weights ...int) []*Target {
	ts := make([]*Target, len(weights))
	for i, w := range weights {
		ts[i] = &Target{Addr: string(rune('a' + i)), Weight: w}
	}
	return ts
}

func TestRoundRobinExactProportions(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
	}{
		{"uniform", []int{1, 1, 1}},
		{"weighted", []int{5, 1, 1}},
		{"three-to-one", []int{3, 1}},
		{"single", []int{7}},
		{"primes", []int{2, 3, 5, 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(tc.weights...)
			rr := NewRoundRobin(ts)
			total := 0
			for _, w := range tc.weights {
				total += w
			}
			for cycle := 0; cycle < 3; cycle++ {
				got := map[*Target]int{}
				for i := 0; i < total; i++ {
					got[rr.Pick(nil)]++
				}
				for i, tg := range ts {
					if got[tg] != tc.weights[i] {
						t.Fatalf("cycle %d: target %d picked %d times, want %d", cycle, i, got[tg], tc.weights[i])
					}
				}
			}
		})
	}
}

func TestRoundRobinSmooth(t *testing.T) {
	// nginx's example: weights 5,1,1 give a a b a c a a, never five a's in a row.
	ts := targets(5, 1, 1)
	rr := NewRoundRobin(ts)
	want := "aabacaa"
	got := ""
	for i := 0; i < 7; i++ {
		got += rr.Pick(nil).Addr
	}
	if got != want {
		t.Fatalf("sequence %q, want %q", got, want)
	}
}

func TestRandomProportions(t *testing.T) {
	ts := targets(3, 1)
	r := NewRandom(ts)
	const n = 40000
	got := map[*Target]int{}
	for i := 0; i < n; i++ {
		got[r.Pick(nil)]++
	}
	share := float64(got[ts[0]]) / n
	if math.Abs(share-0.75) > 0.02 {
		t.Fatalf("heavy target share %.3f, want 0.75±0.02", share)
	}
}

func TestEmpty(t *testing.T) {
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) {
			b, err := New(Config{Kind: kind}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b.Pick(nil) != nil {
				t.Fatalf("%s: pick on empty set returned a target", kind)
			}
		})
	}
	if _, err := New(Config{Kind: "nope"}, nil); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

func TestSingleTarget(t *testing.T) {
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) {
			ts := named(3)
			ts[0].InFlight.Store(1000)
			b := mustNew(t, Config{Kind: kind, BoundedLoad: 1.25}, ts)
			for _, r := range []*http.Request{nil, keyRequest("k")} {
				if got := b.Pick(r); got != ts[0] {
					t.Fatalf("got %v, want the only target", got)
				}
			}
		})
	}
}

func TestLocalZone(t *testing.T) {
	zoned := func(zones ...string) []*Target {
		ts := named(make([]int, len(zones))...)
		for i, z := range zones {
			ts[i].Weight = 1
			ts[i].Zone = z
		}
		return ts
	}
	tests := []struct {
		name  string
		local string
		zones []string
		want  []bool // which targets may be picked
	}{
		{"prefers-local", "a", []string{"a", "b", "a", "c"}, []bool{true, false, true, false}},
		{"spills-over-when-local-has-none", "a", []string{"b", "c"}, []bool{true, true}},
		{"off-when-unset", "", []string{"a", "b"}, []bool{true, true}},
		{"all-local", "a", []string{"a", "a"}, []bool{true, true}},
	}
	for _, kind := range Kinds() {
		for _, tc := range tests {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				ts := zoned(tc.zones...)
				b := mustNew(t, Config{Kind: kind, LocalZone: tc.local}, ts)
				seen := map[*Target]bool{}
				for i := range 2000 {
					r := keyRequest("k")
					r.RemoteAddr = "192.0.2." + strconv.Itoa(i%250) + ":1234"
					seen[b.Pick(r)] = true
				}
				for i, tg := range ts {
					if seen[tg] != tc.want[i] {
						t.Errorf("target %d in zone %q: picked %v, want %v", i, tg.Zone, seen[tg], tc.want[i])
					}
				}
			})
		}
	}
}

// BenchmarkPick measures one pick over four targets, equal and unequal
// weights. Hashing balancers key on a header taken from 1024 distinct
// requests, so that lookups do not all hit the same cache line.
func BenchmarkPick(b *testing.B) {
	rs := keyRequests(1024)
	for _, kind := range Kinds() {
		for _, weights := range [][]int{{1, 1, 1, 1}, {5, 3, 1, 1}} {
			ts := named(weights...)
			for _, tg := range ts {
				tg.Observe(10 * time.Millisecond)
			}
			bal := mustNew(b, Config{Kind: kind, HashKey: "header:X-User-ID"}, ts)
			name := kind + "/uniform"
			if weights[0] != 1 {
				name = kind + "/weighted"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					bal.Pick(rs[i&1023])
					i++
				}
			})
		}
	}
}

// BenchmarkPickHashing covers what the hashing balancers' cost depends on:
// the number of targets, bounded load (which reads every target's counter)
// and the hash key kind.
func BenchmarkPickHashing(b *testing.B) {
	rs := keyRequests(1024)
	for i, r := range rs {
		r.RemoteAddr = "192.0.2." + strconv.Itoa(i%250) + ":40000"
		r.Header.Set("Cookie", "theme=dark; sid=s"+strconv.Itoa(i)+"; lang=en")
		r.URL.RawQuery = "page=2&user=u" + strconv.Itoa(i)
		r.URL.Path = "/users/" + strconv.Itoa(i)
	}
	for _, kind := range hashKinds {
		cases := []struct {
			name    string
			targets int
			cfg     Config
		}{
			{"ip/4", 4, Config{HashKey: "ip"}},
			{"header/4", 4, Config{HashKey: "header:X-User-ID"}},
			{"cookie/4", 4, Config{HashKey: "cookie:sid"}},
			{"query/4", 4, Config{HashKey: "query:user"}},
			{"path/4", 4, Config{HashKey: "path"}},
			{"header/64", 64, Config{HashKey: "header:X-User-ID"}},
			{"header/4/bounded", 4, Config{HashKey: "header:X-User-ID", BoundedLoad: 1.25}},
			{"header/64/bounded", 64, Config{HashKey: "header:X-User-ID", BoundedLoad: 1.25}},
		}
		for _, tc := range cases {
			ts := named(make([]int, tc.targets)...)
			for _, tg := range ts {
				tg.Weight = 1
			}
			tc.cfg.Kind = kind
			bal := mustNew(b, tc.cfg, ts)
			b.Run(kind+"/"+tc.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					bal.Pick(rs[i&1023])
					i++
				}
			})
		}
	}
}

// BenchmarkBuild measures what a health change costs: building a balancer.
func BenchmarkBuild(b *testing.B) {
	for _, kind := range []string{"ring_hash", "maglev"} {
		for _, n := range []int{4, 64} {
			ts := named(make([]int, n)...)
			for _, tg := range ts {
				tg.Weight = 1
			}
			b.Run(kind+"/"+strconv.Itoa(n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					mustNew(b, Config{Kind: kind}, ts)
				}
			})
		}
	}
}

// BenchmarkPickEWMABusy is the EWMA pick as in production, where busy
// targets report samples continuously: the estimates are fresh, so no
// math.Exp is needed. (BenchmarkPick/ewma reads estimates seconds old.)
func BenchmarkPickEWMABusy(b *testing.B) {
	ts := named(1, 1, 1, 1)
	bal := NewEWMA(ts)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i&63 == 0 {
			for _, tg := range ts {
				tg.Observe(10 * time.Millisecond)
			}
		}
		bal.Pick(nil)
		i++
	}
}

func BenchmarkObserve(b *testing.B) {
	var tg Target
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tg.Observe(10 * time.Millisecond)
		}
	})
}
