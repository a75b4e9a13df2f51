package cache

import (
	"strings"
	"testing"
	"time"
)

func BenchmarkGetFresh(b *testing.B) {
	c := New(Config{})
	c.Put("users GET api.example.com /u/1", entry(strings.Repeat("x", 512), time.Hour, 0))
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = c.Get("users GET api.example.com /u/1", t0)
	}
}

func BenchmarkGetMiss(b *testing.B) {
	c := New(Config{})
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = c.Get("users GET api.example.com /u/1", t0)
	}
}
