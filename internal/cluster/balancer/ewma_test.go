package balancer

import (
	"container/heap"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestObservePeakAndDecay(t *testing.T) {
	ms := func(n float64) float64 { return n * float64(time.Millisecond) }
	tests := []struct {
		name    string
		samples []sample
		readAt  uint32
		want    float64 // nanoseconds
	}{
		{"first-sample-is-the-estimate", []sample{{0, 10 * time.Millisecond}}, 0, ms(10)},
		{"peak-replaces-at-once", []sample{{0, 10 * time.Millisecond}, {0, 100 * time.Millisecond}}, 0, ms(100)},
		{"lower-sample-at-once-barely-moves", []sample{{0, 100 * time.Millisecond}, {0, 10 * time.Millisecond}}, 0, ms(100)},
		// After one time constant the old estimate weighs 1/e.
		{"lower-sample-after-tau", []sample{{0, 100 * time.Millisecond}, {10_000, 10 * time.Millisecond}}, 10_000,
			ms(100/math.E + 10*(1-1/math.E))},
		// Without samples the estimate decays towards zero, so that an
		// avoided target is probed again.
		{"idle-decays", []sample{{0, 100 * time.Millisecond}}, 10_000, ms(100 / math.E)},
		{"clock-wraps", []sample{{math.MaxUint32 - 4_999, 100 * time.Millisecond}}, 5_001, ms(100 / math.E)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tg Target
			if _, ok := tg.latencyAt(0); ok {
				t.Fatal("a new target has an estimate")
			}
			for _, s := range tc.samples {
				tg.observeAt(s.rtt, s.at)
			}
			got, ok := tg.latencyAt(tc.readAt)
			if !ok || math.Abs(got-tc.want)/tc.want > 1e-3 {
				t.Fatalf("estimate %.0fns, want %.0fns", got, tc.want)
			}
		})
	}
}

type sample struct {
	at  uint32 // milliseconds
	rtt time.Duration
}

func TestDecay(t *testing.T) {
	for _, d := range []uint32{0, 1, 7, 50, 99, 100, 101, 1000, 10_000, 100_000} {
		t.Run(strconv.Itoa(int(d)), func(t *testing.T) {
			want := math.Exp(-float64(d) / 10_000)
			if got := decay(5, 5+d); math.Abs(got-want) > 1e-9 {
				t.Fatalf("decay over %dms = %.12f, want %.12f", d, got, want)
			}
		})
	}
	if got := decay(10, 5); got != 1 {
		t.Fatalf("decay from the future = %v, want 1", got)
	}
}

func TestExpNeg(t *testing.T) {
	for _, x := range []float64{0, 1e-9, 0.01, 0.5, math.Ln2, 1, 2.3, 10, 50, 100, 699, 700} {
		want := math.Exp(-x)
		if got := expNeg(x); math.Abs(got-want) > 1e-7*want {
			t.Errorf("expNeg(%v) = %v, want %v", x, got, want)
		}
	}
	if expNeg(701) != 0 || expNeg(1e300) != 0 {
		t.Error("expNeg of a huge x is not 0")
	}
}

func TestLatencyRealClock(t *testing.T) {
	var tg Target
	if tg.Latency() != 0 {
		t.Fatal("no samples, non-zero latency")
	}
	tg.Observe(20 * time.Millisecond)
	if got := tg.Latency(); got < 19*time.Millisecond || got > 20*time.Millisecond {
		t.Fatalf("Latency() = %v, want about 20ms", got)
	}
}

// completion is a request in flight in the simulation.
type completion struct {
	at  uint32
	t   *Target
	rtt time.Duration
}

type completions []completion

func (c completions) Len() int           { return len(c) }
func (c completions) Less(i, j int) bool { return c[i].at < c[j].at }
func (c completions) Swap(i, j int)      { c[i], c[j] = c[j], c[i] }
func (c *completions) Push(x any)        { *c = append(*c, x.(completion)) }
func (c *completions) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

// simulateLatency runs a discrete-event simulation on a millisecond clock:
// `perMs` requests arrive every millisecond for `ms` milliseconds; each is
// picked, held for its target's latency, then observed. It returns the picks
// per target.
func simulateLatency(ts []*Target, latency map[*Target]time.Duration, ms, perMs int) map[*Target]int {
	var now uint32
	e := NewEWMA(ts)
	e.now = func() uint32 { return now }
	var pending completions
	got := map[*Target]int{}
	for ; now < uint32(ms); now++ {
		for len(pending) > 0 && pending[0].at <= now {
			c := heap.Pop(&pending).(completion)
			c.t.observeAt(c.rtt, now)
			c.t.InFlight.Add(-1)
		}
		for range perMs {
			tg := e.Pick(nil)
			tg.InFlight.Add(1)
			got[tg]++
			rtt := latency[tg]
			heap.Push(&pending, completion{now + uint32(rtt/time.Millisecond), tg, rtt})
		}
	}
	return got
}

func TestEWMAAvoidsSlowTarget(t *testing.T) {
	tests := []struct {
		name    string
		targets int
		perMs   int
	}{
		{"four-light-load", 4, 1},
		{"four-heavy-load", 4, 5},
		{"ten", 10, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := make([]*Target, tc.targets)
			latency := map[*Target]time.Duration{}
			for i := range ts {
				ts[i] = &Target{Addr: string(rune('a' + i)), Weight: 1}
				latency[ts[i]] = 10 * time.Millisecond
			}
			slow := ts[0]
			latency[slow] = 100 * time.Millisecond
			const ms = 60_000 // a minute: long enough for idle decay and re-probing
			got := simulateLatency(ts, latency, ms, tc.perMs)
			share := float64(got[slow]) / float64(ms*tc.perMs)
			t.Logf("slow target share %.4f (fair share %.3f)", share, 1/float64(tc.targets))
			if share >= 0.10 {
				t.Fatalf("slow target got %.2f%% of picks, want < 10%%", 100*share)
			}
		})
	}
}

func TestEWMADoesNotStarveNewTarget(t *testing.T) {
	ts := named(1, 1, 1, 1)
	for _, tg := range ts[:3] {
		tg.observeAt(10*time.Millisecond, 0)
	}
	latency := map[*Target]time.Duration{}
	for _, tg := range ts {
		latency[tg] = 10 * time.Millisecond
	}
	got := simulateLatency(ts, latency, 5_000, 2)
	share := float64(got[ts[3]]) / 10_000
	if share < 0.20 || share > 0.30 {
		t.Fatalf("new target got %.3f of picks, want about 0.25", share)
	}
}

func TestEWMAWeights(t *testing.T) {
	// Equal latency, idle: the weights set the proportions.
	ts := named(3, 1)
	e := NewEWMA(ts)
	for _, tg := range ts {
		tg.Observe(10 * time.Millisecond)
	}
	const n = 40_000
	got := map[*Target]int{}
	for range n {
		got[e.Pick(nil)]++
	}
	if share := float64(got[ts[0]]) / n; math.Abs(share-0.75) > 0.02 {
		t.Fatalf("heavy target share %.3f, want 0.75±0.02", share)
	}
}

func TestEWMAConcurrent(t *testing.T) {
	ts := named(1, 1, 1)
	e := NewEWMA(ts)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				tg := e.Pick(nil)
				tg.InFlight.Add(1)
				tg.Observe(time.Duration(g*1000+i) * time.Microsecond)
				tg.InFlight.Add(-1)
				_ = tg.Latency()
			}
		})
	}
	wg.Wait()
	for _, tg := range ts {
		if tg.InFlight.Load() != 0 || tg.Latency() <= 0 {
			t.Fatalf("%s: in flight %d, latency %v", tg.Addr, tg.InFlight.Load(), tg.Latency())
		}
	}
}
