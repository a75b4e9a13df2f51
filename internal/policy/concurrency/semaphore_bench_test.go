package concurrency

import (
	"context"
	"testing"
	"time"
)

// BenchmarkAcquireRelease is the uncontended path of every request: a
// free slot taken and given back.
func BenchmarkAcquireRelease(b *testing.B) {
	s := NewSemaphore(1<<20, []int{0})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if !s.Acquire(ctx, 0, 0) {
			b.Fatal("no slot")
		}
		s.Release()
	}
}

// BenchmarkAcquireReleaseParallel is the same from every CPU, with the
// adaptive bookkeeping.
func BenchmarkAcquireReleaseParallel(b *testing.B) {
	s := NewSemaphore(1<<20, []int{0})
	s.adaptive = &aimd{min: 1, max: 1 << 20, target: time.Second}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		now := time.Now()
		for pb.Next() {
			if !s.Acquire(ctx, 0, 0) {
				b.Error("no slot")
				return
			}
			s.Done(now, time.Millisecond)
		}
	})
}
