package ratelimit

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy/policytest"
	"github.com/rampart-gw/rampart/internal/redis/redistest"
	"github.com/rampart-gw/rampart/internal/registry"
)

// AppendInt is strconv.AppendInt for tests.
func AppendInt(b []byte, i int) []byte { return strconv.AppendInt(b, int64(i), 10) }

// BenchmarkTake is the limiter decision for an existing key.
func BenchmarkTake(b *testing.B) {
	s := NewStore(1e6, 1000, DefaultMaxKeys, nil)
	key := []byte("192.0.2.1\x00acme")
	s.TakeBytes(key)
	b.ReportAllocs()
	for b.Loop() {
		s.TakeBytes(key)
	}
}

// BenchmarkTakeAt is the decision as the policy makes it: at the request's
// start time, without reading the clock.
func BenchmarkTakeAt(b *testing.B) {
	s := NewStore(1e6, 1000, DefaultMaxKeys, nil)
	key := []byte("192.0.2.1\x00acme")
	now := time.Now()
	s.TakeBytesAt(key, now)
	b.ReportAllocs()
	for b.Loop() {
		s.TakeBytesAt(key, now)
	}
}

// BenchmarkTakeParallel is the decision under contention over many keys.
func BenchmarkTakeParallel(b *testing.B) {
	s := NewStore(1e6, 1000, DefaultMaxKeys, nil)
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = AppendInt([]byte("10.0.0."), i)
		s.TakeBytes(keys[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		now := time.Now()
		for pb.Next() {
			s.TakeBytesAt(keys[i&1023], now)
			i++
		}
	})
}

// BenchmarkKeyAndTake is key extraction (consumer + route) plus decision.
func BenchmarkKeyAndTake(b *testing.B) {
	p, err := New(policytest.Spec(b, "policies:\n  l:\n    type: rate_limit\n    rate: 1000000/s\n    key: [consumer, route]\n", "l"))
	if err != nil {
		b.Fatal(err)
	}
	l := p.(*Limit)
	r := httptest.NewRequest("GET", "/", nil)
	ex := &exchange.Exchange{Consumer: "acme", Route: "users", Start: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		var buf [maxKeyLen + 64]byte
		l.pick(ex).store.TakeBytesAt(AppendKey(buf[:0], l.parts, l.trust, r, ex), ex.Start)
	}
}

// BenchmarkRedisTake is one store redis decision against a real
// redis-server on loopback (one EVALSHA round trip), sequential and
// in parallel (rueidis pipelines concurrent decisions on one connection).
// It skips without redis-server.
func BenchmarkRedisTake(b *testing.B) {
	rs := redistest.Start(b)
	doc := "cluster:\n  redis: {address: \"" + rs.Addr() + "\", timeout: 2s}\npolicies:\n  l:\n    type: rate_limit\n    store: redis\n    rate: 1000000/s\n    burst: 1000000\n"
	s := policytest.Spec(b, doc, "l")
	s.Claims = &registry.Claims{}
	s.Log = slog.New(slog.DiscardHandler)
	p, err := New(s)
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.New()
	defer reg.Close()
	s.Claims.Acquire(reg)
	rm := p.(*Limit).base.remote
	for i := 0; !rm.client.Up(); i++ {
		if i == 500 {
			b.Fatal("redis not up within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	key := []byte("192.0.2.1\x00acme")
	ctx := context.Background()
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := rm.take(ctx, key); !ok {
				b.Fatal("not decided")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok := rm.take(ctx, key); !ok {
					b.Error("not decided")
					return
				}
			}
		})
	})
}

// BenchmarkRedisLeaseTake is the sync lease decision for a hot key
// against a real redis-server on loopback, sequential and in parallel
// (all goroutines on the same keys), next to plain mode's one round trip
// per decision. roundtrips/op counts the scripts Redis ran (INFO
// commandstats), give-backs included. The key changes every 100,000
// decisions so that the burst (1,000,000) never runs out: each new key
// starts cold, at one token per round trip, and its leases grow with its
// rate. The time is read every 256 decisions, as the gateway passes the
// request's start time.
func BenchmarkRedisLeaseTake(b *testing.B) {
	rs := redistest.Start(b)
	mk := func(sync string) *limiter {
		doc := "cluster:\n  redis: {address: \"" + rs.Addr() + "\", timeout: 2s}\npolicies:\n  l:\n    type: rate_limit\n    store: redis\n    sync: " + sync + "\n    rate: 1000000/s\n    burst: 1000000\n"
		s := policytest.Spec(b, doc, "l")
		s.Claims = &registry.Claims{}
		s.Log = slog.New(slog.DiscardHandler)
		p, err := New(s)
		if err != nil {
			b.Fatal(err)
		}
		reg := registry.New()
		b.Cleanup(reg.Close)
		s.Claims.Acquire(reg)
		lim := p.(*Limit).base
		for i := 0; !lim.remote.client.Up(); i++ {
			if i == 500 {
				b.Fatal("redis not up within 5s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		return lim
	}
	calls := regexp.MustCompile(`cmdstat_(?:evalsha|eval):calls=(\d+)`)
	scripts := func() int {
		out, err := rs.Do("INFO", "commandstats")
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, m := range calls.FindAllStringSubmatch(out, -1) {
			c, _ := strconv.Atoi(m[1])
			n += c
		}
		return n
	}
	ctx := context.Background()
	var gen atomic.Int64 // distinct keys per run
	decide := func(lim *limiter, key []byte, now time.Time) bool {
		if lim.lease != nil {
			d, ok := lim.lease.take(ctx, lim.remote, key, now)
			return ok && d.Allowed
		}
		d, ok := lim.remote.take(ctx, key)
		return ok && d.Allowed
	}
	for _, mode := range []string{"plain", "lease"} {
		lim := mk(mode)
		b.Run(mode+"/sequential", func(b *testing.B) {
			g := gen.Add(1)
			before := scripts()
			key := AppendInt(AppendInt([]byte("k"), int(g)), 0)
			now := time.Now()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if i&255 == 0 {
					now = time.Now()
				}
				if i%100_000 == 0 {
					key = AppendInt(AppendInt([]byte("k"), int(g)), i)
				}
				if !decide(lim, key, now) {
					b.Fatal("not admitted")
				}
				i++
			}
			b.StopTimer()
			time.Sleep(leasePeriod + 4*sweepEvery)
			b.ReportMetric(float64(scripts()-before)/float64(b.N), "roundtrips/op")
		})
		b.Run(mode+"/parallel", func(b *testing.B) {
			g := gen.Add(1)
			before := scripts()
			var ops atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				now := time.Now()
				i := 0
				var key []byte
				for pb.Next() {
					if i&255 == 0 {
						now = time.Now()
					}
					if i%100_000 == 0 {
						key = AppendInt(AppendInt([]byte("p"), int(g)), i)
					}
					if !decide(lim, key, now) {
						b.Error("not admitted")
						return
					}
					i++
				}
				ops.Add(int64(i))
			})
			b.StopTimer()
			time.Sleep(leasePeriod + 4*sweepEvery)
			b.ReportMetric(float64(scripts()-before)/float64(max(1, ops.Load())), "roundtrips/op")
		})
	}
}

// BenchmarkTakeMillionKeys: the local store holding 1,000,000 distinct
// keys (max_keys raised to fit them): heap bytes per key once filled, and
// the decision over keys drawn across the whole set.
func BenchmarkTakeMillionKeys(b *testing.B) {
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewStore(1e6, 1000, n, nil)
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = AppendInt([]byte("198.51.100.0\x00"), i)
		s.TakeBytes(keys[i])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	keyBytes := 0
	for _, k := range keys {
		keyBytes += cap(k) + 24
	}
	perKey := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)-int64(keyBytes)) / n
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		s.TakeBytes(keys[i])
		i = (i + 7919) % n
	}
	b.ReportMetric(perKey, "store-B/key")
	runtime.KeepAlive(keys)
}
