package h2

import (
	"context"
	"testing"
	"time"
)

// A stream's context takes its cancellation from httpcore.Ctx (tested
// there) and its values from the connection's context.
func TestStreamCtx(t *testing.T) {
	type key struct{}
	c := streamCtx{parent: context.WithValue(context.Background(), key{}, "conn")}
	derived, stop := context.WithCancel(&c)
	defer stop()
	if v := derived.Value(key{}); v != "conn" {
		t.Fatalf("Value = %v, want the connection's", v)
	}
	c.cancel()
	select {
	case <-derived.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not reach a derived context")
	}
}
