package balancer

import (
	"math"
	"testing"
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
	for _, kind := range []string{"round_robin", "random"} {
		b, err := New(Config{Kind: kind}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b.Pick(nil) != nil {
			t.Fatalf("%s: pick on empty set returned a target", kind)
		}
	}
	if _, err := New(Config{Kind: "nope"}, nil); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

func BenchmarkPick(b *testing.B) {
	for _, kind := range []string{"round_robin", "random"} {
		for _, weights := range [][]int{{1, 1, 1, 1}, {5, 3, 1, 1}} {
			ts := targets(weights...)
			bal, _ := New(Config{Kind: kind}, ts)
			name := kind + "/uniform"
			if weights[0] != 1 {
				name = kind + "/weighted"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					bal.Pick(nil)
				}
			})
		}
	}
}
