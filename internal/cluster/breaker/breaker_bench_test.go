package breaker

import "testing"

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
