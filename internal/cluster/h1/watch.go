package h1

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// An exchange is aborted when its request's context ends: the connection
// gets a deadline in the past, so the pending read or write fails at once.
//
// Binding that with context.AfterFunc costs five allocations per exchange
// on the server's fresh per-request context (the context's done channel
// and children map, made for the first registration, then the AfterFunc
// state and its stop function) and about 0.35 µs (BenchmarkCancelBinding).
// Most exchanges end within a millisecond, long before their context does,
// so an exchange is listed with the watcher instead, which costs no
// allocation: every watchTick the watcher reads ctx.Err() of the listed
// exchanges (an atomic load for the context package's contexts) and aborts
// the connection of each one whose context has ended. An exchange still
// listed after watchPromote ticks is handed over to context.AfterFunc, so
// that a long exchange (a slow upstream, a streamed body) is not polled for
// its whole life and is aborted as soon as its context ends. A context that
// ends while its exchange is listed is noticed within one watchTick (the
// listener's own server starts watching a client only after 50 ms).
const (
	watchTick    = 5 * time.Millisecond
	watchPromote = 8
	watchShards  = 16 // lists, each with its own lock, so exchanges rarely contend
)

// watch is the watch of a connection's exchange in flight. It is guarded
// by the lock of the connection's shard.
type watch struct {
	ctx   context.Context
	pos   int         // 1 + index in shard.list; 0 when not listed
	age   int         // ticks listed
	stop  func() bool // the context.AfterFunc binding, once handed over
	fired bool        // the watcher aborted the connection
}

type watchShard struct {
	mu   sync.Mutex
	list []*conn
}

// watcher is the one goroutine that checks the listed exchanges. It runs
// while exchanges are listed and returns once none is.
var watcher struct {
	shards  [watchShards]watchShard
	next    atomic.Uint32 // shard of the next new connection
	running atomic.Bool
}

// newShard returns the shard for a new connection's watches.
func newShard() *watchShard {
	return &watcher.shards[watcher.next.Add(1)%watchShards]
}

// watch aborts cn's connection once ctx ends, until unwatch.
func (cn *conn) watch(ctx context.Context) {
	s := cn.shard
	s.mu.Lock()
	cn.w.ctx = ctx
	if ctx.Err() != nil {
		// Already ended: abort at once, as context.AfterFunc would.
		cn.w.fired = true
		cn.abort()
		s.mu.Unlock()
		return
	}
	s.list = append(s.list, cn)
	cn.w.pos = len(s.list)
	s.mu.Unlock()
	if !watcher.running.Load() && watcher.running.CompareAndSwap(false, true) {
		go watchLoop()
	}
}

// unwatch ends the watch of cn's exchange. Like the stop function of
// context.AfterFunc, it reports whether the connection is certain not to
// have been aborted by the watch, nor to be aborted later.
func (cn *conn) unwatch() bool {
	s := cn.shard
	s.mu.Lock()
	ok := !cn.w.fired
	switch {
	case cn.w.pos > 0:
		s.remove(cn)
	case cn.w.stop != nil:
		ok = cn.w.stop()
	}
	cn.w = watch{}
	s.mu.Unlock()
	return ok
}

// remove takes cn off s.list; s.mu is held.
func (s *watchShard) remove(cn *conn) {
	i, last := cn.w.pos-1, len(s.list)-1
	if i != last {
		m := s.list[last]
		s.list[i] = m
		m.w.pos = i + 1
	}
	s.list[last] = nil
	s.list = s.list[:last]
	cn.w.pos = 0
}

// check aborts the listed exchanges whose context ended, hands the old
// ones over to context.AfterFunc and returns how many remain listed.
func (s *watchShard) check() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < len(s.list); {
		cn := s.list[i]
		w := &cn.w
		switch {
		case w.ctx.Err() != nil:
			w.fired = true
			cn.abort()
			s.remove(cn) // moves another one to i
		case w.age >= watchPromote:
			w.stop = afterFunc(w.ctx, cn.abortF)
			s.remove(cn)
		default:
			w.age++
			i++
		}
	}
	return len(s.list)
}

// afterFuncer is a context that binds callbacks itself, as h1server's
// request context and exchange.Context do.
type afterFuncer interface {
	AfterFunc(f func()) (stop func() bool)
}

// afterFunc is context.AfterFunc(ctx, f), calling ctx's own AfterFunc
// directly when it has one. context.AfterFunc would call it too, but only
// after wrapping f in a cancelCtx of its own and asking ctx for its done
// channel and its parent cancelCtx (a walk down the context chain, and on
// h1server's request context the allocation of the done channel). Under
// load with thousands of connections many exchanges outlive watchPromote
// ticks (they wait for the CPU), so this runs for a good share of them.
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(afterFuncer); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

func (s *watchShard) listed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.list)
}

// watchLoop is the watcher. It is started by the first exchange listed
// while it does not run, and returns after a tick that found nothing
// listed (or if a check panics; the next exchange listed restarts it).
func watchLoop() {
	defer func() {
		if recover() != nil {
			watcher.running.Store(false)
		}
	}()
	t := time.NewTicker(watchTick)
	defer t.Stop()
	for {
		<-t.C
		n := 0
		for i := range watcher.shards {
			n += watcher.shards[i].check()
		}
		if n > 0 {
			continue
		}
		// Stop, unless an exchange was listed meanwhile by a caller that
		// still saw the watcher running. Such a caller listed it before
		// reading running, so either the recount below sees it or the
		// caller sees false and starts a watcher of its own.
		watcher.running.Store(false)
		for i := range watcher.shards {
			n += watcher.shards[i].listed()
		}
		if n == 0 || !watcher.running.CompareAndSwap(false, true) {
			return
		}
	}
}
