package cache

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for a zero Config field.
const (
	DefaultMaxBytes      = 64 << 20 // 64 MiB
	DefaultMaxEntryBytes = 1 << 20  // 1 MiB
)

// entryOverhead approximates the bookkeeping bytes of one entry (the list
// node, the map slot, the Entry struct) so that many tiny entries are
// still bounded.
const entryOverhead = 160

// Config bounds the cache.
type Config struct {
	// MaxBytes is the total size the cache may hold. Default 64 MiB.
	MaxBytes int64
	// MaxEntryBytes is the largest single entry stored; larger responses
	// are not cached. Default 1 MiB (capped to MaxBytes).
	MaxEntryBytes int64
}

// Entry is one cached response. It is read-only once stored.
type Entry struct {
	Status   int
	Header   http.Header
	Body     []byte
	StoredAt time.Time
	// TTL is how long the entry is fresh after StoredAt.
	TTL time.Duration
	// StaleIfError is how long after TTL the entry may still be served
	// when the upstream fails.
	StaleIfError time.Duration
}

// Age returns how long ago the entry was stored, for the Age header
// (RFC 9111 section 5.1), in whole seconds.
func (e *Entry) Age(now time.Time) time.Duration {
	d := now.Sub(e.StoredAt)
	if d < 0 {
		return 0
	}
	return d.Truncate(time.Second)
}

// Serve writes the entry as the response to w, with an Age header.
func (e *Entry) Serve(w http.ResponseWriter, now time.Time) error {
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v[:len(v):len(v)] // full slice: a later Add must not write into the shared entry
	}
	h.Set("Age", strconv.FormatInt(int64(e.Age(now)/time.Second), 10))
	h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	w.WriteHeader(e.Status)
	_, err := w.Write(e.Body)
	return err
}

func (e *Entry) size(key string) int64 {
	n := int64(len(key) + len(e.Body) + entryOverhead)
	for k, vs := range e.Header {
		n += int64(len(k))
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	return n
}

// node is an element of the intrusive LRU list.
type node struct {
	key        string
	e          *Entry
	size       int64
	prev, next *node
}

// Cache is a byte-bounded LRU of responses, safe for concurrent use.
type Cache struct {
	maxBytes, maxEntry int64

	mu    sync.Mutex
	items map[string]*node
	head  node // sentinel: head.next is the most recently used
	bytes int64
}

// New returns an empty cache bounded by cfg (defaults applied).
func New(cfg Config) *Cache {
	c := &Cache{
		maxBytes: cfg.MaxBytes,
		maxEntry: cfg.MaxEntryBytes,
		items:    make(map[string]*node),
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxBytes
	}
	if c.maxEntry <= 0 {
		c.maxEntry = DefaultMaxEntryBytes
	}
	c.maxEntry = min(c.maxEntry, c.maxBytes)
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

// Get looks key up at time now. It returns the entry with fresh = true
// while now < StoredAt+TTL; with fresh = false while the entry is stale but
// within StaleIfError; and ok = false otherwise (an entry past both windows
// is dropped). Only fresh hits refresh the entry's LRU position: a stale
// copy is a last resort and should not push out fresh ones.
func (c *Cache) Get(key string, now time.Time) (e *Entry, fresh, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.items[key]
	if n == nil {
		return nil, false, false
	}
	age := now.Sub(n.e.StoredAt)
	switch {
	case age < n.e.TTL:
		c.unlink(n)
		c.pushFront(n)
		return n.e, true, true
	case age < n.e.TTL+n.e.StaleIfError:
		return n.e, false, true
	}
	c.remove(n)
	return nil, false, false
}

// Put stores e under key, replacing any previous entry, and evicts least
// recently used entries until the cache fits. It reports false, storing
// nothing, when e is larger than MaxEntryBytes or has no TTL and no
// StaleIfError. The cache keeps e: do not modify it afterwards.
func (c *Cache) Put(key string, e *Entry) bool {
	if e == nil || e.TTL+e.StaleIfError <= 0 {
		return false
	}
	size := e.size(key)
	if size > c.maxEntry {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.items[key]; old != nil {
		c.remove(old)
	}
	n := &node{key: key, e: e, size: size}
	c.items[key] = n
	c.pushFront(n)
	c.bytes += size
	for c.bytes > c.maxBytes {
		c.remove(c.head.prev)
	}
	return true
}

// Delete removes key, if present.
func (c *Cache) Delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.items[key]; n != nil {
		c.remove(n)
	}
}

// Len returns the number of entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// Bytes returns the accounted size of all entries.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

func (c *Cache) pushFront(n *node) {
	n.prev, n.next = &c.head, c.head.next
	c.head.next.prev = n
	c.head.next = n
}

func (c *Cache) unlink(n *node) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

func (c *Cache) remove(n *node) {
	c.unlink(n)
	delete(c.items, n.key)
	c.bytes -= n.size
}

// Key builds the cache key of a request on a route: the route name, the
// method, the host and the request URI. Responses that vary on request
// headers (Vary) must not be stored under it; the proxy checks that.
func Key(route string, r *http.Request) string {
	var b strings.Builder
	b.Grow(len(route) + len(r.Method) + len(r.Host) + len(r.URL.RequestURI()) + 3)
	b.WriteString(route)
	b.WriteByte(' ')
	b.WriteString(r.Method)
	b.WriteByte(' ')
	b.WriteString(strings.ToLower(r.Host))
	b.WriteByte(' ')
	b.WriteString(r.URL.RequestURI())
	return b.String()
}
