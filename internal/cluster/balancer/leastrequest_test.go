package balancer

import (
	"math"
	"math/rand/v2"
	"testing"
)

// simulate runs picks against a pool of `outstanding` requests: each pick
// adds a request to the chosen target, and once the pool is full a random
// request completes first, so every request has the same (memoryless)
// service time. It returns the picks per target and the largest gap between
// the most and the least loaded target seen after warm-up.
func simulate(b Balancer, ts []*Target, picks, outstanding int, rng *rand.Rand) (map[*Target]int, float64) {
	got := map[*Target]int{}
	var pool []*Target
	var gaps, samples float64
	for i := range picks {
		if len(pool) == outstanding {
			k := rng.IntN(len(pool))
			pool[k].InFlight.Add(-1)
			pool[k] = pool[len(pool)-1]
			pool = pool[:len(pool)-1]
		}
		tg := b.Pick(nil)
		tg.InFlight.Add(1)
		pool = append(pool, tg)
		got[tg]++
		if i > 10*outstanding {
			lo, hi := int64(math.MaxInt64), int64(0)
			for _, t := range ts {
				n := t.InFlight.Load()
				lo, hi = min(lo, n), max(hi, n)
			}
			gaps += float64(hi - lo)
			samples++
		}
	}
	return got, gaps / samples
}

func TestLeastRequestEvensOutInFlight(t *testing.T) {
	// Ten equal targets, 200 requests in flight (20 each on average). With
	// random choice the gap between the busiest and the idlest target
	// averages about 13 requests; two choices keep it near 4.
	const picks, outstanding = 100_000, 200
	rng := rand.New(rand.NewPCG(1, 2))
	ts := named(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	_, gapLR := simulate(NewLeastRequest(ts), ts, picks, outstanding, rng)
	ts = named(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	_, gapRandom := simulate(NewRandom(ts), ts, picks, outstanding, rng)
	t.Logf("mean in-flight gap: least_request %.2f, random %.2f", gapLR, gapRandom)
	if gapLR > 5.5 {
		t.Fatalf("least_request in-flight gap averages %.2f, want ≤ 5.5", gapLR)
	}
	if gapRandom < 2*gapLR {
		t.Fatalf("random gap %.2f is not clearly worse than least_request's %.2f: the test lost its power", gapRandom, gapLR)
	}
}

func TestLeastRequestWeights(t *testing.T) {
	tests := []struct {
		name        string
		weights     []int
		outstanding int // 0: requests never overlap
	}{
		{"idle-uniform", []int{1, 1, 1, 1}, 0},
		{"idle-weighted", []int{3, 1}, 0},
		{"idle-weighted-4", []int{5, 3, 1, 1}, 0},
		{"loaded-uniform", []int{1, 1, 1, 1}, 100},
		{"loaded-weighted", []int{3, 1}, 100},
		{"loaded-weighted-4", []int{5, 3, 1, 1}, 100},
	}
	const picks = 100_000
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := named(tc.weights...)
			lr := NewLeastRequest(ts)
			var got map[*Target]int
			if tc.outstanding == 0 {
				got = map[*Target]int{}
				for range picks {
					got[lr.Pick(nil)]++
				}
			} else {
				got, _ = simulate(lr, ts, picks, tc.outstanding, rand.New(rand.NewPCG(3, 4)))
			}
			total := 0
			for _, w := range tc.weights {
				total += w
			}
			for i, tg := range ts {
				want := float64(tc.weights[i]) / float64(total)
				share := float64(got[tg]) / picks
				if math.Abs(share-want) > 0.02 {
					t.Errorf("target %d (weight %d): share %.4f, want %.4f±0.02", i, tc.weights[i], share, want)
				}
			}
		})
	}
}

func TestLeastRequestPrefersIdle(t *testing.T) {
	// With two targets both are always compared, so the less loaded one
	// per unit of weight must win every pick.
	tests := []struct {
		name     string
		weights  []int
		inFlight []int64
		want     int
	}{
		{"uniform", []int{1, 1}, []int64{5, 0}, 1},
		{"uniform-other-side", []int{1, 1}, []int64{0, 5}, 0},
		{"weighted-heavier-busier-but-less-per-weight", []int{4, 1}, []int64{3, 1}, 0}, // 3/4 < 1/1
		{"weighted-heavier-overloaded", []int{4, 1}, []int64{8, 1}, 1},                 // 8/4 > 1/1
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := named(tc.weights...)
			for i, n := range tc.inFlight {
				ts[i].InFlight.Store(n)
			}
			lr := NewLeastRequest(ts)
			for range 1000 {
				if got := lr.Pick(nil); got != ts[tc.want] {
					t.Fatalf("picked %s, want %s", got.Addr, ts[tc.want].Addr)
				}
			}
		})
	}
}

func TestP2CCandidatesDistinctAndWeighted(t *testing.T) {
	ts := named(5, 3, 1, 1)
	p := newP2C(ts)
	const n = 200_000
	first, second := make([]int, len(ts)), make([]int, len(ts))
	for range n {
		i, j := p.two()
		if i == j {
			t.Fatalf("candidates %d and %d are the same", i, j)
		}
		first[i]++
		second[j]++
	}
	for i, tg := range ts {
		if share := float64(first[i]) / n; math.Abs(share-float64(tg.Weight)/10) > 0.01 {
			t.Errorf("first candidate %d drawn %.3f of the time, want %.3f", i, share, float64(tg.Weight)/10)
		}
	}
	// The second is drawn by weight from the rest: target 0 (weight 5)
	// is second when another target came first: Σ P(first=k)·5/(10-wₖ).
	want0 := 0.3*5/7 + 0.1*5/9 + 0.1*5/9
	if share := float64(second[0]) / n; math.Abs(share-want0) > 0.01 {
		t.Errorf("target 0 is the second candidate %.3f of the time, want %.3f", share, want0)
	}
}

func TestLeastRequestSingle(t *testing.T) {
	ts := named(1)
	ts[0].InFlight.Store(100)
	if got := NewLeastRequest(ts).Pick(nil); got != ts[0] {
		t.Fatalf("single target: got %v", got)
	}
}
