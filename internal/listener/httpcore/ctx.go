package httpcore

// The request context: cancelled by the server, without the allocations of
// context.WithCancel.

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Ctx is the cancellation part of a request's context.Context: cancelled
// by the server (client gone, stream reset, handler returned) like
// net/http's, but embedded by value in the request's one allocation. Its
// done channel is made only when someone asks for it, and it implements
// AfterFunc so that contexts derived from it (and context.AfterFunc on it)
// bind without a goroutine. The embedding type adds Value (and String).
type Ctx struct {
	mu       sync.Mutex
	canceled atomic.Bool
	done     chan struct{}
	funcs    []*afterFunc
}

type afterFunc struct{ f func() }

func (c *Ctx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *Ctx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.canceled.Load() {
			close(c.done)
		}
	}
	return c.done
}

func (c *Ctx) Err() error {
	if c.canceled.Load() {
		return context.Canceled
	}
	return nil
}

// AfterFunc runs f in its own goroutine once c is cancelled (at once if it
// is); stop unregisters f and reports whether it did so before f started.
func (c *Ctx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.canceled.Load() {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.funcs = append(c.funcs, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.funcs {
			if x == a {
				c.funcs = slices.Delete(c.funcs, i, i+1)
				return true
			}
		}
		return false
	}
}

// Cancel ends c: Done is closed and the AfterFunc functions start. Later
// calls do nothing.
func (c *Ctx) Cancel() {
	c.mu.Lock()
	if c.canceled.Load() {
		c.mu.Unlock()
		return
	}
	c.canceled.Store(true)
	funcs := c.funcs
	c.funcs = nil
	if c.done != nil {
		close(c.done)
	}
	c.mu.Unlock()
	for _, a := range funcs {
		go a.f()
	}
}
