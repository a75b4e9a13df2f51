package h1server

import (
	"context"
	"testing"
)

// The request context's cancellation is httpcore.Ctx's (tested there);
// reqContext adds that it carries no values.
func TestReqContext(t *testing.T) {
	var c reqContext
	var ctx context.Context = &c
	if v := ctx.Value("k"); v != nil {
		t.Fatalf("Value = %v, want nil", v)
	}
	c.cancel()
	if ctx.Err() != context.Canceled {
		t.Fatalf("Err = %v after cancel", ctx.Err())
	}
}
