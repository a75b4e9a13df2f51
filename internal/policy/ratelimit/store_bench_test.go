package ratelimit

import (
	"net/http/httptest"
	"strconv"
	"testing"

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
		for pb.Next() {
			s.TakeBytes(keys[i&1023])
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
	ex := &exchange.Exchange{Consumer: "acme", Route: "users"}
	b.ReportAllocs()
	for b.Loop() {
		var buf [maxKeyLen + 64]byte
		l.pick(ex).store.TakeBytes(AppendKey(buf[:0], l.parts, l.trust, r, ex))
	}
}
