package ratelimit

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy/policytest"
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
