package httpcore

// Connection tracking: the live connections a server closes on Close and
// waits for on Shutdown.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Conns is a server's set of live connections. The zero value is empty and
// ready. The server owns the closing flag it passes to Add; checking it
// under Conns' lock means that once it is set, a connection is either
// refused by Add or seen by every later Snapshot, Range and Len.
type Conns[C comparable] struct {
	mu sync.Mutex
	m  map[C]struct{}
}

// Add tracks c and reports true, unless *closing is set.
func (t *Conns[C]) Add(c C, closing *atomic.Bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if closing.Load() {
		return false
	}
	if t.m == nil {
		t.m = make(map[C]struct{})
	}
	t.m[c] = struct{}{}
	return true
}

// Remove stops tracking c.
func (t *Conns[C]) Remove(c C) {
	t.mu.Lock()
	delete(t.m, c)
	t.mu.Unlock()
}

// Len is the number of connections tracked.
func (t *Conns[C]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// Snapshot is a copy of the connections tracked.
func (t *Conns[C]) Snapshot() []C {
	t.mu.Lock()
	defer t.mu.Unlock()
	cs := make([]C, 0, len(t.m))
	for c := range t.m {
		cs = append(cs, c)
	}
	return cs
}

// Range calls f for each connection tracked, under the lock: f must not
// call t.
func (t *Conns[C]) Range(f func(C)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.m {
		f(c)
	}
}

// Drain is Shutdown's wait: every 20ms it calls step (if not nil) and
// returns nil once no connection is left; when ctx ends first it calls
// closeAll and returns ctx.Err().
func (t *Conns[C]) Drain(ctx context.Context, step func(), closeAll func() error) error {
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for {
		if step != nil {
			step()
		}
		if t.Len() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			closeAll()
			return ctx.Err()
		case <-tk.C:
		}
	}
}
