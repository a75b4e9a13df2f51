package httpcore

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/exchange"
)

// testCtx is Ctx as the servers use it: embedded, with a Value.
type testCtx struct{ Ctx }

func (*testCtx) Value(any) any { return nil }

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestCtx(t *testing.T) {
	t.Run("cancel", func(t *testing.T) {
		var c testCtx
		if c.Err() != nil {
			t.Fatal("fresh context already ended")
		}
		done := c.Done()
		if closed(done) {
			t.Fatal("done before cancel")
		}
		c.Cancel()
		c.Cancel() // twice is fine
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("done not closed by cancel")
		}
		if c.Err() != context.Canceled {
			t.Fatalf("Err = %v", c.Err())
		}
		if !closed(c.Done()) {
			t.Fatal("Done after cancel must be closed")
		}
	})
	t.Run("done made after cancel", func(t *testing.T) {
		var c testCtx
		c.Cancel()
		if !closed(c.Done()) {
			t.Fatal("Done made after cancel must be closed")
		}
	})
	t.Run("after func", func(t *testing.T) {
		var c testCtx
		ran := make(chan struct{})
		context.AfterFunc(&c, func() { close(ran) })
		stopped := make(chan struct{})
		stop := context.AfterFunc(&c, func() { close(stopped) })
		if !stop() {
			t.Fatal("stop before cancel must report true")
		}
		if stop() {
			t.Fatal("a second stop must report false")
		}
		c.Cancel()
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("AfterFunc did not run")
		}
		select {
		case <-stopped:
			t.Fatal("a stopped AfterFunc ran")
		case <-time.After(50 * time.Millisecond):
		}
		late := make(chan struct{})
		if context.AfterFunc(&c, func() { close(late) })() {
			t.Fatal("stop after cancel must report false")
		}
		select {
		case <-late:
		case <-time.After(5 * time.Second):
			t.Fatal("AfterFunc on an ended context did not run")
		}
	})
	// A context derived from a request's context, directly or through the
	// gateway's exchange.Context, binds through AfterFunc: no goroutine per
	// derived context, and the cancel reaches it.
	t.Run("derived without goroutine", func(t *testing.T) {
		var c testCtx
		ex := &exchange.Context{Context: &c}
		before := runtime.NumGoroutine()
		var cancels []context.CancelFunc
		var ctxs []context.Context
		for i := 0; i < 100; i++ {
			var parent context.Context = &c
			if i%2 == 1 {
				parent = ex
			}
			ctx, cancel := context.WithTimeout(parent, time.Hour)
			ctxs = append(ctxs, ctx)
			cancels = append(cancels, cancel)
		}
		if n := runtime.NumGoroutine(); n > before+5 {
			t.Fatalf("goroutines %d -> %d for 100 derived contexts", before, n)
		}
		cancels[0]() // one cancelled on its own: its registration goes
		c.Cancel()
		for i, ctx := range ctxs {
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Fatalf("derived context %d not cancelled", i)
			}
		}
		for _, cancel := range cancels {
			cancel()
		}
	})
}
