package breaker

import (
	"testing"
	"time"
)

func BenchmarkAcquireRelease(b *testing.B) {
	br := New(Config{})
	b.ReportAllocs()
	for b.Loop() {
		if br.TryAcquireRequest() {
			br.ReleaseRequest()
		}
	}
}

func BenchmarkAcquireReleaseParallel(b *testing.B) {
	br := New(Config{MaxRequests: -1})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if br.TryAcquireRequest() {
				br.ReleaseRequest()
			}
		}
	})
}

func BenchmarkOpen(b *testing.B) {
	br := New(Config{})
	b.ReportAllocs()
	for b.Loop() {
		_ = br.Open()
	}
}

// BenchmarkTripAllowReport is the closed-state hot path of the
// failure-tripped breaker: one Allow and one successful Done per request,
// the clock moving by 1µs a request so that window buckets roll over.
func BenchmarkTripAllowReport(b *testing.B) {
	tr := NewTrip(TripConfig{})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		tk, ok, _ := tr.Allow(now)
		if ok {
			tk.Done(Success, now)
		}
	}
}

// BenchmarkTripAllowReportFailures has one failure in 10 (the
// consecutive run never reaches 5, the ratio stays under 0.5), so that
// the window is summed on every tenth request.
func BenchmarkTripAllowReportFailures(b *testing.B) {
	tr := NewTrip(TripConfig{})
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now = now.Add(time.Microsecond)
		tk, ok, _ := tr.Allow(now)
		if !ok {
			b.Fatal("tripped")
		}
		r := Success
		if i++; i%10 == 0 {
			r = Failure
		}
		tk.Done(r, now)
	}
}

func BenchmarkTripAllowReportParallel(b *testing.B) {
	tr := NewTrip(TripConfig{})
	base := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		now := base
		for pb.Next() {
			now = now.Add(time.Microsecond)
			tk, ok, _ := tr.Allow(now)
			if ok {
				tk.Done(Success, now)
			}
		}
	})
}

// BenchmarkTripAllowOpen is a request refused by an open circuit.
func BenchmarkTripAllowOpen(b *testing.B) {
	tr := NewTrip(TripConfig{OpenFor: time.Hour})
	now := time.Now()
	for range DefaultConsecutiveFailures {
		tk, _, _ := tr.Allow(now)
		tk.Done(Failure, now)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := tr.Allow(now); ok {
			b.Fatal("admitted")
		}
	}
}
