package health

import (
	"context"
	"fmt"
	"testing"
)

func BenchmarkHealthy(b *testing.B) {
	c := New(Config{}, Deps{Probe: func(context.Context, string) error { return nil }})
	var addrs []string
	for i := range 16 {
		addrs = append(addrs, fmt.Sprintf("10.0.0.%d:8080", i))
	}
	c.Update(addrs)
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Healthy(addrs[5])
	}
}
