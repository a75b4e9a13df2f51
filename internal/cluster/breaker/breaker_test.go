package breaker

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
)

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want Stats
	}{
		{
			name: "zero config takes defaults",
			cfg:  Config{},
			want: Stats{
				Connections:     Usage{Max: DefaultMaxConnections},
				PendingRequests: Usage{Max: DefaultMaxPendingRequests},
				Requests:        Usage{Max: DefaultMaxRequests},
				Retries:         Usage{Max: DefaultMaxRetries},
			},
		},
		{
			name: "explicit values kept",
			cfg:  Config{MaxConnections: 1, MaxPendingRequests: 2, MaxRequests: 3, MaxRetries: 4},
			want: Stats{
				Connections:     Usage{Max: 1},
				PendingRequests: Usage{Max: 2},
				Requests:        Usage{Max: 3},
				Retries:         Usage{Max: 4},
			},
		},
		{
			name: "negative is unlimited",
			cfg:  Config{MaxConnections: -1, MaxPendingRequests: -1, MaxRequests: -1, MaxRetries: -1},
			want: Stats{
				Connections:     Usage{Max: math.MaxInt64},
				PendingRequests: Usage{Max: math.MaxInt64},
				Requests:        Usage{Max: math.MaxInt64},
				Retries:         Usage{Max: math.MaxInt64},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := New(tt.cfg).Stats(); got != tt.want {
				t.Errorf("Stats() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	type ops struct {
		acquire func(*Breaker) bool
		release func(*Breaker)
	}
	table := map[Resource]ops{
		Connections:     {(*Breaker).TryAcquireConnection, (*Breaker).ReleaseConnection},
		PendingRequests: {(*Breaker).TryAcquirePending, (*Breaker).ReleasePending},
		Requests:        {(*Breaker).TryAcquireRequest, (*Breaker).ReleaseRequest},
		Retries:         {(*Breaker).TryAcquireRetry, (*Breaker).ReleaseRetry},
	}
	for r, op := range table {
		t.Run(r.String(), func(t *testing.T) {
			b := New(Config{MaxConnections: 3, MaxPendingRequests: 3, MaxRequests: 3, MaxRetries: 3})
			for i := range 3 {
				if !op.acquire(b) {
					t.Fatalf("acquire %d refused below the limit", i)
				}
			}
			if !b.Open() || !b.Saturated(r) {
				t.Fatalf("Open() = %v, Saturated = %v at the limit, want true", b.Open(), b.Saturated(r))
			}
			for other := range numResources {
				if other != r && b.Saturated(other) {
					t.Errorf("%v saturated by %v", other, r)
				}
			}
			if op.acquire(b) {
				t.Fatal("acquire over the limit succeeded")
			}
			op.release(b)
			if b.Open() {
				t.Fatal("Open() after a release, want false")
			}
			if !op.acquire(b) {
				t.Fatal("acquire after a release refused")
			}
		})
	}
}

// TestNeverExceeds hammers one limit from many goroutines and checks that
// the number of holders never goes over it.
func TestNeverExceeds(t *testing.T) {
	const max = 8
	b := New(Config{MaxRequests: max})
	var holders, peak, refused atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 2000 {
				if !b.TryAcquireRequest() {
					refused.Add(1)
					continue
				}
				n := holders.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				holders.Add(-1)
				b.ReleaseRequest()
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > max {
		t.Fatalf("peak holders %d > limit %d", p, max)
	}
	if s := b.Stats(); s.Requests.Active != 0 || s.Open {
		t.Fatalf("after all releases: %+v", s)
	}
}

func TestResourceString(t *testing.T) {
	if got := Resource(99).String(); got != "unknown" {
		t.Errorf("Resource(99).String() = %q", got)
	}
}
