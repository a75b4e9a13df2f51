package h2

import (
	"context"
	"testing"
)

// A stream's context takes its cancellation from httpcore.Ctx (tested
// there) and its values from the connection's context.
func TestStreamCtx(t *testing.T) {
	type key struct{}
	var c streamCtx
	c.parent = context.WithValue(context.Background(), key{}, "conn")
	var ctx context.Context = &c
	if v := ctx.Value(key{}); v != "conn" {
		t.Fatalf("Value = %v, want the connection's", v)
	}
	c.cancel()
	if ctx.Err() != context.Canceled {
		t.Fatalf("Err = %v after cancel", ctx.Err())
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done not closed after cancel")
	}
}
