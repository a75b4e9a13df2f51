package retry

import (
	"testing"
	"time"
)

func BenchmarkBudgetRecordRequest(b *testing.B) {
	bu := NewBudget(20, 10, 0, nil)
	b.ReportAllocs()
	for b.Loop() {
		bu.RecordRequest()
	}
}

func BenchmarkBudgetTryRetry(b *testing.B) {
	bu := NewBudget(20, 10, 0, nil)
	b.ReportAllocs()
	for b.Loop() {
		bu.RecordRequest()
		_ = bu.TryRetry()
	}
}

func BenchmarkBudgetParallel(b *testing.B) {
	bu := NewBudget(20, 10, 0, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bu.RecordRequest()
		}
	})
}

func BenchmarkShouldRetry(b *testing.B) {
	c, _ := ParseConditions([]string{"connect_failure", "reset", "502", "503", "504"})
	b.ReportAllocs()
	for b.Loop() {
		_ = c.ShouldRetry(Response, 503)
	}
}

func BenchmarkBackoff(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Backoff(3, 25*time.Millisecond, time.Second, nil)
	}
}

func BenchmarkParseRetryAfter(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseRetryAfter("120", now)
	}
}
