// Package registry keeps the state that outlives a config snapshot:
// targets with their counters, per-upstream health, outlier and breaker
// state, connection pools, retry budgets and policy state (rate-limit
// buckets, concurrency counters). It is Caddy's UsagePool idea with one
// retention rule for all of them:
//
//   - compile is pure: it only records, in the snapshot's Claims, what the
//     snapshot needs (a key naming the state's identity and how to make it);
//   - a snapshot acquires its claims when it is about to serve (applied,
//     staged as a candidate, promoted): each key's reference count goes up
//     and the state is made on first use;
//   - a snapshot releases its claims when it is retired; state whose count
//     drops to zero is closed (goroutines stopped, idle connections closed)
//     and forgotten.
//
// The key is the identity: two snapshots that claim the same key share the
// same state, so a reload that keeps an upstream's settings keeps its pooled
// connections and health verdicts, and a staged candidate sees the same
// live health as the active config.
package registry

import (
	"sort"
	"sync"
)

// Closer is implemented by state that must be stopped when its last user
// releases it.
type Closer interface{ Close() }

// Registry holds reference-counted state by key. It is safe for concurrent
// use. The zero value is not usable; call New.
type Registry struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	v    any
	refs int
}

// New returns an empty Registry.
func New() *Registry { return &Registry{m: map[string]*entry{}} }

// acquire returns the state under key, making it with mk when there is
// none, and counts one more reference to it.
func (r *Registry) acquire(key string, mk func() any) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.m[key]
	if e == nil {
		e = &entry{v: mk()}
		r.m[key] = e
	}
	e.refs++
	return e.v
}

// release drops one reference to key and returns the state to close when
// it was the last one.
func (r *Registry) release(key string) Closer {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.m[key]
	if e == nil {
		return nil
	}
	if e.refs--; e.refs > 0 {
		return nil
	}
	delete(r.m, key)
	c, _ := e.v.(Closer)
	return c
}

// Refs returns how many references key has (0 when it is not held).
func (r *Registry) Refs(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.m[key]; e != nil {
		return e.refs
	}
	return 0
}

// Keys returns the keys held, sorted (for tests and the admin API).
func (r *Registry) Keys() []string {
	r.mu.Lock()
	keys := make([]string, 0, len(r.m))
	for k := range r.m {
		keys = append(keys, k)
	}
	r.mu.Unlock()
	sort.Strings(keys)
	return keys
}

// Values returns the states whose keys start with prefix, in key order
// (for the admin API's status).
func (r *Registry) Values(prefix string) []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]string, 0, len(r.m))
	for k := range r.m {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = r.m[k].v
	}
	return out
}

// Close closes and forgets every state, whatever its count (at exit).
func (r *Registry) Close() {
	r.mu.Lock()
	m := r.m
	r.m = map[string]*entry{}
	r.mu.Unlock()
	for _, e := range m {
		if c, ok := e.v.(Closer); ok {
			c.Close()
		}
	}
}

// Claims are what one snapshot needs from the registry. Compile records
// them; Acquire binds them; Release gives them back. A Claims is used by
// one goroutine at a time (the one applying configs).
type Claims struct {
	list     []claim
	after    []func()
	release  []func()
	reg      *Registry
	acquired bool
	released bool
}

type claim struct {
	key string
	mk  func() any
	set func(any)
}

// Claim records that the snapshot needs the state of type T under key:
// made by mk on first use, and handed to set when the snapshot acquires
// its claims. Keys are global: prefix them with the kind of state.
func Claim[T any](c *Claims, key string, mk func() *T, set func(*T)) {
	c.list = append(c.list, claim{key: key, mk: func() any { return mk() }, set: func(v any) { set(v.(*T)) }})
}

// AfterAcquire runs f once every claim is bound, in the order given (for
// work that needs the bound state, such as starting health checks).
func (c *Claims) AfterAcquire(f func()) { c.after = append(c.after, f) }

// AfterRelease runs f once when the claims are released, before any
// state is closed (for undoing what an AfterAcquire function did).
func (c *Claims) AfterRelease(f func()) { c.release = append(c.release, f) }

// Keys returns the keys claimed, in the order claimed.
func (c *Claims) Keys() []string {
	keys := make([]string, len(c.list))
	for i, cl := range c.list {
		keys[i] = cl.key
	}
	return keys
}

// Acquire binds every claim to the registry's state, making what is not
// there yet. With a nil registry every claim gets fresh state of its own
// (tests, benchmarks). Acquiring twice is a no-op.
func (c *Claims) Acquire(reg *Registry) {
	if c == nil || c.acquired {
		return
	}
	c.acquired, c.reg = true, reg
	for _, cl := range c.list {
		if reg == nil {
			cl.set(cl.mk())
			continue
		}
		cl.set(reg.acquire(cl.key, cl.mk))
	}
	for _, f := range c.after {
		f()
	}
}

// Release gives back every claim; state no other snapshot holds is closed.
// In-flight requests of the snapshot may still use it: closing a pool closes
// only its idle connections, and stopped health checks keep their last
// verdicts. Releasing twice, or before Acquire, is a no-op.
func (c *Claims) Release() {
	if c == nil || !c.acquired || c.released {
		return
	}
	c.released = true
	for _, f := range c.release {
		f()
	}
	if c.reg == nil {
		return
	}
	var closing []Closer
	for _, cl := range c.list {
		if cc := c.reg.release(cl.key); cc != nil {
			closing = append(closing, cc)
		}
	}
	for _, cc := range closing {
		cc.Close()
	}
}
