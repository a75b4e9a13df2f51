package gateway

import (
	"fmt"
	"net/http"
	"testing"
)

func TestSplitChooses(t *testing.T) {
	tests := []struct {
		name   string
		split  Split
		keyed  func(i int, r *http.Request)
		lo, hi int // candidate share out of 10000 requests, in per cent
	}{
		{name: "0%", split: Split{Basis: 0}, keyed: byIP, lo: 0, hi: 0},
		{name: "100%", split: Split{Basis: 10000}, keyed: byIP, lo: 100, hi: 100},
		{name: "20% by ip", split: Split{Basis: 2000}, keyed: byIP, lo: 18, hi: 22},
		{name: "20% by header", split: Split{Basis: 2000, Header: "X-Request-Id"}, keyed: func(i int, r *http.Request) {
			r.RemoteAddr = "10.0.0.1:1234"
			r.Header.Set("X-Request-Id", fmt.Sprintf("req-%d", i))
		}, lo: 18, hi: 22},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			for i := range 10000 {
				r, _ := http.NewRequest("GET", "/", nil)
				tc.keyed(i, r)
				if tc.split.Chooses(r) {
					n++
				}
			}
			if pct := n / 100; pct < tc.lo || pct > tc.hi {
				t.Errorf("candidate share %d.%02d%%, want %d..%d", n/100, n%100, tc.lo, tc.hi)
			}
		})
	}
	t.Run("sticky per client ip", func(t *testing.T) {
		sp := Split{Basis: 5000}
		for i := range 100 {
			r1, _ := http.NewRequest("GET", "/", nil)
			r2, _ := http.NewRequest("GET", "/", nil)
			r1.RemoteAddr = fmt.Sprintf("10.1.%d.%d:1000", i/256, i%256)
			r2.RemoteAddr = fmt.Sprintf("10.1.%d.%d:2000", i/256, i%256)
			if sp.Chooses(r1) != sp.Chooses(r2) {
				t.Fatalf("client %s changed sides with its port", r1.RemoteAddr)
			}
		}
	})
}

func byIP(i int, r *http.Request) {
	r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:5555", i>>16&255, i>>8&255, i&255)
}

func BenchmarkSplitChooses(b *testing.B) {
	sp := Split{Basis: 2000}
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.168.10.20:43210"
	b.ReportAllocs()
	for b.Loop() {
		sp.Chooses(r)
	}
}
