// Package cache is the byte-bounded in-memory response cache behind a
// route's cache: {ttl, stale_if_error}.
//
// Entries are kept in LRU order and evicted once the total size (body,
// headers, key and a fixed overhead) exceeds Config.MaxBytes; an entry
// larger than Config.MaxEntryBytes is never stored, so one huge response
// cannot flush everything else. Get distinguishes fresh entries (served
// directly) from stale ones still inside their stale_if_error window (served
// only when the upstream fails, RFC 5861 section 4).
//
// The proxy is meant to use it like this (one Cache per gateway, shared by
// all routes and kept across reloads; the route name is part of the key):
//
//	key := cache.Key(route.Name, r)
//	e, fresh, ok := c.Get(key, now)
//	if ok && fresh {
//		return e.Serve(w, now) // X-Cache: HIT
//	}
//	resp, err := forward(r)
//	if failed(resp, err) && ok {
//		return e.Serve(w, now) // stale_if_error, X-Cache: STALE
//	}
//	if r.Method == http.MethodGet && resp.StatusCode == http.StatusOK && storable(resp) {
//		c.Put(key, &cache.Entry{Status: 200, Header: h, Body: body,
//			StoredAt: now, TTL: ttl, StaleIfError: sie})
//	}
//
// Entries are shared between readers: treat an Entry returned by Get, and
// one passed to Put, as read-only.
package cache
